"""Devices (set-top boxes, sensors): list, read, add, replace and remove entries of the registry.

Secrets are write-only: they are accepted on add/replace and never answered; a listing says only
whether a device has one. The registry is ``ingest.devices.DeviceRegistry``; the deployment's device
list is rebuilt from the SQL store after each change (``gateway.config_state``), so a listing shows what
every node runs with, and the change outlives restarts.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Request, Response, status
from pydantic import BaseModel, Field

from gateway.api.changes import hand_over
from gateway.api.deps import errors, require, runtime
from gateway.auth import Principal
from ingest.config import DeviceConfig
from gateway.api.parts import ApiRuntime

router = APIRouter(tags=["devices"])
DEVICE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class DeviceOut(BaseModel):
    id: str
    type: str
    name: str
    household: str | None
    address: str
    location: dict[str, Any]
    profile: str | None
    heartbeat_s: float
    has_secret: bool
    grid_code: str | None = Field(None, description="the grid the device stands in")
    state: dict[str, Any] = Field(default_factory=dict, description="last seen, battery … as the registry knows them")


class DeviceList(BaseModel):
    items: list[DeviceOut]


def _state(rt: ApiRuntime, device_id: str) -> dict[str, Any]:
    """What the registry knows live about a device (last seen, battery, online); never its secret."""
    device = rt.devices.get(device_id)
    if device is None:
        return {}
    public = device.public()
    return {k: public[k] for k in ("last_seen", "battery", "online")}


def device_out(rt: ApiRuntime, dev: DeviceConfig) -> DeviceOut:
    data = dev.model_dump(mode="json", exclude={"secret"})
    grid = rt.grids.route(dev.location)
    return DeviceOut(**data, has_secret=bool(dev.secret), grid_code=grid.code if grid else None, state=_state(rt, dev.id))


def _find(rt: ApiRuntime, device_id: str) -> DeviceConfig | None:
    return next((d for d in rt.deployment.devices if d.id == device_id), None)


def _check_place(rt: ApiRuntime, dev: DeviceConfig) -> None:
    if rt.grids.route(dev.location) is None:
        raise HTTPException(422, "location: outside the district")


@router.get("/devices", response_model=DeviceList, responses=errors(401, 403), summary="Registered devices (no secrets)")
def list_devices(principal: Principal = Depends(require("devices:read")), rt: ApiRuntime = Depends(runtime)) -> DeviceList:
    return DeviceList(items=[device_out(rt, d) for d in rt.deployment.devices])


@router.get("/devices/{device_id}", response_model=DeviceOut, responses=errors(401, 403, 404, 422), summary="One device")
def get_device(device_id: str = PathParam(pattern=DEVICE_ID), principal: Principal = Depends(require("devices:read")),
               rt: ApiRuntime = Depends(runtime)) -> DeviceOut:
    dev = _find(rt, device_id)
    if dev is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such device")
    return device_out(rt, dev)


@router.post("/devices", response_model=DeviceOut, status_code=201, responses=errors(401, 403, 409, 413, 422),
             summary="Register a device (its HMAC secret is write-only)")
def add_device(dev: DeviceConfig, request: Request, principal: Principal = Depends(require("devices:write")),
               rt: ApiRuntime = Depends(runtime)) -> DeviceOut:
    if _find(rt, dev.id) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"device {dev.id!r} exists")
    _check_place(rt, dev)
    # stored, then to the devices roles and the other API nodes wherever they run
    hand_over("device", lambda: rt.device_changes.put(dev.model_dump(mode="json"), new=True), rt.config.reload_devices)
    rt.devices.upsert(dev)
    request.app.state.audit.record(principal.username, "device.add", f"device:{dev.id}")
    return device_out(rt, dev)


@router.put("/devices/{device_id}", response_model=DeviceOut, responses=errors(401, 403, 404, 413, 422),
            summary="Replace a device's entry (omit secret to keep the current one)")
def replace_device(dev: DeviceConfig, request: Request, device_id: str = PathParam(pattern=DEVICE_ID),
                   principal: Principal = Depends(require("devices:write")), rt: ApiRuntime = Depends(runtime)) -> DeviceOut:
    old = _find(rt, device_id)
    if old is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such device")
    if dev.id != device_id:
        raise HTTPException(422, "id: the body's id must match the path")
    if dev.secret is None and old.secret:
        dev = dev.model_copy(update={"secret": old.secret})
    _check_place(rt, dev)
    hand_over("device", lambda: rt.device_changes.put(dev.model_dump(mode="json"), new=False), rt.config.reload_devices)
    rt.devices.upsert(dev)  # the id cannot change (checked above); live state survives
    request.app.state.audit.record(principal.username, "device.update", f"device:{dev.id}")
    return device_out(rt, dev)


@router.delete("/devices/{device_id}", status_code=204, responses=errors(401, 403, 404, 422), summary="Remove a device")
def delete_device(request: Request, device_id: str = PathParam(pattern=DEVICE_ID),
                  principal: Principal = Depends(require("devices:write")), rt: ApiRuntime = Depends(runtime)) -> Response:
    old = _find(rt, device_id)
    if old is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such device")
    hand_over("device", lambda: rt.device_changes.remove(device_id), rt.config.reload_devices)
    rt.devices.remove(device_id)
    request.app.state.audit.record(principal.username, "device.remove", f"device:{device_id}")
    return Response(status_code=204)
