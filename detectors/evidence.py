"""Evidence for an anomaly: an annotated snapshot, the raw frame, and an MP4 clip from a pre-event ring buffer.

Nothing is encoded on the analysis thread: ``capture`` only decides the paths (relative to ``evidence_dir``) and
hands the work to one writer thread, so the anomaly leaves at once and its files appear shortly after (snapshots
first — they go ahead of clip work in the writer's queue; an operator sees them well inside the ~2 s budget).

Clips: a camera has at most one clip collecting at a time. A later anomaly of that camera while it is still
collecting shares it — its Evidence links the same file and the clip is extended to cover ``post_s`` after the new
anomaly, up to ``max_clip_s`` of video — instead of encoding the same frames once per anomaly (which on a busy
camera cost more than decoding it). The clip is encoded as it grows (H.264, ``ultrafast``, one thread, so it never
takes both cores from the detector), which also keeps memory to the ring buffer and the writer's backlog.
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

from detectors.anomaly import Evidence
from detectors.config import EvidenceConfig

log = logging.getLogger(__name__)

MAX_CLIP_BACKLOG = 1000  # clip frames waiting for the encoder; beyond this new frames are dropped (and counted)


@dataclass(eq=False)
class _Clip:
    path: Path
    until: float
    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)  # handed to the writer, not yet encoded
    start: float = 0.0
    failed: bool = False


@dataclass(eq=False)
class _Stills:
    """Snapshot + frame JPEGs of one anomaly, written by the writer thread."""

    items: list[tuple[Path, np.ndarray, list, list | None]]  # (absolute path, image, boxes, zone — none for the raw frame)
    quality: int
    owner: "EvidenceRecorder | None" = None


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
    """One MP4 being written frame by frame (variable frame rate, ms time base, even dimensions)."""

    def __init__(self, path: Path, w: int, h: int):
        import av

        self.path, self.tmp = path, path.with_name(path.name + ".part")
        self.w, self.h = w - w % 2, h - h % 2
        self.t0: float | None = None
        self.last = -1
        self.frames = 0
        self.out = av.open(str(self.tmp), mode="w", format="mp4")
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
        self.tmp.replace(self.path)

    def abort(self) -> None:
        try:
            self.out.close()
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)  # a full disk or a broken frame must not leave half files behind


class ClipWriter:
    """The one evidence writer thread: snapshot/frame JPEGs first, then clip frames, encoded as they come.

    ``put(clip)`` hands over a finished clip (all its frames); a recorder streams a collecting clip's frames with
    ``add_frames`` and ends it with ``end``. ``wait_idle`` lets tests and shutdown wait for the files.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._stills: deque[_Stills] = deque()
        self._clips: deque[tuple[str, _Clip, list[tuple[float, np.ndarray]]]] = deque()
        self._backlog = 0
        self._busy = False
        self._closed = False
        self._encoders: dict[int, _Encoder] = {}
        self._thread = threading.Thread(target=self._run, name="gw-evidence", daemon=True)
        self._thread.start()
        self.written = 0  # clips
        self.failed = 0
        self.stills_written = 0
        self.stills_failed = 0
        self.dropped_frames = 0

    # -- producers (analysis thread) ---------------------------------------------------------------------------
    def put_stills(self, job: _Stills) -> None:
        with self._cond:
            self._stills.append(job)
            self._cond.notify()

    def add_frames(self, clip: _Clip, frames: list[tuple[float, np.ndarray]]) -> None:
        with self._cond:
            if self._backlog + len(frames) > MAX_CLIP_BACKLOG:
                self.dropped_frames += len(frames)
                if self.dropped_frames in (1, 10, 100) or self.dropped_frames % 1000 == 0:
                    log.warning("evidence writer behind: %d clip frames dropped so far", self.dropped_frames)
                return
            self._backlog += len(frames)
            self._clips.append(("frames", clip, frames))
            self._cond.notify()

    def end(self, clip: _Clip) -> None:
        with self._cond:
            self._clips.append(("end", clip, []))
            self._cond.notify()

    def put(self, clip: _Clip) -> None:
        """A whole clip at once (its frames, then its end)."""
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
            while self._stills or self._clips or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._stills) + sum(1 for kind, _, _ in self._clips if kind == "end")

    # -- the thread --------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stills and not self._clips and not self._closed:
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait()
                if self._stills:
                    job: object = self._stills.popleft()
                elif self._clips:
                    job = self._clips.popleft()
                    self._backlog -= len(job[2])
                else:  # closed and drained
                    self._busy = False
                    self._cond.notify_all()
                    for enc in self._encoders.values():
                        self._finish(enc)
                    self._encoders.clear()
                    return
                self._busy = True
            if isinstance(job, _Stills):
                self._write_stills(job)
            else:
                self._clip_work(*job)

    def _write_stills(self, job: _Stills) -> None:
        q = [int(cv2.IMWRITE_JPEG_QUALITY), job.quality]
        for path, image, boxes, zone in job.items:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                ok = cv2.imwrite(str(path), annotate(image, boxes, zone) if boxes or zone else image, q)
            except (OSError, cv2.error) as exc:
                log.error("evidence %s not written: %s", path, exc)
                ok = False
            if ok:
                self.stills_written += 1
            else:
                self.stills_failed += 1
                if job.owner is not None:
                    job.owner.failures += 1

    def _clip_work(self, kind: str, clip: _Clip, frames: list[tuple[float, np.ndarray]]) -> None:
        key = id(clip)
        if kind == "end":
            enc = self._encoders.pop(key, None)
            if enc is not None:
                self._finish(enc)
            return
        if clip.failed:
            return
        try:
            enc = self._encoders.get(key)
            if enc is None:
                clip.path.parent.mkdir(parents=True, exist_ok=True)
                h, w = frames[0][1].shape[:2]
                enc = self._encoders[key] = _Encoder(clip.path, w, h)
            for t, img in frames:
                enc.add(t, img)
        except Exception:
            clip.failed = True
            self.failed += 1
            log.exception("writing clip %s failed", clip.path)
            enc = self._encoders.pop(key, None)
            if enc is not None:
                enc.abort()

    def _finish(self, enc: _Encoder) -> None:
        try:
            enc.finish()
            self.written += 1
        except Exception:
            self.failed += 1
            log.exception("writing clip %s failed", enc.path)


