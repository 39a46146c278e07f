"""Cameras: list with health, add / replace / remove, probe a URL first, snapshot and MJPEG live view.

The video work is the video role's, in whatever process or host runs it: this router reads camera state
from Redis (``detectors.camera_state``: status, latest JPEG, overlay boxes) and hands camera changes over
through ``CameraControl`` (a row of the SQL store, then a control stream the video roles and the other API
nodes follow). It validates, authorises and audits; probing and the SSRF guard are ``ingest.video``'s.
Source URLs are always answered redacted (``rtsp://admin:***@…``). Changes made here outlive restarts: the
deployment file is only the seed (see docs/OPERATORS.md).
"""
from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import asdict
from functools import partial
from typing import Any, AsyncIterator

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.changes import ItemKind
from gateway.api.deps import errors, forbidden, require, require_media, runtime
from gateway.auth import Principal
from gateway.config import Camera
from gateway.api.parts import ApiRuntime

log = logging.getLogger(__name__)
router = APIRouter(tags=["cameras"])

CAMERA_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MJPEG_FPS = 5.0
MJPEG_MAX_S = 600.0
CAMERAS: ItemKind[Camera] = ItemKind("camera", lambda rt: rt.deployment.cameras, lambda rt: rt.camera_control,
                                     lambda rt: rt.config.reload_cameras)


class CameraHealth(BaseModel):
    model_config = ConfigDict(extra="allow")
    state: str = Field("unknown", description="live, connecting, stalled, offline, disabled, unknown …")
    fps: float | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class CameraOut(BaseModel):
    """A camera's configuration (source URL redacted) with its current health."""

    model_config = ConfigDict(extra="allow")
    id: str
    name: str
    enabled: bool
    source: dict[str, Any]
    pose: dict[str, Any]
    analysis: dict[str, Any]
    zones: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    detect: dict[str, Any]
    motion: dict[str, Any]
    rules: list[dict[str, Any]]
    grid_code: str | None = Field(None, description="the grid the camera stands in")
    health: CameraHealth


class CameraList(BaseModel):
    items: list[CameraOut] = Field(description="this page, in the deployment's order")
    total: int = Field(description="cameras matching the filters, over all pages")
    offset: int
    limit: int
    next_offset: int | None = Field(None, description="offset of the next page; null on the last")


class ProbeIn(BaseModel):
    url: str = Field(min_length=1, max_length=2048)
    timeout_s: float = Field(8.0, gt=0, le=20)


class ProbeOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    ok: bool
    url: str = Field(description="redacted")
    detail: dict[str, Any] = Field(default_factory=dict, description="codec, size, fps … as the probe found them")
    snapshot: str | None = Field(None, description="base64 JPEG of the first frame, when one was decoded")


class StatusOut(BaseModel):
    cameras: dict[str, CameraHealth]


def _redact(url: str | None) -> str | None:
    if not url:
        return url
    try:
        from ingest.video.urls import redact_url

        return redact_url(url)
    except Exception:
        return "<redacted>"


def _health_of(raw: dict[str, Any] | None) -> CameraHealth:
    if raw is None:
        return CameraHealth(state="not reported", detail={"reason": "no video role has published this camera's state"})
    detail = {k: v for k, v in raw.items() if k != "state" and "url" not in k}
    return CameraHealth(state=raw.get("state", "unknown"), fps=raw.get("camera_fps"), detail=detail)


def _healths(rt: ApiRuntime, camera_ids: list[str]) -> dict[str, CameraHealth]:
    found = rt.camera_state.status(camera_ids)
    return {cid: _health_of(found.get(cid)) for cid in camera_ids}


def _health(rt: ApiRuntime, camera_id: str) -> CameraHealth:
    return _healths(rt, [camera_id])[camera_id]


def camera_out(rt: ApiRuntime, cam: Camera, health: CameraHealth | None = None, *, grid_code: str | None = None) -> CameraOut:
    """``grid_code``: the camera's grid when the caller already knows it (the list's catalog)."""
    data = cam.model_dump(mode="json")
    src = data["source"]
    for key in ("url", "fallback", "substream_url"):
        if src.get(key):
            src[key] = _redact(src[key])
    if grid_code is None:
        grid = rt.grids.route(cam.pose.position)
        grid_code = grid.code if grid else None
    data["grid_code"] = grid_code
    data["health"] = health if health is not None else _health(rt, cam.id)
    return CameraOut.model_validate(data)


def visible_camera(rt: ApiRuntime, principal: Principal, camera_id: str) -> Camera:
    """The camera if the caller may see it (its position lies in their grids); 403 otherwise, existing or not."""
    cam = CAMERAS.find(rt, camera_id)
    if cam is None:
        if principal.scope is None or principal.role == "integrator":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such camera")
        raise forbidden()
    if principal.role != "integrator":
        grid = rt.grids.route(cam.pose.position)
        if not principal.sees_grid(grid.code if grid else None):
            raise forbidden()
    return cam


