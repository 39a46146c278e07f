"""Stable object ids per camera with ultralytics' ByteTrack, plus what rules need on top: dwell, stillness, scores.

Why the carry-over: detection runs only where there is motion (or on a periodic refresh), so an object standing
still outside every detected region is not re-detected in that frame. ByteTrack would age it out; instead its last
box is fed back as a detection ("nothing moved there, so it is still there" — Frigate's stationary objects).
A refresh pass that covers it and does not find it lets it age out normally.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import supervision as sv

from detectors.config import TrackingConfig
from detectors.detection import Box, to_rows


class _Dets:
    """The minimal Results-like object BYTETracker.update() reads: conf, cls, xywh, boolean indexing."""

    def __init__(self, data: np.ndarray):
        self.data = data

    @property
    def conf(self) -> np.ndarray:
        return self.data[:, 4]

    @property
    def cls(self) -> np.ndarray:
        return self.data[:, 5]

    @property
    def xywh(self) -> np.ndarray:
        d = self.data
        return np.column_stack([(d[:, 0] + d[:, 2]) / 2, (d[:, 1] + d[:, 3]) / 2, d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]])

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx) -> "_Dets":
        return _Dets(self.data[idx])


@dataclass
class TrackedObject:
    """One tracked object; times are capture-clock seconds (``Frame.captured_at``)."""

    id: int
    label: str
    box: Box
    score: float
    first_seen: float
    last_seen: float
    last_detected: float
    still_since: float
    anchor: tuple[float, float]
    scores: deque = field(default_factory=lambda: deque(maxlen=50))
    history: deque = field(default_factory=lambda: deque(maxlen=200))  # (t, box)
    zone_since: dict = field(default_factory=dict)  # zone name -> first time inside (contiguous)
    prev_foot: tuple[float, float] | None = None

    @property
    def foot(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, self.box[3])

    @property
    def median_score(self) -> float:
        return float(np.median(self.scores)) if self.scores else self.score

    def still_for(self, now: float) -> float:
        return now - self.still_since


class ObjectTracker:
    """ByteTrack for one camera; ``update`` takes merged frame-pixel detections (x1,y1,x2,y2,score,cls)."""

    def __init__(self, cfg: TrackingConfig, names: dict[int, str], rate_hz: float = 5.0):
        from ultralytics.trackers.byte_tracker import BYTETracker

        self.cfg = cfg
        self.names = names
        args = SimpleNamespace(
            tracker_type="bytetrack", track_high_thresh=cfg.track_high_thresh, track_low_thresh=cfg.track_low_thresh,
            new_track_thresh=cfg.new_track_thresh, track_buffer=max(3, int(math.ceil(cfg.track_buffer_s * rate_hz))),
            match_thresh=cfg.match_thresh, fuse_score=True,
        )
        self._bt = BYTETracker(args)
        self.objects: dict[int, TrackedObject] = {}
        # tracks ByteTrack has lost but may re-find: their history (dwell, upright pose) must survive the gap
        self._memory: dict[int, TrackedObject] = {}

    def update(self, found: sv.Detections, now: float, covered: list[tuple[int, int, int, int]] | None) -> list[TrackedObject]:
        """Feed one detection pass. ``covered``: the regions that were detected (None = the whole frame)."""
        dets = to_rows(found)  # ultralytics' BYTETracker reads rows through the _Dets adapter below
        n_real = len(dets)
        if covered is not None:
            carry = []
            for obj in self.objects.values():
                cx, cy = (obj.box[0] + obj.box[2]) / 2, (obj.box[1] + obj.box[3]) / 2
                inside = any(r[0] <= cx <= r[2] and r[1] <= cy <= r[3] for r in covered)
                if not inside and now - obj.last_detected <= self.cfg.keep_stationary_s:
                    cls = next((k for k, v in self.names.items() if v == obj.label), 0)
                    carry.append([*obj.box, max(obj.score, self.cfg.track_high_thresh + 0.01), cls])
            if carry:
                dets = np.vstack([dets, np.asarray(carry, np.float32)])
        out = self._bt.update(_Dets(dets)) if len(dets) or self.objects else np.zeros((0, 8), np.float32)
        seen: dict[int, TrackedObject] = {}
        for row in np.asarray(out).reshape(-1, 8):
            tid, idx = int(row[4]), int(row[7])
            src = dets[idx] if 0 <= idx < len(dets) else row[[0, 1, 2, 3, 5, 6]]
            box = (float(src[0]), float(src[1]), float(src[2]), float(src[3]))
            real = 0 <= idx < n_real
            label = self.names.get(int(src[5]), str(int(src[5])))
            obj = self.objects.get(tid) or self._memory.pop(tid, None)
            foot = ((box[0] + box[2]) / 2, box[3])
            if obj is None:
                obj = TrackedObject(tid, label, box, float(src[4]), now, now, now, now, foot)
            else:
                obj.prev_foot = obj.foot
                obj.box, obj.last_seen = box, now
                h = max(box[3] - box[1], 1.0)
                if math.dist(foot, obj.anchor) > self.cfg.stationary_fraction * h:
                    obj.anchor, obj.still_since = foot, now
            if real:
                obj.score = float(src[4])
                obj.scores.append(obj.score)
                obj.last_detected = now
            obj.history.append((now, box))
            seen[tid] = obj
        for tid, obj in self.objects.items():
            if tid not in seen:
                self._memory[tid] = obj
        self._memory = {k: v for k, v in self._memory.items() if now - v.last_seen <= self.cfg.track_buffer_s * 2}
        self.objects = seen
        return list(seen.values())
