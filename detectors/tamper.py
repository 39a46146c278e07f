"""Camera tamper: view changed (camera moved, turned or replaced, picture switched), lens covered, focus lost, frozen.

The picture is compared with a **reference background** learned over seconds (a running average of the motion
stage's small grey copy, learned only while the view is the same), cell by cell: the picture is cut into a
``GRID`` of cells and a cell has *changed* when its zero-mean normalised correlation with the reference cell is low
(or, for flat cells, its mean moved far). Correlation per cell ignores brightness and contrast (exposure, lights
switched on, clouds), and a few people or cars change only the cells they cover.

* **view changed**: much of the picture (``DIFFERENT``, 40 % of the cells) differs from the reference, the change
  was *abrupt* (``JUMP`` of the cells changed within ``ONSET_S``, 1 s — measured against the two oldest frames of
  that second, so that one odd frame there, a spliced or corrupt frame or a flash, is not taken for the old view),
  and the new view then *holds* for ``hold_s`` (2 s), in one of two ways:

  - *steady*: it stays different from the reference and like its own first frame (a passing truck, a spray of
    water, a steam flash or a crowd is gone or keeps changing; a moved camera shows its new view steadily);
  - *the old view is gone*: a new view can be busy — the camera turned onto a crowded plaza, a fire, a time-lapse —
    and then it is never like its own first frame. What does not come back is the *old* view: of the cells that
    were still just before the change (the same in the two oldest frames of the onset second), at least ``GONE``
    (70 %) must differ from that old frame in every frame of the hold. People, cars, smoke or a fire in front of a
    camera that did not move hide only part of its still background — on the shared clips at most 57 % (a man at
    the lens in the room-burn montage; the plaza crowd 55 %, the e-scooter's smoke after its PTZ nudge 49 %) —
    while a cut to another scene changes nearly all of it (83–97 % in real clips spliced together); 70 % is about
    halfway. What it cannot tell apart: a flare-up that changes over 70 % of a fixed view's still background within
    a second and keeps it changed would read as a changed view; the room-burn montage's cut at frame 140 (same
    camera and framing, the sofa bursting into flame) changes 65–70 % of it and is not caught.

  Gradual changes (smoke filling a room, dusk) are not abrupt; the reference follows them, or is re-seeded after
  ``RESEED_S`` without an alert. After an alert the new view becomes the reference, so a camera moved twice is two
  alerts.
* **covered**: the picture is flat (grey std < 8) or black (mean < 12) for ``hold_s`` — a hand, tape, a cloth, paint.
* **defocus**: sharpness (variance of the Laplacian) below 20 % of its learned level for ``hold_s``, not covered.
* **frozen**: identical frames for ``frozen_s``.

Each condition is reported once when it starts (``TamperCue.episode`` numbers the onsets), not again while it
lasts. Its measured recall and false alarms on the shared clips are in docs/DETECTION.md.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

GRID = (12, 8)  # cells across, down
CELL_W = 16  # pixels per cell on the comparison copy (64 x 48): a shift of a few pixels at 160 px is no change
CORR_SAME = 0.6  # zero-mean normalised correlation of a cell with its reference at or above this: the same
FLAT_STD = 4.0  # a cell this flat has no pattern to correlate: compare its mean instead
FLAT_MEAN = 25.0
LOW = 0.25  # fraction of changed cells below which the view is the reference view (and the reference learns)
DIFFERENT = 0.4  # fraction of cells differing from the reference at which the view is a different one
JUMP = 0.4  # fraction of cells changed within ONSET_S that makes the change abrupt (a cut, a camera moved)
SELF_SAME = 0.35  # during the hold the new view may differ from itself in at most this fraction of cells
GONE = 0.7  # a busy new view: this share of the old view's still cells stays different for the whole hold
MIN_STILL = 0.25  # ... judged only when at least this share of the old view was still (else no old view)
ONSET_S = 1.0  # the abrupt change happens within this long (not smoke filling the room, not dusk)
LEARN_ALPHA = 0.05  # reference background learning per analysed frame while the view is the same
RESEED_S = 30.0  # a view different from the reference this long without an abrupt onset becomes the reference


@dataclass(frozen=True, slots=True)
class TamperCue:
    reason: str  # moved | covered | defocus | frozen
    score: float
    episode: int = 0  # onsets of tamper conditions so far on this camera (one alert per onset)


def _cells(grey: np.ndarray) -> np.ndarray:
    """The comparison copy cut into cells: array (rows, cols, cell pixels), float32."""
    cols, rows = GRID
    small = cv2.resize(grey, (cols * CELL_W, rows * CELL_W), interpolation=cv2.INTER_AREA).astype(np.float32)
    return small.reshape(rows, CELL_W, cols, CELL_W).transpose(0, 2, 1, 3).reshape(rows, cols, CELL_W * CELL_W)


def _same_cells(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per cell of ``a`` and ``b`` (both from ``_cells``): True where the two show the same thing — zero-mean
    normalised correlation at least ``CORR_SAME`` (blind to brightness and contrast), or, for two flat cells, a mean
    that did not move far."""
    am, bm = a.mean(axis=2, keepdims=True), b.mean(axis=2, keepdims=True)
    ac, bc = a - am, b - bm
    sa, sb = np.sqrt((ac * ac).mean(axis=2)), np.sqrt((bc * bc).mean(axis=2))
    corr = (ac * bc).mean(axis=2) / np.maximum(sa * sb, 1e-6)
    flat = (sa < FLAT_STD) & (sb < FLAT_STD)
    mean_far = np.abs(am[..., 0] - bm[..., 0]) > FLAT_MEAN
    return np.where(flat, ~mean_far, corr >= CORR_SAME)


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of cells of ``a`` that differ from ``b`` (both from ``_cells``)."""
    return float(1.0 - _same_cells(a, b).mean())


class TamperDetector:
    """Feed it the motion stage's small grey copy of every analysed frame with its capture time."""

    def __init__(self, sensitivity: float = 1.0, hold_s: float = 2.0, frozen_s: float = 15.0, learn_s: float = 3.0):
        self.sensitivity = sensitivity
        self.hold_s = hold_s / sensitivity
        self.frozen_s = frozen_s / sensitivity
        self.learn_s = learn_s
        self._start: float | None = None
        self._shape: tuple[int, ...] | None = None
        self._ref: np.ndarray | None = None  # reference background cells
        self._sharp: float | None = None
        self._prev: np.ndarray | None = None
        self._recent: deque[tuple[float, np.ndarray]] = deque()  # (time, cells) over the last ONSET_S
        self._candidate: tuple[float, np.ndarray] | None = None  # an abrupt new view: since, its cells
        self._gone_since: tuple[float, np.ndarray, np.ndarray] | None = None  # since, old view cells, its still cells
        self._different_since: float | None = None
        self._since: dict[str, float] = {}
        self._active: set[str] = set()  # conditions already reported and still holding
        self.episodes = 0

    def _held(self, reason: str, cond: bool, now: float, need: float) -> bool:
        """``cond`` has held for ``need`` seconds and was not yet reported in this episode."""
        if not cond:
            self._since.pop(reason, None)
            self._active.discard(reason)
            return False
        return reason not in self._active and now - self._since.setdefault(reason, now) >= need

    def _cue(self, reason: str, score: float) -> TamperCue:
        self._active.add(reason)
        self.episodes += 1
        return TamperCue(reason, round(float(score), 3), self.episodes)

    def update(self, grey: np.ndarray, now: float) -> TamperCue | None:
        cells = _cells(grey)
        if self._start is None or self._shape != grey.shape:
            self._start, self._shape, self._ref, self._prev, self._sharp = now, grey.shape, cells, grey, None
            self._recent.clear()
            return None
        mean, std = float(grey.mean()), float(grey.std())
        sharp = float(cv2.Laplacian(grey, cv2.CV_32F).var())
        identical = not np.any(cv2.absdiff(grey, self._prev))
        self._prev = grey
        covered = std < 8 or mean < 12
        if now - self._start < self.learn_s or self._sharp is None:  # learning the reference
            self._sharp = sharp if self._sharp is None else 0.8 * self._sharp + 0.2 * sharp
            cv2.accumulateWeighted(cells, self._ref, 0.3)
            return None
        changed = changed_fraction(cells, self._ref)
        defocus = not covered and sharp < 0.2 * self._sharp
        cue = None
        if self._held("covered", covered, now, self.hold_s):
            cue = self._cue("covered", 1.0)
        elif self._held("defocus", defocus, now, self.hold_s):
            cue = self._cue("defocus", 1 - sharp / max(self._sharp, 1e-6))
        elif not covered and self._view_changed(cells, changed, now):
            cue = self._cue("moved", changed)
            self._active.discard("moved")  # the new view is the reference now: the next move is a new episode
        elif self._held("frozen", identical, now, self.frozen_s):
            cue = self._cue("frozen", 1.0)
        if not (covered or defocus) and changed < LOW:  # learn while the view is the same
            cv2.accumulateWeighted(cells, self._ref, LEARN_ALPHA)
            self._sharp = 0.98 * self._sharp + 0.02 * sharp
        return cue

    def _view_changed(self, cells: np.ndarray, changed: float, now: float) -> bool:
        """An abrupt change of much of the picture whose new view held for ``hold_s`` (see the module doc)."""
        self._recent.append((now, cells))
        while len(self._recent) > 2 and now - self._recent[1][0] >= ONSET_S:
            self._recent.popleft()
        self._different_since = None if changed < LOW else (self._different_since or now)
        jump = self._jump(cells)
        steady = self._steady_new_view(cells, changed, now, jump)
        gone = self._old_view_gone(cells, changed, now, jump)  # both see every frame: each keeps its own candidate
        if steady or gone:
            self._reseed(cells)
        return steady or gone

    def _steady_new_view(self, cells: np.ndarray, changed: float, now: float, jump: float) -> bool:
        """The new view, since the abrupt change, stays different from the reference and like its own first frame;
        a long different view without an abrupt onset re-seeds the reference instead (a gradual change)."""
        if changed < (LOW if self._candidate is not None else DIFFERENT):  # hysteresis: a held view may dip
            self._candidate = None
            return False
        if self._candidate is not None and changed_fraction(cells, self._candidate[1]) > SELF_SAME:
            self._candidate = None  # not a steady new view (a truck passing, spray, steam, mid-dissolve)
        if self._candidate is None:
            if jump >= JUMP:
                self._candidate = (now, cells)
            elif self._different_since is not None and now - self._different_since >= RESEED_S:
                self._reseed(cells)  # a gradual change (smoke, dusk, a scene rebuilt): follow it, no alert
            return False
        return now - self._candidate[0] >= self.hold_s

    def _old_view_gone(self, cells: np.ndarray, changed: float, now: float, jump: float) -> bool:
        """Since the abrupt change, most of what was still in the old view stays changed — however busy the new view
        is. The steady test alone misses a camera turned onto a crowd, a fire or traffic: such a view keeps changing,
        so it is never like its own first frame, and the candidate is dropped again and again. Judged on the old
        view's still cells, a crowd or a fire in front of an unmoved camera leaves enough of them as they were."""
        if self._gone_since is None and changed >= DIFFERENT and jump >= JUMP and len(self._recent) > 2:
            (_t0, old), (_t1, second) = list(self._recent)[:2]
            still = _same_cells(old, second)
            if still.mean() >= MIN_STILL:
                self._gone_since = (now, old, still)
        if self._gone_since is None:
            return False
        since, old, still = self._gone_since
        if (~_same_cells(cells, old))[still].mean() < GONE:
            self._gone_since = None  # much of the old view is back (or was never gone): people, smoke, a fire
            return False
        return now - since >= self.hold_s

    def _jump(self, cells: np.ndarray) -> float:
        """How much of the picture changed within ``ONSET_S``: the fewer cells changed against either of the two
        oldest frames of that window. Against one frame alone, a single odd frame a second ago makes a jump out of
        nothing: the e-scooter news clip has spliced one-frame flashes (frames 204, 264) of earlier footage, and the
        smoky view a second after 264 "jumped" from it in 45 % of the cells — then held, and was taken for a moved
        camera (frame 354)."""
        old = [c for _t, c in list(self._recent)[:2]]
        return min(changed_fraction(cells, c) for c in old)

    def _reseed(self, cells: np.ndarray) -> None:
        self._ref = cells.copy()
        self._candidate, self._gone_since, self._different_since = None, None, None
        self._recent.clear()
