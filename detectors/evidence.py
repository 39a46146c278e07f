"""Evidence for an anomaly: an annotated snapshot, the raw frame, and an MP4 clip from a pre-event ring buffer.

The snapshot and frame are written at once (the operator sees them within the ~2 s budget); the clip needs
``post_s`` more seconds of video, so it is collected as frames arrive and encoded with PyAV in one background
writer thread. The anomaly names all three paths (relative to ``evidence_dir``) up front.
"""
from __future__ import annotations

import logging
import queue
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


@dataclass
class _Clip:
    path: Path
    until: float
    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)


def _scaled(image: np.ndarray, max_width: int) -> np.ndarray:
    h, w = image.shape[:2]
    if w <= max_width:
        return image
    return cv2.resize(image, (max_width, int(round(h * max_width / w))) , interpolation=cv2.INTER_AREA)


def annotate(image: np.ndarray, boxes: list[tuple[tuple[float, float, float, float], str]]) -> np.ndarray:
    out = image.copy()
    for (x1, y1, x2, y2), label in boxes:
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(out, p1, p2, (0, 0, 255), 2)
        cv2.putText(out, label, (p1[0], max(12, p1[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1, cv2.LINE_AA)
    return out


class ClipWriter:
    """One thread that encodes finished clips (H.264 via PyAV, yuv420p, even dimensions)."""

    def __init__(self):
        self._queue: queue.Queue[_Clip | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="gw-clips", daemon=True)
        self._thread.start()
        self.written = 0
        self.failed = 0

    def put(self, clip: _Clip) -> None:
        self._queue.put(clip)

    def close(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            clip = self._queue.get()
            if clip is None:
                return
            try:
                write_mp4(clip.path, clip.frames)
                self.written += 1
            except Exception:
                self.failed += 1
                log.exception("writing clip %s failed", clip.path)


def write_mp4(path: Path, frames: list[tuple[float, np.ndarray]]) -> None:
    """Encode (time, BGR image) pairs with their real timing (variable frame rate, ms time base)."""
    import av

    if not frames:
        return
    h, w = frames[0][1].shape[:2]
    w, h = w - w % 2, h - h % 2
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.options = {"preset": "veryfast", "crf": "28"}
        t0, last = frames[0][0], -1
        for t, img in frames:
            if img.shape[0] < h or img.shape[1] < w:
                img = cv2.resize(img, (w, h))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:h, :w]), format="bgr24")
            pts = max(last + 1, int(round((t - t0) * 1000)))
            frame.pts, frame.time_base, last = pts, Fraction(1, 1000), pts
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)


class EvidenceRecorder:
    """Per camera: keeps the ring buffer and the clips still collecting post-event frames."""

    def __init__(self, camera_id: str, root: Path, cfg: EvidenceConfig, writer: ClipWriter):
        self.camera_id = camera_id
        self.root = root
        self.cfg = cfg
        self.writer = writer
        self._ring: deque[tuple[float, np.ndarray]] = deque(maxlen=max(1, int(cfg.pre_s * cfg.fps) + 1))
        self._last = -1e18
        self._open: list[_Clip] = []

    def record(self, image: np.ndarray, now: float) -> None:
        """Offer every analysed frame; kept at ``cfg.fps`` and ``cfg.max_width``."""
        if not self.cfg.enabled or now - self._last < 1.0 / self.cfg.fps - 1e-6:
            return
        self._last = now
        small = _scaled(image, self.cfg.max_width)
        self._ring.append((now, small))
        still = []
        for clip in self._open:
            clip.frames.append((now, small))
            if now >= clip.until:
                self.writer.put(clip)
            else:
                still.append(clip)
        self._open = still

    def capture(self, anomaly_id: str, image: np.ndarray, now: float,
                boxes: list[tuple[tuple[float, float, float, float], str]]) -> list[Evidence]:
        """Write snapshot + frame now, start the clip; returns the Evidence list (paths relative to root)."""
        if not self.cfg.enabled:
            return []
        day = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%d")
        rel = Path(self.camera_id) / day
        (self.root / rel).mkdir(parents=True, exist_ok=True)
        q = [int(cv2.IMWRITE_JPEG_QUALITY), self.cfg.jpeg_quality]
        snap, raw, clip = rel / f"{anomaly_id}-snapshot.jpg", rel / f"{anomaly_id}-frame.jpg", rel / f"{anomaly_id}-clip.mp4"
        cv2.imwrite(str(self.root / snap), annotate(image, boxes), q)
        cv2.imwrite(str(self.root / raw), image, q)
        evidence = [Evidence(kind="snapshot", path=snap.as_posix()), Evidence(kind="frame", path=raw.as_posix())]
        if self.cfg.post_s > 0 or self._ring:
            job = _Clip(self.root / clip, now + self.cfg.post_s, list(self._ring))
            if self.cfg.post_s > 0:
                self._open.append(job)
            else:
                self.writer.put(job)
            evidence.append(Evidence(kind="clip", path=clip.as_posix(), content_type="video/mp4"))
        return evidence

    def flush(self) -> None:
        """Hand unfinished clips to the writer with what they have (camera removed, pipeline stopping)."""
        for clip in self._open:
            self.writer.put(clip)
        self._open = []
