"""Devices (set-top boxes, sensors): list, read, add, replace and remove entries of the registry.

Secrets are write-only: they are accepted on add/replace and never answered; a listing says only
whether a device has one. The registry is ``ingest.devices.DeviceRegistry``; the deployment's device
list is rebuilt from the SQL store after each change (``gateway.config_state``), so a listing shows what
every node runs with, and the change outlives restarts.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Request, Response
from pydantic import BaseModel, Field

from gateway.api.changes import ItemKind
from gateway.api.deps import errors, require, runtime
from gateway.auth import Principal
from ingest.config import DeviceConfig
from gateway.api.parts import ApiRuntime

router = APIRouter(tags=["devices"])
DEVICE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DEVICES: ItemKind[DeviceConfig] = ItemKind("device", lambda rt: rt.deployment.devices, lambda rt: rt.device_changes,
                                           lambda rt: rt.config.reload_devices)


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


def _check_place(rt: ApiRuntime, dev: DeviceConfig) -> None:
    if rt.grids.route(dev.location) is None:
        raise HTTPException(422, "location: outside the district")


@router.get("/devices", response_model=DeviceList, responses=errors(401, 403), summary="Registered devices (no secrets)")
def list_devices(principal: Principal = Depends(require("devices:read")), rt: ApiRuntime = Depends(runtime)) -> DeviceList:
    return DeviceList(items=[device_out(rt, d) for d in rt.deployment.devices])


@router.get("/devices/{device_id}", response_model=DeviceOut, responses=errors(401, 403, 404, 422), summary="One device")
def get_device(device_id: str = PathParam(pattern=DEVICE_ID), principal: Principal = Depends(require("devices:read")),
               rt: ApiRuntime = Depends(runtime)) -> DeviceOut:
    return device_out(rt, DEVICES.existing(rt, device_id))


@router.post("/devices", response_model=DeviceOut, status_code=201, responses=errors(401, 403, 409, 413, 422),
             summary="Register a device (its HMAC secret is write-only)")
def add_device(dev: DeviceConfig, request: Request, principal: Principal = Depends(require("devices:write")),
               rt: ApiRuntime = Depends(runtime)) -> DeviceOut:
    DEVICES.absent(rt, dev)
    _check_place(rt, dev)
    # stored, then to the devices roles and the other API nodes wherever they run
    DEVICES.put(rt, dev, new=True, request=request, principal=principal)
    rt.devices.upsert(dev)
    return device_out(rt, dev)


@router.put("/devices/{device_id}", response_model=DeviceOut, responses=errors(401, 403, 404, 413, 422),
            summary="Replace a device's entry (omit secret to keep the current one)")
def replace_device(dev: DeviceConfig, request: Request, device_id: str = PathParam(pattern=DEVICE_ID),
                   principal: Principal = Depends(require("devices:write")), rt: ApiRuntime = Depends(runtime)) -> DeviceOut:
    old = DEVICES.replaced(rt, device_id, dev)
    if dev.secret is None and old.secret:
        dev = dev.model_copy(update={"secret": old.secret})
    _check_place(rt, dev)
    DEVICES.put(rt, dev, new=False, request=request, principal=principal)
    rt.devices.upsert(dev)  # the id cannot change (checked above); live state survives
    return device_out(rt, dev)


@router.delete("/devices/{device_id}", status_code=204, responses=errors(401, 403, 404, 422), summary="Remove a device")
def delete_device(request: Request, device_id: str = PathParam(pattern=DEVICE_ID),
                  principal: Principal = Depends(require("devices:write")), rt: ApiRuntime = Depends(runtime)) -> Response:
    DEVICES.remove(rt, device_id, request=request, principal=principal)
    rt.devices.remove(device_id)
    return Response(status_code=204)
