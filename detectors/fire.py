"""Classical fire-and-smoke cue (colour + change + flicker + persistence), the fallback when no fire model is set.

Why classical at all: no fire/smoke model ships with GridWatch (none with a clear licence was available offline).
The cue is deliberately conservative — it needs a *new* region (not in the long-term background) that is
fire-coloured and flickering, or smoke-like (grey, darker than what it covers, smooth), that persists and is
large. Its measured precision/recall on the shared clips is in docs/DETECTION.md; treat it as a hint that a
person verifies, and plug a real model into ``detection.fire_model`` where one is available.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class FireCue:
    kind: str  # "fire" or "smoke"
    box: tuple[float, float, float, float]  # normalised
    area: float  # fraction of the picture
    score: float


class FireSmokeDetector:
    """Feed it the motion stage's small BGR copy once per analysed frame."""

    def __init__(self, sensitivity: float = 1.0, min_area: float = 0.01, persist_frames: int = 3):
        self.sensitivity = sensitivity
        self.min_area = min_area / sensitivity
        self.persist_frames = persist_frames
        self.max_texture = 90.0
        self._bg: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._p_fire: np.ndarray | None = None
        self._p_smoke: np.ndarray | None = None
        self._streak = {"fire": 0, "smoke": 0}
        self._frames = 0

    def update(self, small: np.ndarray) -> FireCue | None:
        img = small.astype(np.float32)
        if self._bg is None or self._bg.shape != img.shape:
            self._bg, self._prev = img.copy(), img.copy()
            self._p_fire = np.zeros(img.shape[:2], np.float32)
            self._p_smoke = np.zeros(img.shape[:2], np.float32)
            self._frames = 0
            return None
        self._frames += 1
        b, g, r = img[..., 0], img[..., 1], img[..., 2]
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        s, v = hsv[..., 1].astype(np.float32), hsv[..., 2].astype(np.float32)
        bg_v = self._bg.max(axis=2)
        change = np.abs(img - self._bg).max(axis=2)
        flicker = np.abs(img - self._prev).max(axis=2)
        fire_colour = (r > 170) & (r >= g) & (g > b) & ((r - b) > 50)
        # over-exposed flames read as near-white: accept those only where they are new and flicker
        white_hot = (v > 220) & (r >= b) & (change > 60)
        fire = (fire_colour | white_hot) & (change > 40) & (flicker > 12)
        smoke = (s < 60) & ((bg_v - v) > 30) & (v > 10) & (change > 30)
        # smoke smooths what it covers: drop strongly textured candidates (people, cars, edges)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        texture = np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))
        smoke &= cv2.blur(texture, (5, 5)) < self.max_texture
        self._p_fire = 0.6 * self._p_fire + 0.4 * fire
        self._p_smoke = 0.6 * self._p_smoke + 0.4 * smoke
        candidates = (fire | smoke).astype(np.uint8)
        # the background learns slowly and never from candidate pixels (smoke must not become "normal")
        cv2.accumulateWeighted(img, self._bg, 0.05, mask=(1 - candidates))
        self._prev = img
        if self._frames < 3:
            return None
        best: FireCue | None = None
        for kind, pmap in (("fire", self._p_fire), ("smoke", self._p_smoke)):
            cue = self._largest(kind, pmap > 0.55)
            self._streak[kind] = self._streak[kind] + 1 if cue else 0
            if cue and self._streak[kind] >= self.persist_frames and (best is None or cue.area > best.area):
                best = cue
        return best

    def _largest(self, kind: str, mask: np.ndarray) -> FireCue | None:
        h, w = mask.shape
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        if n <= 1:
            return None
        i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = stats[i, cv2.CC_STAT_AREA] / float(h * w)
        min_area = self.min_area * (0.3 if kind == "fire" else 1.0)
        if area < min_area:
            return None
        x, y, bw, bh = stats[i, :4]
        return FireCue(kind, (x / w, y / h, (x + bw) / w, (y + bh) / h), float(area),
                       float(min(1.0, area / (min_area * 4))))
