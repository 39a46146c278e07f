"""Camera tamper: covered lens, lost focus, moved camera / changed scene, frozen picture.

Whole-array statistics of the motion stage's small grey copy, compared with a slowly learned baseline; each
condition must hold for a while (``hold_s``) so a passing truck or a spray of water does not count.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class TamperCue:
    reason: str  # covered | defocus | moved | frozen
    score: float


class TamperDetector:
    def __init__(self, sensitivity: float = 1.0, hold_s: float = 5.0, frozen_s: float = 15.0, learn_s: float = 5.0):
        self.sensitivity = sensitivity
        self.hold_s = hold_s / sensitivity
        self.frozen_s = frozen_s / sensitivity
        self.learn_s = learn_s
        self._start: float | None = None
        self._sharp: float | None = None
        self._edges: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._since: dict[str, float] = {}

    def _hold(self, reason: str, cond: bool, now: float, need: float) -> bool:
        if not cond:
            self._since.pop(reason, None)
            return False
        return now - self._since.setdefault(reason, now) >= need

    def update(self, grey: np.ndarray, now: float) -> TamperCue | None:
        if self._start is None or self._prev is None or self._prev.shape != grey.shape:
            self._start, self._prev, self._sharp = now, grey, None
            self._edges = None
            return None
        mean, std = float(grey.mean()), float(grey.std())
        sharp = float(cv2.Laplacian(grey, cv2.CV_32F).var())
        edges = cv2.dilate(cv2.Canny(grey, 50, 150), None)
        identical = not np.any(cv2.absdiff(grey, self._prev))
        self._prev = grey
        learning = now - self._start < self.learn_s
        covered = std < 8 or mean < 12
        if self._sharp is None or learning:
            self._sharp = sharp if self._sharp is None else 0.8 * self._sharp + 0.2 * sharp
            self._edges = edges if self._edges is None else cv2.bitwise_or(self._edges, edges) if learning else edges
            return None
        overlap = float(np.count_nonzero(cv2.bitwise_and(edges, self._edges))) / max(1, np.count_nonzero(edges))
        defocus = not covered and sharp < 0.2 * self._sharp
        moved = not covered and np.count_nonzero(self._edges) > 0.02 * grey.size and overlap < 0.3
        cue = None
        if self._hold("covered", covered, now, self.hold_s):
            cue = TamperCue("covered", 1.0)
        elif self._hold("defocus", defocus, now, self.hold_s):
            cue = TamperCue("defocus", float(1 - sharp / max(self._sharp, 1e-6)))
        elif self._hold("moved", moved, now, self.hold_s):
            cue = TamperCue("moved", float(1 - overlap))
            self._edges, self._since = edges, {}  # the new view becomes the reference
        elif self._hold("frozen", identical, now, self.frozen_s):
            cue = TamperCue("frozen", 1.0)
        if not (covered or defocus or moved):  # learn slowly while healthy
            self._sharp = 0.98 * self._sharp + 0.02 * sharp
        return cue