def write_mp4(path: Path, frames: list[tuple[float, np.ndarray]]) -> None:
    """Encode (time, BGR image) pairs with their real timing; no ``.part`` file is left behind on failure."""
    if not frames:
        return
    h, w = frames[0][1].shape[:2]
    enc = _Encoder(path, w, h)
    try:
        for t, img in frames:
            enc.add(t, img)
    except BaseException:
        enc.abort()
        raise
    enc.finish()


class EvidenceRecorder:
    """Per camera: keeps the ring buffer and the one clip still collecting post-event frames."""

    def __init__(self, camera_id: str, root: Path, cfg: EvidenceConfig, writer: ClipWriter):
        self.camera_id = camera_id
        self.root = root
        self.cfg = cfg
        self.writer = writer
        self._ring: deque[tuple[float, np.ndarray]] = deque(maxlen=max(1, int(cfg.pre_s * cfg.fps) + 1))
        self._last = -1e18
        self._open: _Clip | None = None
        self.failures = 0  # evidence files that could not be written (disk full, permissions); counted by the writer
        self.clips = 0  # clips started
        self.shared = 0  # anomalies that linked a clip already collecting

    def record(self, image: np.ndarray, now: float) -> None:
        """Offer every analysed frame; kept at ``cfg.fps`` and ``cfg.max_width``."""
        if not self.cfg.enabled or now - self._last < 1.0 / self.cfg.fps - 1e-6:
            return
        self._last = now
        small = _scaled(image, self.cfg.max_width)
        self._ring.append((now, small))
        clip = self._open
        if clip is not None:
            self.writer.add_frames(clip, [(now, small)])
            if now >= clip.until:
                self.writer.end(clip)
                self._open = None

    def capture(self, anomaly_id: str, image: np.ndarray, now: float,
                boxes: list[tuple[tuple[float, float, float, float], str]],
                zone: list[tuple[float, float]] | None = None) -> list[Evidence]:
        """Name the snapshot, frame and clip and queue them for the writer; returns the Evidence list at once.

        The files appear shortly after (the writer thread); one that cannot be written (disk full) is logged and
        counted in ``failures`` — the anomaly itself is never held back for its evidence.
        """
        if not self.cfg.enabled:
            return []
        day = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d")
        rel = Path(self.camera_id) / day
        snap, raw = rel / f"{anomaly_id}-snapshot.jpg", rel / f"{anomaly_id}-frame.jpg"
        self.writer.put_stills(_Stills([(self.root / snap, image, list(boxes), zone),
                                        (self.root / raw, image, [], None)], self.cfg.jpeg_quality, self))
        evidence = [Evidence(kind="snapshot", path=snap.as_posix()), Evidence(kind="frame", path=raw.as_posix())]
        clip = self._clip_for(anomaly_id, rel, now)
        if clip is not None:
            evidence.append(Evidence(kind="clip", path=clip.relative_to(self.root).as_posix(), content_type="video/mp4"))
        return evidence

    def _clip_for(self, anomaly_id: str, rel: Path, now: float) -> Path | None:
        """The clip this anomaly links: the one still collecting (extended), or a new one from the ring buffer."""
        cfg = self.cfg
        clip = self._open
        if clip is not None and now + cfg.post_s <= clip.start + cfg.max_clip_s:
            clip.until = max(clip.until, now + cfg.post_s)
            self.shared += 1
            return clip.path
        if clip is not None:  # too long already: close it, start afresh
            self.writer.end(clip)
            self._open = None
        if cfg.post_s <= 0 and not self._ring:
            return None
        frames = list(self._ring)
        clip = _Clip(self.root / rel / f"{anomaly_id}-clip.mp4", now + cfg.post_s,
                     start=frames[0][0] if frames else now)
        self.clips += 1
        if frames:
            self.writer.add_frames(clip, frames)
        if cfg.post_s > 0:
            self._open = clip
        else:
            self.writer.end(clip)
        return clip.path

    def flush(self) -> None:
        """Hand the unfinished clip to the writer with what it has (camera removed, pipeline stopping)."""
        if self._open is not None:
            self.writer.end(self._open)
            self._open = None
