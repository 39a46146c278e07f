"""Camera live view: WebRTC (aiortc) with the detection boxes drawn in, and the frames the MJPEG fallback sends.

The server answers a browser's SDP offer with a send-only video track built from the newest picture
the camera's video role put in Redis (``detectors.camera_state``: JPEG + overlay boxes, up to 10 fps
while a viewer's watch key exists), so a live view works wherever the camera is decoded, costs one
encoder per viewer and never touches the decoder. There are no STUN/TURN servers by default: the console and the gateway are
on the same network in a command centre (host candidates suffice).
"""
from __future__ import annotations

import asyncio
import fractions
import logging
import time
from functools import partial
from typing import Any, Iterable

import cv2
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from detectors.engine import OverlayBox
from gateway.api.deps import errors, require
from gateway.api.parts import ApiRuntime
from gateway.auth import Principal

log = logging.getLogger(__name__)
router = APIRouter(tags=["cameras"])

VIEW_FPS = 10
MAX_WIDTH = 960
MAX_VIEWS = 16
_COLOURS = [(0, 200, 255), (0, 255, 0), (255, 128, 0), (255, 0, 255), (0, 128, 255)]


def detections_for(runtime: ApiRuntime, camera_id: str) -> list[OverlayBox]:
    """The objects the video role tracks on this camera now, boxes normalised to 0..1 (so any frame size fits)."""
    try:
        overlay = runtime.camera_state.overlay(camera_id)
        size = overlay.get("size")
        if not size or not overlay.get("boxes"):
            return []
        w, h = float(size[0]), float(size[1])
        return [OverlayBox((b["box"][0] / w, b["box"][1] / h, b["box"][2] / w, b["box"][3] / h), b["label"],
                           float(b["score"]), b.get("track_id")) for b in overlay["boxes"]]
    except Exception:  # drawing boxes is a nicety; the picture must still go out
        log.debug("no detections for %s", camera_id, exc_info=True)
        return []


def latest_image(runtime: ApiRuntime, camera_id: str) -> np.ndarray | None:
    """The camera's newest picture from Redis, decoded; None when its video role has published none."""
    data = runtime.camera_state.jpeg(camera_id)
    if not data:
        return None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return image if image is not None and image.size else None


def draw(image: np.ndarray, boxes: Iterable[OverlayBox]) -> np.ndarray:
    """A copy of the frame with boxes and labels; ``boxes`` are normalised (0..1), so they fit any frame size."""
    out = image.copy()
    h, w = out.shape[:2]
    for i, b in enumerate(boxes):
        x1, y1, x2, y2 = b.box[0] * w, b.box[1] * h, b.box[2] * w, b.box[3] * h
        text = f"{b.label} {b.score:.2f}" + (f" #{b.track_id}" if b.track_id is not None else "")
        colour = _COLOURS[i % len(_COLOURS)]
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), colour, 2)
        if text.strip():
            cv2.putText(out, text, (int(x1), max(12, int(y1) - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    return out


def render(runtime: ApiRuntime, camera_id: str, *, watch: bool = False) -> np.ndarray:
    """The newest frame of a camera with boxes, scaled to at most MAX_WIDTH; a 'no signal' card when none.

    ``watch`` (live views) asks the camera's video role for pictures at the live rate.
    """
    if watch:
        runtime.camera_state.watch(camera_id)
    img = latest_image(runtime, camera_id)
    if img is None:
        return _no_signal()
    if img.shape[1] > MAX_WIDTH:
        scale = MAX_WIDTH / img.shape[1]
        img = cv2.resize(img, (MAX_WIDTH, int(round(img.shape[0] * scale / 2)) * 2), interpolation=cv2.INTER_AREA)
    elif img.shape[1] % 2 or img.shape[0] % 2:  # H.264 wants even sizes
        img = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
    dets = detections_for(runtime, camera_id)
    return draw(img, dets) if dets else img


def jpeg(image: np.ndarray, quality: int = 75) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class SdpIn(BaseModel):
    sdp: str = Field(max_length=65536)
    type: str = Field("offer", pattern="^offer$")


class SdpOut(BaseModel):
    sdp: str
    type: str = "answer"


def _camera_track_class() -> type:
    from aiortc import VideoStreamTrack
    from av import VideoFrame

    class CameraTrack(VideoStreamTrack):
        """Sends the newest frame of one camera at VIEW_FPS, boxes drawn in."""

        kind = "video"

        def __init__(self, runtime: ApiRuntime, camera_id: str):
            super().__init__()
            self.runtime, self.camera_id = runtime, camera_id
            self._start: float | None = None
            self._n = 0

        async def recv(self) -> VideoFrame:
            if self._start is None:
                self._start = time.monotonic()
            self._n += 1
            due = self._start + self._n / VIEW_FPS
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            image = await asyncio.to_thread(partial(render, self.runtime, self.camera_id, watch=True))
            frame = VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = int(self._n * 90000 / VIEW_FPS)
            frame.time_base = fractions.Fraction(1, 90000)
            return frame

    return CameraTrack


class LiveViews:
    """The open WebRTC peer connections, closed when they fail or when the app stops."""

    def __init__(self, runtime: ApiRuntime):
        self.runtime = runtime
        self._pcs: set[Any] = set()

    @property
    def count(self) -> int:
        return len(self._pcs)

    async def answer(self, camera_id: str, offer: SdpIn) -> SdpOut:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        if len(self._pcs) >= MAX_VIEWS:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "too many live views; use the MJPEG view")
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pcs.add(pc)

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await pc.close()
                self._pcs.discard(pc)

        try:
            pc.addTrack(_camera_track_class()(self.runtime, camera_id))
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # a malformed offer must not leave a half-open connection behind
            await pc.close()
            self._pcs.discard(pc)
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"bad SDP offer: {type(exc).__name__}") from None
        return SdpOut(sdp=pc.localDescription.sdp, type=pc.localDescription.type)

    async def close(self) -> None:
        pcs, self._pcs = list(self._pcs), set()
        await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)


@router.post("/cameras/{camera_id}/webrtc", response_model=SdpOut, responses=errors(400, 401, 403, 404, 422, 503),
             summary="WebRTC live view: post the browser's SDP offer, get the answer (send-only video)")
async def webrtc_offer(camera_id: str, offer: SdpIn, request: Request,
                       principal: Principal = Depends(require("cameras:read"))) -> SdpOut:
    from gateway.api.cameras import visible_camera

    visible_camera(request.app.state.runtime, principal, camera_id)
    return await request.app.state.webrtc.answer(camera_id, offer)
