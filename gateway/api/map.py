"""The console map's layers in one call: grids, cameras (with their field of view), households and sensors with
their state, and open tickets; plus the deployment's base maps and the offline tile folders.

Every layer is cut to the caller's grids: a grid worker receives the polygons, cameras, devices and tickets of
their own grids only (the polygons of the units above them come along as outlines, without anything inside).
Positions are stored in WGS-84; a map drawn over a Chinese provider's GCJ-02 tiles asks for ``crs=GCJ02`` and
gets every coordinate offset with ``ingest.geo`` so the layers land on the right street.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Literal

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from gateway.api.deps import errors, require, require_media, runtime
from gateway.auth import Principal
from ingest.geo import wgs84_to_gcj02
from gateway.api.parts import ApiRuntime

router = APIRouter(tags=["map"])

TILE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
TILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
OPEN_STATUSES_LIMIT = 500
Crs = Literal["WGS84", "GCJ02"]


class TileOut(BaseModel):
    name: str
    url: str = Field(description="XYZ template; offline folders are served under /api/v1/map/tiles/{name}/… (needs ?mt=)")
    offline: bool
    crs: Crs
    attribution: str = ""
    max_zoom: int = 18


class CameraMarker(BaseModel):
    id: str
    name: str
    lon: float
    lat: float
    bearing_deg: float
    fov_deg: float
    range_m: float = Field(description="drawn length of the field-of-view cone (grows with mounting height)")
    grid_code: str | None
    grid_name: str | None
    community: str | None = Field(None, description="code of the community the camera stands in")
    community_name: str | None = None
    street: str | None = None
    street_name: str | None = None
    health: str


class DeviceMarker(BaseModel):
    id: str
    type: str
    name: str
    household: str | None
    address: str
    lon: float
    lat: float
    grid_code: str | None
    online: bool | None
    battery: float | None = None
    last_seen: float | None = None
    state: Literal["alarm", "online", "offline", "unknown"] = Field(description="alarm: an open ticket came from it")
    open_ticket: int | None = None


class TicketDot(BaseModel):
    id: int
    number: str
    status: str
    title: str
    category: str
    severity: str
    grid_code: str
    lon: float
    lat: float
    source_kind: str
    source_id: str


class MapLayers(BaseModel):
    crs: Crs
    grids: dict[str, Any] = Field(description="GeoJSON FeatureCollection; properties.mine = inside the caller's grids")
    cameras: list[CameraMarker]
    devices: list[DeviceMarker]
    tickets: list[TicketDot]
    tiles: list[TileOut]


def _projector(crs: Crs) -> Callable[[float, float], tuple[float, float]]:
    if crs == "GCJ02":
        return wgs84_to_gcj02
    return lambda lon, lat: (lon, lat)


def _project_geometry(geometry: dict, project: Callable[[float, float], tuple[float, float]]) -> dict:
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    out = [[[list(project(x, y)) for x, y, *_ in ring] for ring in poly] for poly in polygons]
    return {"type": geometry["type"], "coordinates": out[0] if geometry["type"] == "Polygon" else out}


def tile_sources(dep: Any) -> list[TileOut]:
    """The base maps the deployment names (``gateway.map_tiles``, plus the older single ``tile_url``)."""
    out = []
    if dep.gateway.tile_url:
        out.append(TileOut(name="tiles", url=dep.gateway.tile_url, offline=False, crs="WGS84"))
    for src in dep.gateway.map_tiles:
        url = src.url or f"/api/v1/map/tiles/{src.name}/{{z}}/{{x}}/{{y}}"
        out.append(TileOut(name=src.name, url=url, offline=src.dir is not None, crs=src.crs,
                           attribution=src.attribution, max_zoom=src.max_zoom))
    return out


def _visible_grids(rt: ApiRuntime, principal: Principal, project: Callable) -> dict[str, Any]:
    """The caller's grids, filled, and the units above them as outlines; nothing of other grids."""
    shown: dict[str, bool] = {}
    for g in rt.grids.all():
        if principal.sees_grid(g.code):
            shown[g.code] = True
            for up in rt.grids.ancestors(g.code)[1:]:
                shown.setdefault(up.code, principal.sees_grid(up.code))
    features = []
    for code in sorted(shown):
        f = rt.grids.get(code).to_feature()
        f["properties"]["mine"] = shown[code]
        f["geometry"] = _project_geometry(f["geometry"], project)
        features.append(f)
    return {"type": "FeatureCollection", "features": features}


def _unit(rt: ApiRuntime, grid_code: str | None, level: str) -> Any:
    if not grid_code:
        return None
    return next((g for g in rt.grids.ancestors(grid_code) if g.level == level), None)


def _health(statuses: dict[str, dict], camera_id: str) -> str:
    """The camera's state as its video role last reported it (any process, any host)."""
    st = statuses.get(camera_id)
    return st.get("state", "unknown") if st is not None else "not reported"


