"""One camera at work: a decode thread (connect, decode, pace, reconnect) and a delivery thread (the sink).

The two threads meet at a one-frame slot. The decoder always puts the newest analysis frame there;
if the sink has not taken the previous one yet, that one is dropped and counted as skipped. A slow
detector therefore sees fresher frames less often instead of an ever-growing backlog, and never
slows the decoder down (which, on a live RTSP stream, would make the camera drop *us*).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from ingest.backoff import Backoff
from ingest.config import CameraConfig
from ingest.frame import Frame
from ingest.video.errors import SourceError
from ingest.video.health import CameraState, CameraStatus, HealthEvent, HealthKind, RateMeter
from ingest.video.picture import Picture
from ingest.video.source import Source, SourceContext, StreamInfo
from ingest.video.urls import NETWORK_SCHEMES, redact_text, redact_url, url_scheme, validate_source_url

log = logging.getLogger(__name__)

Sink = Callable[[Frame], None]
Emit = Callable[[HealthEvent], None]

MAX_CONSECUTIVE_BAD_PICTURES = 25
FROZEN_THUMB = (64, 36)
FROZEN_MAX_DIFF = 2  # levels; sensor noise of a live but static scene exceeds it somewhere


class CameraWorker:
    """Decode, pace, deliver and watch one camera. Created and driven by CameraManager."""

    def __init__(self, camera: CameraConfig, url: str, source: Source, ctx: SourceContext, sink: Sink, emit: Emit,
                 note: str = ""):
        self.camera = camera
        self.url = url
        self.source = source
        self.ctx = ctx
        self._sink = sink
        self._emit = emit
        self._lock = threading.Lock()
        self._slot_cond = threading.Condition()
        self._slot: Frame | None = None
        self._threads: list[threading.Thread] = []
        self._rates = RateMeter()
        self.note = note
        # health
        self.state: CameraState = "starting"
        self.reason = note or "connecting"
        self._started_mono = time.monotonic()
        self._last_frame_mono: float | None = None
        self.last_frame_at: float | None = None
        self._offline_reported = False
        self._last_error: str | None = None
        self._error_reported: str | None = None
        self._frozen_since: float | None = None
        self._frozen_reported = False
        self._prev_thumb: np.ndarray | None = None
        # stream facts
        self.codec: str | None = None
        self.kind = source.kind
        self.resolution: tuple[int, int] | None = None
        self.analysis_size: tuple[int, int] | None = None
        # counters
        self.decoded = 0
        self.delivered = 0
        self.skipped = 0
        self.reconnects = 0
        self.sink_errors = 0
        self._seq = 0
        self._next_due = 0.0
        self._interval = 0.0
        self._prev_picture_mono: float | None = None
        self._latest: tuple[Picture, float, int] | None = None
        self._latest_frame: tuple[Picture, Frame] | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        cid = self.camera.id
        self._threads = [
            threading.Thread(target=self._decode_loop, name=f"gw-decode-{cid}", daemon=True),
            threading.Thread(target=self._deliver_loop, name=f"gw-deliver-{cid}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop both threads; a decoder stuck in a network read exits by itself at the read timeout."""
        self.ctx.stop.set()
        with self._slot_cond:
            self._slot_cond.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self._threads if t.is_alive()]
        if stuck:
            log.warning("camera %s: threads %s still finishing a blocking read", self.camera.id, stuck)

    def reconfigure(self, camera: CameraConfig) -> None:
        """Take new analysis/health settings without reconnecting (the source is unchanged)."""
        self.camera = camera
        self.ctx.analysis = camera.analysis
        self._next_due = 0.0

    # ---- decode thread ---------------------------------------------------------------------------------------
    def _decode_loop(self) -> None:
        stop = self.ctx.stop
        health = self.camera.health
        backoff = Backoff(health.reconnect_initial_s, health.reconnect_max_s, jitter=True)  # cameras reconnect together after a switch reboots
        while not stop.is_set():
            opened_at = time.monotonic()
            got_frames = False
            try:
                if url_scheme(self.url) in NETWORK_SCHEMES:
                    validate_source_url(self.url, allow_private=self.ctx.allow_private)  # again: DNS may have changed
                info = self.source.open()
                self._on_open(info)
                bad = 0
                for picture in self.source.frames():
                    if stop.is_set():
                        break
                    got_frames = True
                    if self._on_picture(picture):
                        bad = 0
                    else:
                        bad += 1
                        if bad >= MAX_CONSECUTIVE_BAD_PICTURES:
                            raise SourceError(f"{bad} consecutive pictures could not be decoded")
                reason = "stream ended"
            except SourceError as exc:
                reason = redact_text(exc.reason, self.url)
            except Exception as exc:  # noqa: BLE001 - a source bug must not kill the camera, let alone others
                reason = redact_text(f"unexpected {type(exc).__name__}: {exc}", self.url)
                log.warning("camera %s: unexpected error in source %s", self.camera.id, self.kind, exc_info=True)
            finally:
                try:
                    self.source.close()
                except Exception:  # noqa: BLE001
                    log.debug("camera %s: close failed", self.camera.id, exc_info=True)
            if stop.is_set():
                break
            if got_frames and time.monotonic() - opened_at > 5.0:
                backoff.reset()  # it worked for a while: start the backoff over
            self._on_failure(reason)
            delay = backoff.next_delay()
            log.info("camera %s: %s; reconnecting in %.1fs", self.camera.id, reason, delay)
            if stop.wait(delay):
                break
            with self._lock:
                self.reconnects += 1

    def _on_open(self, info: StreamInfo) -> None:
        with self._lock:
            self.kind = info.kind or self.source.kind
            if info.codec:
                self.codec = info.codec
            if info.width and info.height and self.resolution is None:
                self.resolution = (info.width, info.height)

    def _on_picture(self, picture: Picture) -> bool:
        """Account for one decoded picture; make an analysis frame when one is due. False if it was corrupt."""
        mono = time.monotonic()
        now = time.time()
        self.decoded += 1
        self._last_frame_mono = mono
        self.last_frame_at = now
        self._latest = (picture, now, self._seq)
        if self.state != "online" or self._error_reported is not None:
            self._transition_online("frames flowing")
        previous, self._prev_picture_mono = self._prev_picture_mono, mono
        if previous is not None:  # smoothed camera frame interval, for the decimation tolerance below
            self._interval = 0.9 * self._interval + 0.1 * min(mono - previous, 1.0) if self._interval else mono - previous
        analysis = self.ctx.analysis
        period = 1.0 / analysis.fps
        # A frame half a camera interval early counts as on time; otherwise jitter turns 15→5 fps into 4 fps.
        if mono < self._next_due - self._interval / 2:
            return True
        self._next_due = max(self._next_due + period, mono - period / 2) if self._next_due else mono + period
        try:
            image = picture.to_bgr(analysis.width)
            size = picture.size
        except ValueError as exc:
            log.debug("camera %s: bad picture: %s", self.camera.id, exc)
            return False
        self._check_resolution(size)
        self._check_frozen(image, mono)
        self._seq += 1
        pts = picture.pts if picture.pts is not None else mono - self._started_mono
        frame = Frame(camera_id=self.camera.id, seq=self._seq, pts=float(pts), captured_at=now, image=image,
                      packets=self.source.packets)
        self.analysis_size = (frame.width, frame.height)
        with self._slot_cond:
            if self._slot is not None:
                self.skipped += 1
            self._slot = frame
            self._slot_cond.notify()
        return True

    def _check_resolution(self, size: tuple[int, int]) -> None:
        previous = self.resolution
        if previous == size:
            return
        self.resolution = size
        if previous is not None and self.decoded > 1:
            self._send("resolution_changed", f"{previous[0]}x{previous[1]} -> {size[0]}x{size[1]}")

    def _check_frozen(self, image: np.ndarray, mono: float) -> None:
        # Nearest-neighbour samples, not an average: averaging would hide the sensor noise that tells a
        # live static scene from a frozen encoder, and sampling costs ~10 µs instead of ~150 µs.
        thumb = cv2.resize(image, FROZEN_THUMB, interpolation=cv2.INTER_NEAREST)
        prev, self._prev_thumb = self._prev_thumb, thumb
        same = prev is not None and int(cv2.absdiff(prev, thumb).max()) <= FROZEN_MAX_DIFF
        if not same:
            if self._frozen_reported:
                self._frozen_reported = False
                self._send("online", "picture moving again")
            self._frozen_since = None
            return
        if self._frozen_since is None:
            self._frozen_since = mono
        elif not self._frozen_reported and mono - self._frozen_since >= self.camera.health.frozen_after_s:
            self._frozen_reported = True
            self._send("frozen", f"identical picture for {mono - self._frozen_since:.0f}s")

    # ---- health transitions ----------------------------------------------------------------------------------
    def _send(self, kind: HealthKind, reason: str) -> None:
        event = HealthEvent(camera_id=self.camera.id, kind=kind, reason=reason, at=time.time())
        log.info("camera %s: %s (%s)", self.camera.id, kind, reason)
        try:
            self._emit(event)
        except Exception:  # noqa: BLE001 - a failing listener must not stop decoding
            log.exception("camera %s: health listener failed", self.camera.id)

    def _transition_online(self, reason: str) -> None:
        with self._lock:
            was = self.state
            self.state, self.reason = "online", self.note or reason
            self._offline_reported = False
            self._error_reported = None
            self._last_error = None
        if was != "online":
            self._send("online", "first frame" if was == "starting" else f"frames again after {was}")

    def _on_failure(self, reason: str) -> None:
        with self._lock:
            self._last_error = reason
            if self.state != "offline":  # offline keeps its own reason (duration + last error), see status()
                self.state = "error"
                self.reason = reason
            report = reason != self._error_reported
            self._error_reported = reason
        if report:
            self._send("error", reason)

    def tick(self) -> None:
        """Called by the manager's watchdog a few times a second: stall/offline detection and fps sampling."""
        mono = time.monotonic()
        events: list[tuple[HealthKind, str]] = []
        health = self.camera.health
        with self._lock:
            ref = self._last_frame_mono or self._started_mono
            idle = mono - ref
            if self.state == "online" and idle >= health.stall_after_s:
                self.state, self.reason = "stalled", f"no frame for {idle:.1f}s"
                events.append(("stalled", self.reason))
            if not self._offline_reported and idle >= health.offline_after_s:
                self._offline_reported = True
                self.state = "offline"
                self.reason = self._offline_reason(idle)
                events.append(("offline", self.reason))
        self._rates.sample((self.decoded, self.delivered, self.skipped), mono)
        for kind, reason in events:
            self._send(kind, reason)

    def _offline_reason(self, idle: float) -> str:
        what = "no frame yet" if self._last_frame_mono is None else "no frame"
        return f"{what} for {idle:.0f}s" + (f"; last error: {self._last_error}" if self._last_error else "")

    # ---- delivery thread -------------------------------------------------------------------------------------
    def _deliver_loop(self) -> None:
        stop = self.ctx.stop
        last_log = 0.0
        while not stop.is_set():
            with self._slot_cond:
                if self._slot is None:
                    self._slot_cond.wait(0.5)
                frame, self._slot = self._slot, None
            if frame is None:
                continue
            try:
                self._sink(frame)
            except Exception:  # noqa: BLE001 - the sink's bug is logged, the camera keeps running
                self.sink_errors += 1
                if time.monotonic() - last_log > 10:
                    last_log = time.monotonic()
                    log.exception("camera %s: frame sink failed (%d times so far)", self.camera.id, self.sink_errors)
            self.delivered += 1

    # ---- views -----------------------------------------------------------------------------------------------
    def latest(self) -> Frame | None:
        """The newest decoded picture at full resolution (converted on demand, cached per picture)."""
        latest = self._latest
        if latest is None:
            return None
        picture, at, seq = latest
        cached = self._latest_frame
        if cached is not None and cached[0] is picture:
            return cached[1]
        try:
            image = picture.to_bgr(None)
        except ValueError:
            return cached[1] if cached else None
        pts = picture.pts if picture.pts is not None else 0.0
        frame = Frame(camera_id=self.camera.id, seq=seq, pts=float(pts), captured_at=at, image=image)
        self._latest_frame = (picture, frame)
        return frame

    def status(self) -> CameraStatus:
        rates = self._rates.rates() or (0.0, 0.0, 0.0)
        with self._lock:
            reason = self.reason
            if self.state == "offline":
                reason = self._offline_reason(time.monotonic() - (self._last_frame_mono or self._started_mono))
            return CameraStatus(
                camera_id=self.camera.id,
                state=self.state,
                reason=reason,
                source=redact_url(self.url),
                kind=self.kind,
                codec=self.codec,
                resolution=self.resolution,
                camera_fps=rates[0],
                process_fps=rates[1],
                skipped_fps=rates[2],
                frames=self.delivered,
                decoded=self.decoded,
                skipped=self.skipped,
                reconnects=self.reconnects,
                last_frame_at=self.last_frame_at,
                frozen=self._frozen_reported,
                analysis_size=self.analysis_size,
                extra={"sink_errors": self.sink_errors} if self.sink_errors else {},
            )
