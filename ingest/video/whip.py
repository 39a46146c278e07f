"""WebRTC ingest (WHIP): a browser, phone or encoder publishes to GridWatch; frames join the normal pipeline.

The gateway mounts ``WhipIngest`` behind ``POST /whip/{camera_id}`` (body and answer: application/sdp).
The camera must be configured with ``source.url: "whip:"``; its worker then waits for a publisher,
and stall/offline detection works as for any camera. aiortc decodes the incoming VP8/H.264 in its
own thread; only the newest frame is kept, so a publisher faster than the analysis rate costs nothing.
ICE candidates are gathered before the answer is returned, so no trickle endpoint is needed.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ingest.video.errors import InvalidSourceError, SourceError
from ingest.video.picture import Picture
from ingest.video.source import Source, SourceContext, StreamInfo

if TYPE_CHECKING:
    import av

    from ingest.video.manager import CameraManager

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 1024


class WhipSource(Source):
    """The receiving end inside the camera worker: pictures pushed by WhipIngest, pulled by the decoder thread."""

    kind = "whip"

    def __init__(self, url: str, ctx: SourceContext):
        super().__init__(url, ctx)
        self._cond = threading.Condition()
        self._frame: av.VideoFrame | None = None
        self._session = 0  # bumped per publisher; frames() returns when its publisher leaves
        self._ended = False
        self._t0 = time.monotonic()

    # called from the asyncio side
    def publisher_started(self) -> int:
        with self._cond:
            self._session += 1
            self._ended = False
            self._cond.notify_all()
            return self._session

    def push(self, frame: av.VideoFrame) -> None:
        with self._cond:
            self._frame = frame
            self._cond.notify_all()

    def publisher_left(self, session: int) -> None:
        with self._cond:
            if session == self._session:
                self._ended = True
                self._cond.notify_all()

    # called from the camera worker
    def open(self) -> StreamInfo:
        return StreamInfo(codec="webrtc", kind="whip")

    def frames(self) -> Iterator[Picture]:
        while not self.ctx.stop.is_set():
            with self._cond:
                if self._frame is None and not self._ended:
                    self._cond.wait(0.5)
                frame, self._frame = self._frame, None
                ended = self._ended and frame is None
            if ended:
                with self._cond:
                    self._ended = False
                return  # publisher left: the worker reports it and waits for the next one
            if frame is not None:
                t = frame.time
                yield Picture(pts=float(t) if t is not None else time.monotonic() - self._t0, av_frame=frame,
                              key_frame=bool(frame.key_frame))


class WhipIngest:
    """WHIP endpoint logic: ``await offer(camera_id, sdp)`` returns the answer SDP; one publisher per camera."""

    def __init__(self, manager: CameraManager):
        self._manager = manager
        self._sessions: dict[str, tuple[object, asyncio.Task | None]] = {}

    @property
    def active(self) -> list[str]:
        """Cameras with a connected publisher."""
        return sorted(self._sessions)

    async def offer(self, camera_id: str, sdp: str) -> str:
        """Accept a publisher's SDP offer for a ``whip:`` camera; raise SourceError subclasses when refused."""
        from aiortc import RTCPeerConnection, RTCSessionDescription
        from aiortc.mediastreams import MediaStreamError

        if not isinstance(sdp, str) or len(sdp.encode()) > MAX_SDP_BYTES or not sdp.lstrip().startswith("v=0"):
            raise InvalidSourceError("the body is not an SDP offer (it must start with v=0 and be under 64 KiB)")
        source = self._manager.whip_source(camera_id)
        await self.close(camera_id)  # a new publisher replaces the old one
        pc = RTCPeerConnection()
        session = source.publisher_started()
        self._sessions[camera_id] = (pc, None)

        async def pump(track) -> None:  # noqa: ANN001 - aiortc track
            try:
                while True:
                    frame = await track.recv()
                    source.push(frame)
            except MediaStreamError:
                pass
            except Exception:  # noqa: BLE001
                log.exception("WHIP %s: receiving failed", camera_id)
            finally:
                source.publisher_left(session)

        @pc.on("track")
        def on_track(track) -> None:  # noqa: ANN001
            if track.kind == "video":
                task = asyncio.ensure_future(pump(track))
                self._sessions[camera_id] = (pc, task)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                source.publisher_left(session)
                if self._sessions.get(camera_id, (None,))[0] is pc:
                    await self.close(camera_id)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            if not any(t.kind == "video" for t in pc.getTransceivers()):
                raise InvalidSourceError("the offer has no video track")
            for transceiver in pc.getTransceivers():
                if transceiver.kind != "video":
                    transceiver.direction = "inactive"
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except SourceError:
            await self.close(camera_id)
            raise
        except Exception as exc:  # noqa: BLE001 - aiortc reports bad SDP as ValueError and others
            await self.close(camera_id)
            raise InvalidSourceError(f"cannot accept the offer: {type(exc).__name__}: {exc}") from None
        return pc.localDescription.sdp

    async def close(self, camera_id: str) -> None:
        """Disconnect the camera's publisher (WHIP DELETE on the session resource)."""
        entry = self._sessions.pop(camera_id, None)
        if entry is None:
            return
        pc, task = entry
        if task is not None:
            task.cancel()
        await pc.close()  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        """Disconnect every publisher (gateway shutdown)."""
        for camera_id in list(self._sessions):
            await self.close(camera_id)
