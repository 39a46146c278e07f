"""Device profiles (as ThingsBoard's): the sensor rules of each kind of device, read and changed at run time.

``PUT /device-profiles/{name}`` adds or replaces a profile; devices using it get its rules at their next
reading (their rule states restart). The profiles live in ``Runtime.profiles``
(:class:`detectors.device_profiles.ProfileBook`) and in the deployment held by the process; like device
edits, a change is a row of the SQL store (it outlives restarts), not written back to the deployment file.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Request, status
from pydantic import BaseModel

from detectors.device_profiles import NAME, DeviceProfile
from gateway.api.changes import hand_over
from gateway.api.deps import errors, require, runtime
from gateway.auth import Principal
from gateway.api.parts import ApiRuntime

router = APIRouter(tags=["devices"])


class ProfileList(BaseModel):
    items: dict[str, DeviceProfile]


@router.get("/device-profiles", response_model=ProfileList, responses=errors(401, 403),
            summary="Every device profile: the shipped defaults and the deployment's")
def list_profiles(principal: Principal = Depends(require("devices:read")), rt: ApiRuntime = Depends(runtime)) -> ProfileList:
    return ProfileList(items={name: rt.profiles.get(name) for name in rt.profiles.names()})


@router.get("/device-profiles/{name}", response_model=DeviceProfile, responses=errors(401, 403, 404, 422),
            summary="One device profile")
def get_profile(name: str = PathParam(pattern=NAME), principal: Principal = Depends(require("devices:read")),
                rt: ApiRuntime = Depends(runtime)) -> DeviceProfile:
    profile = rt.profiles.get(name)
    if profile is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such device profile")
    return profile


@router.put("/device-profiles/{name}", response_model=DeviceProfile, responses=errors(401, 403, 413, 422),
            summary="Add or replace a device profile; applies at once, without a restart")
def put_profile(profile: DeviceProfile, request: Request, name: str = PathParam(pattern=NAME),
                principal: Principal = Depends(require("devices:write")), rt: ApiRuntime = Depends(runtime)) -> DeviceProfile:
    # stored (kept for restarts), then to the devices roles and the other API nodes wherever they run
    hand_over("device profile", lambda: rt.profile_changes.put({"id": name, **profile.model_dump(mode="json")}, new=False))
    rt.profiles.put(name, profile)
    rt.deployment.device_profiles[name] = profile
    request.app.state.audit.record(principal.username, "device_profile.put", f"device_profile:{name}")
    return profile