def _visible_list(rt: ApiRuntime, principal: Principal) -> list[Camera]:
    out = []
    for cam in rt.deployment.cameras:
        grid = rt.grids.route(cam.pose.position)
        if principal.role == "integrator" or principal.sees_grid(grid.code if grid else None):
            out.append(cam)
    return out


def _check_source(rt: ApiRuntime, url: str) -> None:
    from ingest.video.errors import SourceError
    from ingest.video.urls import validate_source_url

    try:
        validate_source_url(url, allow_private=rt.deployment.ingest.source_policy())
    except SourceError as exc:
        raise HTTPException(422, f"source.url: {exc.reason}") from None


def _check_place(rt: ApiRuntime, cam: Camera) -> None:
    if rt.grids.base_grid_at(cam.pose.position) is None:
        p = cam.pose.position.wgs84()
        raise HTTPException(422, f"pose.position: {p.lon:.6f},{p.lat:.6f} is outside every grid")


@router.get("/cameras", response_model=CameraList, responses=errors(401, 403, 422),
            summary="Cameras the caller may see, with health: filtered, searched and paged")
def list_cameras(request: Request, principal: Principal = Depends(require("cameras:read")), rt: ApiRuntime = Depends(runtime),
                 q: str | None = Query(None, max_length=100, description="text in the id, name, grid code or grid/community/street name"),
                 grid: str | None = Query(None, pattern=r"^[0-9]{1,20}$", description="grid code: that grid and the grids below it"),
                 state: str | None = Query(None, max_length=32, description="health state: live, connecting, stalled, offline, not reported …"),
                 host: str | None = Query(None, max_length=255, description="owning host or worker, as the camera's health reports it"),
                 limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> CameraList:
    from gateway.api.camera_query import CameraCatalog, CameraQuery, select

    catalog = getattr(request.app.state, "camera_catalog", None)
    if catalog is None:
        catalog = request.app.state.camera_catalog = CameraCatalog(rt.grids)
    query = CameraQuery(q=q, grid=grid, state=state, host=host, limit=limit, offset=offset)
    integrator = principal.role == "integrator"
    page, total = select(catalog.rows(rt.deployment.cameras), query, lambda code: integrator or principal.sees_grid(code),
                         lambda ids: catalog.health(ids, rt.camera_state.status))
    health = _healths(rt, [r.camera.id for r in page])
    end = offset + len(page)
    answer = CameraList(items=[camera_out(rt, r.camera, health[r.camera.id], grid_code=r.grid_code) for r in page],
                        total=total, offset=offset, limit=limit, next_offset=end if end < total else None)
    # already validated: answered as JSON directly (FastAPI would validate and encode the page a second time)
    return Response(answer.model_dump_json(), media_type="application/json")  # type: ignore[return-value]


@router.get("/cameras/status", response_model=StatusOut, responses=errors(401, 403),
            summary="Health of every visible camera (state, fps, skipped fps, last frame …)")
def cameras_status(principal: Principal = Depends(require("cameras:read")), rt: ApiRuntime = Depends(runtime)) -> StatusOut:
    return StatusOut(cameras=_healths(rt, [c.id for c in _visible_list(rt, principal)]))


@router.post("/cameras/probe", response_model=ProbeOut, responses=errors(401, 403, 413, 422, 503),
             summary="Try a source URL before adding it: codec, size, frame rate and a first snapshot")
async def probe(body: ProbeIn, principal: Principal = Depends(require("cameras:write")), rt: ApiRuntime = Depends(runtime)) -> ProbeOut:
    from ingest.video import probe as probe_url
    from ingest.video.errors import SourceError

    ingest = rt.deployment.ingest
    call = partial(probe_url, body.url, allow_private=ingest.source_policy(), timeout_s=body.timeout_s,
                   base_dir=rt.deployment.base_dir, footage_dir=rt.deployment.resolve(ingest.footage_dir))
    try:
        result = await asyncio.wait_for(asyncio.to_thread(call), body.timeout_s + 5)
    except SourceError as exc:
        raise HTTPException(422, exc.reason) from None
    except asyncio.TimeoutError:
        raise HTTPException(422, "probe timed out") from None
    detail = asdict(result)
    jpeg_bytes = detail.pop("snapshot_jpeg", None)
    snapshot = base64.b64encode(jpeg_bytes).decode() if isinstance(jpeg_bytes, (bytes, bytearray)) else None
    detail = {k: v for k, v in detail.items() if isinstance(v, (str, int, float, bool, type(None), list, dict)) and k != "url"}
    return ProbeOut(ok=True, url=_redact(body.url) or "", detail=detail, snapshot=snapshot)


@router.post("/cameras", response_model=CameraOut, status_code=201, responses=errors(401, 403, 409, 413, 422),
             summary="Attach a camera (source, geo-pose, zones, lines, rules)")
def add_camera(cam: Camera, request: Request, principal: Principal = Depends(require("cameras:write")),
               rt: ApiRuntime = Depends(runtime)) -> CameraOut:
    CAMERAS.absent(rt, cam, f"; PUT /cameras/{cam.id} to change it")
    _check_source(rt, cam.source.url)
    _check_place(rt, cam)
    CAMERAS.put(rt, cam, new=True, request=request, principal=principal, url=_redact(cam.source.url))
    return camera_out(rt, cam)


@router.get("/cameras/{camera_id}", response_model=CameraOut, responses=errors(401, 403, 404, 422), summary="One camera")
def get_camera(camera_id: str = PathParam(pattern=CAMERA_ID), principal: Principal = Depends(require("cameras:read")),
               rt: ApiRuntime = Depends(runtime)) -> CameraOut:
    return camera_out(rt, visible_camera(rt, principal, camera_id))


@router.put("/cameras/{camera_id}", response_model=CameraOut, responses=errors(401, 403, 404, 413, 422),
            summary="Replace a camera's configuration (pose, zones, lines, rules, source)")
def replace_camera(cam: Camera, request: Request, camera_id: str = PathParam(pattern=CAMERA_ID),
                   principal: Principal = Depends(require("cameras:write")), rt: ApiRuntime = Depends(runtime)) -> CameraOut:
    old = CAMERAS.replaced(rt, camera_id, cam)
    if "***" in cam.source.url:  # the console sends back the redacted URL when it was not changed
        cam = cam.model_copy(update={"source": cam.source.model_copy(update={"url": old.source.url})})
    _check_source(rt, cam.source.url)
    _check_place(rt, cam)
    CAMERAS.put(rt, cam, new=False, request=request, principal=principal, url=_redact(cam.source.url))
    return camera_out(rt, cam)


@router.delete("/cameras/{camera_id}", status_code=204, responses=errors(401, 403, 404, 422), summary="Detach a camera")
def delete_camera(request: Request, camera_id: str = PathParam(pattern=CAMERA_ID),
                  principal: Principal = Depends(require("cameras:write")), rt: ApiRuntime = Depends(runtime)) -> Response:
    CAMERAS.remove(rt, camera_id, request=request, principal=principal)
    return Response(status_code=204)


@router.get("/cameras/{camera_id}/snapshot.jpg", response_class=Response, responses={
    200: {"content": {"image/jpeg": {}}, "description": "the newest frame, boxes drawn"}, **errors(401, 403, 404, 422, 503)},
    summary="The newest frame as JPEG (detection boxes drawn)")
def snapshot(camera_id: str = PathParam(pattern=CAMERA_ID), principal: Principal = Depends(require_media("cameras:read")),
             rt: ApiRuntime = Depends(runtime)) -> Response:
    from gateway.webrtc import jpeg, render

    visible_camera(rt, principal, camera_id)
    if not rt.camera_state.jpeg(camera_id):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no frame from this camera yet")
    return Response(jpeg(render(rt, camera_id), 85), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/cameras/{camera_id}/mjpeg", response_class=StreamingResponse, responses={
    200: {"content": {"multipart/x-mixed-replace; boundary=frame": {}}, "description": "MJPEG stream"},
    **errors(401, 403, 404, 422, 503)}, summary="Live view fallback: MJPEG at 5 fps (boxes drawn) for 10 minutes")
