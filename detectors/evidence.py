"""Evidence for an anomaly: an annotated snapshot, the raw frame, and an MP4 clip from before to after the event.

Everything goes through the deployment's blob store (``ingest.blobs``: a local folder, or S3 for several hosts),
and an anomaly names only what was stored (finding F-EVID-1): the two JPEGs are encoded and stored on the analysis
thread before ``capture`` returns (a few ms for the analysis-size frame; a store that is down fails at once, see
``ingest.blobs.s3``), and a clip is named only when its first part is stored, or — for encoded clips — when the
store just took the stills.

Clips, two ways:

* **Remuxed** (cameras read through PyAV: RTSP, RTMP, HLS, files): the camera's own H.264/H.265 packets from the
  source's ring (``ingest.video.packets``), from the keyframe before ``pre_s`` to ``post_s`` after the event, are
  put in an MP4 without decoding or encoding anything — as Frigate records the camera's stream. The part up to the
  event is stored at once (so the named clip exists), the whole clip replaces it when ``post_s`` has passed.
* **Encoded** (sources without packets: synthetic, MJPEG, HTTP snapshots, WHIP): analysis frames from a pre-event
  ring at ``fps``, encoded as they come (H.264, ``ultrafast``, one thread) by the one writer thread and stored when
  finished. The store taking the stills is the proof it is up; should it fail later, the clip named is missing
  (counted in ``ClipWriter.failed``).

A camera has at most one clip collecting at a time; a later anomaly of that camera while it is collecting shares
it — its Evidence links the same clip, extended to ``post_s`` after the new anomaly, up to ``max_clip_s``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ingest.anomaly import Evidence
from detectors.config import EvidenceConfig
from ingest.blobs import BlobError, BlobStore, as_blob_store
from ingest.video.packets import PacketRing, PacketWindow, StreamFormat, StreamPacket, remux_mp4

log = logging.getLogger(__name__)

MAX_CLIP_BACKLOG = 1000  # clip frames waiting for the encoder; beyond this new frames are dropped (and counted)
KEEP_MARGIN_S = 1.0  # packets kept beyond pre_s, so the window's start always has its keyframe
MP4 = "video/mp4"


def _often(n: int) -> bool:
    """Log the 1st, 10th, 100th and every 1000th of a repeated failure, not each."""
    return n in (1, 10, 100) or n % 1000 == 0


@dataclass(eq=False)
class _FrameClip:
    """A clip encoded from analysis frames, stored when finished."""

    store: BlobStore
    key: str
    until: float
    start: float = 0.0
    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)  # handed to the writer, not yet encoded
    failed: bool = False


@dataclass(eq=False)
class _PacketClip:
    """A clip remuxed from the camera's packets: what was collected so far, and where the ring's reading stands."""

    store: BlobStore
    key: str
    until: float
    start: float
    fmt: StreamFormat
    generation: int
    packets: list[StreamPacket]
    last_seq: int


def _scaled(image: np.ndarray, max_width: int) -> np.ndarray:
    h, w = image.shape[:2]
    if w <= max_width:
        return image
    return cv2.resize(image, (max_width, int(round(h * max_width / w))) , interpolation=cv2.INTER_AREA)


def annotate(image: np.ndarray, boxes: list[tuple[tuple[float, float, float, float], str]],
             zone: list[tuple[float, float]] | None = None) -> np.ndarray:
    """The snapshot an operator judges: the rule's zone (yellow outline, normalised points) and its boxes — the
    first box, the object that triggered the rule, in thick red; the others (e.g. a crowd's members) thinner."""
    out = image.copy()
    h, w = out.shape[:2]
    thick = max(2, round(w / 320))
    if zone:
        pts = np.array([[round(x * w), round(y * h)] for x, y in zone], np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [pts], True, (0, 215, 255), thick, cv2.LINE_AA)
    scale = max(0.5, w / 1280)
    for i, ((x1, y1, x2, y2), label) in enumerate(boxes):
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        colour = (0, 0, 255) if i == 0 else (0, 165, 255)
        cv2.rectangle(out, p1, p2, colour, thick if i == 0 else max(1, thick // 2))
        cv2.putText(out, label, (p1[0], max(14, p1[1] - 5)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                    max(1, thick // 2), cv2.LINE_AA)
    return out


class _Encoder:
    """One MP4 being written frame by frame to ``path`` (variable frame rate, ms time base, even dimensions)."""

    def __init__(self, path: Path, w: int, h: int):
        import av

        self.path = path
        self.w, self.h = w - w % 2, h - h % 2
        self.t0: float | None = None
        self.last = -1
        self.frames = 0
        self.out = av.open(str(path), mode="w", format="mp4")
        try:
            stream = self.out.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = self.w, self.h, "yuv420p"
            stream.time_base = Fraction(1, 1000)
            stream.options = {"preset": "ultrafast", "crf": "28"}
            stream.codec_context.thread_count = 1  # the two cores belong to decoding and the detector
            self.stream = stream
        except BaseException:
            self.abort()
            raise

    def add(self, t: float, img: np.ndarray) -> None:
        import av

        if self.t0 is None:
            self.t0 = t
        if img.shape[0] != self.h or img.shape[1] != self.w:
            img = cv2.resize(img, (self.w, self.h)) if img.shape[0] < self.h or img.shape[1] < self.w else img[: self.h, : self.w]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
        pts = max(self.last + 1, int(round((t - self.t0) * 1000)))
        frame.pts, frame.time_base, self.last = pts, Fraction(1, 1000), pts
        for packet in self.stream.encode(frame):
            self.out.mux(packet)
        self.frames += 1

    def finish(self) -> None:
        try:
            for packet in self.stream.encode():
                self.out.mux(packet)
            self.out.close()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        try:
            self.out.close()
        except Exception:
            pass
        self.path.unlink(missing_ok=True)  # a full disk or a broken frame must not leave half files behind


class ClipWriter:
    """The one evidence writer thread: encodes frame clips as their frames come and stores finished clips.

    A recorder streams a collecting frame clip with ``add_frames`` and ends it with ``end``; ``put(clip)`` hands a
    whole one; ``remux(clip)`` stores a packet clip's final MP4. ``wait_idle`` lets tests and shutdown wait.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._clips: deque[tuple[str, _FrameClip | _PacketClip, list[tuple[float, np.ndarray]]]] = deque()
        self._backlog = 0
        self._busy = False
        self._closed = False
        self._encoders: dict[int, tuple[_Encoder, _FrameClip]] = {}
        self._thread = threading.Thread(target=self._run, name="gw-evidence", daemon=True)
        self._thread.start()
        self.written = 0  # clips stored
        self.failed = 0
        self.dropped_frames = 0

    # -- producers (analysis thread) ---------------------------------------------------------------------------
    def add_frames(self, clip: _FrameClip, frames: list[tuple[float, np.ndarray]]) -> None:
        with self._cond:
            if self._backlog + len(frames) > MAX_CLIP_BACKLOG:
                self.dropped_frames += len(frames)
                if _often(self.dropped_frames):
                    log.warning("evidence writer behind: %d clip frames dropped so far", self.dropped_frames)
                return
            self._backlog += len(frames)
            self._clips.append(("frames", clip, frames))
            self._cond.notify()

    def end(self, clip: _FrameClip | _PacketClip) -> None:
        with self._cond:
            self._clips.append(("end", clip, []))
            self._cond.notify()

    def put(self, clip: _FrameClip) -> None:
        """A whole frame clip at once (its frames, then its end)."""
        frames, clip.frames = clip.frames, []
        if frames:
            with self._cond:  # a complete clip is never cut by the backlog bound
                self._backlog += len(frames)
                self._clips.append(("frames", clip, frames))
        self.end(clip)

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every handed-over job is written (tests; a shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._clips or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    @property
    def pending(self) -> int:
        with self._cond:
            return sum(1 for kind, _, _ in self._clips if kind == "end")

    # -- the thread --------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._clips and not self._closed:
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait()
                if not self._clips:  # closed and drained
                    self._busy = False
                    self._cond.notify_all()
                    for key in list(self._encoders):
                        self._finish(key)
                    return
                job = self._clips.popleft()
                self._backlog -= len(job[2])
                self._busy = True
            kind, clip, frames = job
            if isinstance(clip, _PacketClip):
                self._store_remux(clip)
            elif kind == "end":
                self._finish(id(clip))
            else:
                self._encode(clip, frames)

    def _encode(self, clip: _FrameClip, frames: list[tuple[float, np.ndarray]]) -> None:
        key = id(clip)
        if clip.failed:
            return
        try:
            if key not in self._encoders:
                h, w = frames[0][1].shape[:2]
                self._encoders[key] = (_Encoder(clip.store.scratch(clip.key), w, h), clip)
            enc = self._encoders[key][0]
            for t, img in frames:
                enc.add(t, img)
        except Exception as exc:
            clip.failed = True
            self.failed += 1
            log.error("clip %s not written: %s", clip.key, exc)
            held = self._encoders.pop(key, None)
            if held is not None:
                held[0].abort()

    def _finish(self, key: int) -> None:
        held = self._encoders.pop(key, None)
        if held is None:
            return
        enc, clip = held
        try:
            enc.finish()
            clip.store.put_file(clip.key, enc.path, MP4)
            self.written += 1
        except Exception as exc:
            self.failed += 1
            enc.path.unlink(missing_ok=True)
            log.error("clip %s not stored: %s", clip.key, exc)

    def _store_remux(self, clip: _PacketClip) -> None:
        packets = [p for p in clip.packets if p.at <= clip.until]
        try:
            clip.store.put(clip.key, remux_mp4(clip.fmt, packets), MP4)
            self.written += 1
        except Exception as exc:  # the part stored at capture stays: the clip named still plays
            self.failed += 1
            log.error("clip %s not extended past the event: %s", clip.key, exc)


def write_mp4(path: Path, frames: list[tuple[float, np.ndarray]]) -> None:
    """Encode (time, BGR image) pairs with their real timing; no ``.part`` file is left behind on failure."""
    if not frames:
        return
    h, w = frames[0][1].shape[:2]
    tmp = path.with_name(path.name + ".part")
    enc = _Encoder(tmp, w, h)
    try:
        for t, img in frames:
            enc.add(t, img)
        enc.finish()
        tmp.replace(path)
    except BaseException:
        enc.abort()
        raise


class EvidenceRecorder:
    """Per camera: the pre-event ring (the source's packets, else analysis frames) and the one clip collecting."""

    def __init__(self, camera_id: str, store: BlobStore | Path, cfg: EvidenceConfig, writer: ClipWriter):
        self.camera_id = camera_id
        self.store = as_blob_store(store)
        self.cfg = cfg
        self.writer = writer
        self._ring: deque[tuple[float, np.ndarray]] = deque(maxlen=max(1, int(cfg.pre_s * cfg.fps) + 1))
        self._packets: PacketRing | None = None
        self._last = -1e18
        self._open: _FrameClip | _PacketClip | None = None
        self.failures = 0  # evidence that could not be stored (disk full, bucket down): not named by its anomaly
        self.stored = 0  # snapshot/frame JPEGs stored
        self.clips = 0  # clips started
        self.remuxed = 0  # of which cut from the camera's packets
        self.shared = 0  # anomalies that linked a clip already collecting

    # -- every analysed frame -------------------------------------------------------------------------------------
    def record(self, image: np.ndarray, now: float, packets: PacketRing | None = None) -> None:
        """Offer every analysed frame (and its source's packet ring, when it has one)."""
        if not self.cfg.enabled:
            return
        if packets is not None and packets is not self._packets:
            self._packets = packets
            packets.keep(self.cfg.pre_s + KEEP_MARGIN_S)
        clip = self._open
        if isinstance(clip, _PacketClip):
            self._collect(clip, now)
        if now - self._last < 1.0 / self.cfg.fps - 1e-6:
            return
        self._last = now
        if self._packets_ready() and not isinstance(clip, _FrameClip):
            self._ring.clear()  # the packets cover the pre-event seconds: no decoded frames held for that
            return
        small = _scaled(image, self.cfg.max_width)
        self._ring.append((now, small))
        if isinstance(clip, _FrameClip):
            self.writer.add_frames(clip, [(now, small)])
            if now >= clip.until:
                self.writer.end(clip)
                self._open = None

    def _packets_ready(self) -> bool:
        return self._packets is not None and self._packets.ready

    def _collect(self, clip: _PacketClip, now: float) -> None:
        """Move the packets that arrived since the last frame into the collecting clip; hand it over when done."""
        got = self._packets.after(clip.last_seq, clip.generation) if self._packets is not None else None
        if got is not None:
            clip.packets.extend(got[0])
            clip.last_seq = got[1]
        if got is None or now >= clip.until:  # done, or the camera reconnected: the clip ends with what it has
            self.writer.end(clip)
            self._open = None

    # -- an anomaly ---------------------------------------------------------------------------------------------------
    def capture(self, anomaly_id: str, image: np.ndarray, now: float,
                boxes: list[tuple[tuple[float, float, float, float], str]],
                zone: list[tuple[float, float]] | None = None) -> list[Evidence]:
        """Store the snapshot and frame, start or extend the clip; the Evidence of what was stored.

        Anything the store refuses (disk full, bucket down) is logged, counted in ``failures`` and left out — the
        anomaly itself is never held back for its evidence, and never names a file that is not there.
        """
        if not self.cfg.enabled:
            return []
        day = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d")
        rel = f"{self.camera_id}/{day}/{anomaly_id}"
        evidence = []
        annotated = annotate(image, boxes, zone) if boxes or zone else image
        for kind, key, picture in (("snapshot", f"{rel}-snapshot.jpg", annotated), ("frame", f"{rel}-frame.jpg", image)):
            if self._store_jpeg(key, picture):
                evidence.append(Evidence(kind=kind, path=key))
        if evidence:  # the store took the stills: it is up
            clip = self._clip_for(f"{rel}-clip.mp4", now)
            if clip is not None:
                evidence.append(Evidence(kind="clip", path=clip, content_type=MP4))
        return evidence

    def _store_jpeg(self, key: str, image: np.ndarray) -> bool:
        try:
            ok, data = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), self.cfg.jpeg_quality])
            if not ok:
                raise ValueError("the JPEG encoder refused the picture")
            self.store.put(key, data.tobytes(), "image/jpeg")
        except (BlobError, ValueError, cv2.error) as exc:
            self.failures += 1
            if _often(self.failures):
                log.error("camera %s: evidence %s not stored (%d so far): %s", self.camera_id, key, self.failures, exc)
            return False
        self.stored += 1
        return True

    def _clip_for(self, key: str, now: float) -> str | None:
        """The clip this anomaly links: the one still collecting (extended), or a new one."""
        cfg = self.cfg
        clip = self._open
        if clip is not None and now + cfg.post_s <= clip.start + cfg.max_clip_s:
            clip.until = max(clip.until, now + cfg.post_s)
            self.shared += 1
            return clip.key
        if clip is not None:  # too long already: close it, start afresh
            self.writer.end(clip)
            self._open = None
        window = self._packets.window(now - cfg.pre_s, now) if self._packets is not None else None
        if window is not None:
            return self._start_packet_clip(key, now, window)
        return self._start_frame_clip(key, now)

    def _start_packet_clip(self, key: str, now: float, window: PacketWindow) -> str | None:
        """Store the packets up to the event now (the clip named exists at once), collect the rest after."""
        try:
            self.store.put(key, remux_mp4(window.fmt, window.packets), MP4)
        except (BlobError, ValueError, OSError) as exc:  # OSError: PyAV's errors are OSError subclasses
            self.failures += 1
            log.error("camera %s: clip %s not stored: %s", self.camera_id, key, exc)
            return None
        self.clips += 1
        self.remuxed += 1
        clip = _PacketClip(self.store, key, now + self.cfg.post_s, window.packets[0].at, window.fmt,
                           window.generation, list(window.packets), window.last_seq)
        if self.cfg.post_s > 0:
            self._open = clip
        return key

    def _start_frame_clip(self, key: str, now: float) -> str | None:
        cfg = self.cfg
        if cfg.post_s <= 0 and not self._ring:
            return None
        frames = list(self._ring)
        clip = _FrameClip(self.store, key, now + cfg.post_s, start=frames[0][0] if frames else now)
        self.clips += 1
        if frames:
            self.writer.add_frames(clip, frames)
        if cfg.post_s > 0:
            self._open = clip
        else:
            self.writer.end(clip)
        return key

    def flush(self) -> None:
        """Hand the unfinished clip to the writer with what it has (camera removed, pipeline stopping)."""
        if self._open is not None:
            self.writer.end(self._open)
            self._open = None