def camera_markers(rt: ApiRuntime, principal: Principal, project: Callable) -> list[CameraMarker]:
    """Cameras standing in the caller's grids, with the grid, community and street they belong to."""
    out = []
    statuses = rt.camera_state.status([c.id for c in rt.deployment.cameras])
    for cam in rt.deployment.cameras:
        pos = cam.pose.position.wgs84()
        grid = rt.grids.route(cam.pose.position)
        code = grid.code if grid else None
        if not principal.sees_grid(code):
            continue
        community, street = _unit(rt, code, "community"), _unit(rt, code, "street")
        lon, lat = project(pos.lon, pos.lat)
        out.append(CameraMarker(
            id=cam.id, name=cam.name, lon=lon, lat=lat, bearing_deg=cam.pose.bearing_deg, fov_deg=cam.pose.fov_deg,
            range_m=max(40.0, min(250.0, cam.pose.height_m * 12)), grid_code=code, grid_name=grid.name if grid else None,
            community=community.code if community else None, community_name=community.name if community else None,
            street=street.code if street else None, street_name=street.name if street else None,
            health=_health(statuses, cam.id)))
    return out


def device_markers(rt: ApiRuntime, principal: Principal, project: Callable, tickets: list[dict]) -> list[DeviceMarker]:
    """Set-top boxes and sensors in the caller's grids; ``alarm`` when one of its tickets is still open."""
    open_by_source = {}
    for tk in sorted(tickets, key=lambda t: t["id"]):
        if tk["source"]["kind"] in ("alarm", "sensor"):
            open_by_source[tk["source"]["id"]] = tk["id"]
    out = []
    for dev in rt.deployment.devices:
        grid = rt.grids.route(dev.location)
        code = grid.code if grid else None
        if not principal.sees_grid(code):
            continue
        live = rt.devices.get(dev.id)
        pub = live.public() if live is not None else {}
        online = pub.get("online")
        ticket = open_by_source.get(dev.id)
        state = "alarm" if ticket else ("online" if online else "offline" if online is False else "unknown")
        pos = dev.location.wgs84()
        lon, lat = project(pos.lon, pos.lat)
        out.append(DeviceMarker(id=dev.id, type=dev.type, name=dev.name, household=dev.household, address=dev.address,
                                lon=lon, lat=lat, grid_code=code, online=online, battery=pub.get("battery"),
                                last_seen=pub.get("last_seen"), state=state, open_ticket=ticket))
    return out


def _ticket_dots(tickets: list[dict], project: Callable) -> list[TicketDot]:
    out = []
    for tk in tickets:
        loc = tk.get("location") or {}
        if loc.get("lon") is None or loc.get("lat") is None:
            continue
        lon, lat = project(loc["lon"], loc["lat"])
        out.append(TicketDot(id=tk["id"], number=tk["number"], status=tk["status"], title=tk["title"],
                             category=tk["category"], severity=tk["severity"], grid_code=tk["grid_code"], lon=lon, lat=lat,
                             source_kind=tk["source"]["kind"], source_id=tk["source"]["id"]))
    return out


def scope_codes(principal: Principal) -> list[str] | None:
    return None if principal.scope is None else list(principal.grids)


@router.get("/map/layers", response_model=MapLayers, responses=errors(401, 403, 422),
            summary="Everything the console map draws, cut to the caller's grids")
def layers(crs: Crs = Query("WGS84", description="GCJ02 to draw over a Chinese provider's tiles"),
           principal: Principal = Depends(require("tickets:read")), rt: ApiRuntime = Depends(runtime)) -> MapLayers:
    project = _projector(crs)
    tickets = rt.cases.list_tickets(grids=scope_codes(principal), open_only=True, limit=OPEN_STATUSES_LIMIT).items
    return MapLayers(crs=crs, grids=_visible_grids(rt, principal, project), cameras=camera_markers(rt, principal, project),
                     devices=device_markers(rt, principal, project, tickets), tickets=_ticket_dots(tickets, project),
                     tiles=tile_sources(rt.deployment))


@router.get("/map/tiles/{name}/{z}/{x}/{y}", response_class=FileResponse, responses={
    200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}, "description": "one tile"},
    **errors(401, 403, 404, 422)}, summary="A tile of an offline tile folder (gateway.map_tiles[].dir)")
def tile(name: str = PathParam(pattern=TILE_NAME), z: int = PathParam(ge=0, le=22), x: int = PathParam(ge=0),
         y: str = PathParam(pattern=r"^[0-9]{1,8}(\.(png|jpg|jpeg|webp))?$"),
         principal: Principal = Depends(require_media("tickets:read")), rt: ApiRuntime = Depends(runtime)) -> FileResponse:
    src = next((s for s in rt.deployment.gateway.map_tiles if s.name == name and s.dir), None)
    if src is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such offline tile source")
    row = re.match(r"^[0-9]+", y).group(0)  # type: ignore[union-attr]
    folder = Path(rt.deployment.resolve(src.dir)) / str(z) / str(x)
    for ext, media in TILE_TYPES.items():
        path = folder / f"{row}{ext}"
        if path.is_file():
            return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=86400"})
    raise HTTPException(status.HTTP_404_NOT_FOUND, "no such tile")