async def mjpeg(request: Request, camera_id: str = PathParam(pattern=CAMERA_ID),
                fps: float = Query(MJPEG_FPS, gt=0, le=MJPEG_FPS, description="lower for video-wall tiles"),
                width: int | None = Query(None, ge=160, le=1920, description="scale frames down to this width (tiles)"),
                principal: Principal = Depends(require_media("cameras:read")), rt: ApiRuntime = Depends(runtime)) -> StreamingResponse:
    from gateway.webrtc import jpeg, render

    visible_camera(rt, principal, camera_id)

    def picture() -> bytes:
        import cv2

        img = render(rt, camera_id, watch=True)  # a viewer: the video role sends pictures at the live rate
        if width and img.shape[1] > width:  # a tile's sub-stream: fewer pixels to encode, send and decode
            img = cv2.resize(img, (width, max(2, round(img.shape[0] * width / img.shape[1] / 2) * 2)), interpolation=cv2.INTER_AREA)
        return jpeg(img)

    async def frames() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        end = loop.time() + MJPEG_MAX_S
        while loop.time() < end and not await request.is_disconnected():
            data = await asyncio.to_thread(picture)
            yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n"
            await asyncio.sleep(1.0 / fps)

    return StreamingResponse(frames(), media_type="multipart/x-mixed-replace; boundary=frame",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
