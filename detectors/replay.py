"""Replay a video file through a VideoPipeline at a camera's analysis rate, frame by frame, deterministically.

Used by the tests and ``benchmarks/accuracy.py``: frames are decoded with PyAV, scaled to the analysis width (as
ingest does), stamped with ``captured_at = t0 + index / fps`` (so rules see video time), submitted, and the
pipeline is drained before the next frame so no frame is skipped and results do not depend on machine speed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np

from ingest.frame import Frame


@dataclass(frozen=True, slots=True)
class ReplayFrame:
    index: int  # frame number in the source file (0-based, counted while decoding)
    frame: Frame


def read_clip(path: Path, camera_id: str, src_fps: float, rate: float, width: int = 640,
              t0: float | None = None, max_frames: int | None = None) -> Iterator[ReplayFrame]:
    """Yield every ``src_fps/rate``-th frame of ``path`` as a Frame; indices are counted, not trusted from metadata."""
    t0 = time.time() if t0 is None else t0
    step = max(1.0, src_fps / rate)
    next_pick = 0.0
    seq = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, vf in enumerate(container.decode(stream)):
            if max_frames is not None and i >= max_frames:
                return
            if i + 1e-9 < next_pick:
                continue
            next_pick += step
            img = vf.to_ndarray(format="bgr24")
            h, w = img.shape[:2]
            if w != width:
                img = cv2.resize(img, (width, int(round(h * width / w)) // 2 * 2), interpolation=cv2.INTER_AREA)
            yield ReplayFrame(i, Frame(camera_id, seq, i / src_fps, t0 + i / src_fps, np.ascontiguousarray(img)))
            seq += 1


def replay(pipeline, path: Path, camera_id: str, src_fps: float, rate: float, width: int = 640,
           max_frames: int | None = None, drain_timeout: float = 30.0) -> list[int]:
    """Submit each sampled frame and wait for it to be analysed; returns the source indices submitted."""
    t0 = time.time()
    indices = []
    for rf in read_clip(path, camera_id, src_fps, rate, width, t0=t0, max_frames=max_frames):
        pipeline.submit(rf.frame)
        if not pipeline.drain(drain_timeout):
            raise TimeoutError(f"pipeline did not finish frame {rf.index} of {path.name} in {drain_timeout} s")
        indices.append(rf.index)
    return indices
