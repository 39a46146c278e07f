"""Classical fire-and-smoke cue, the fallback when no fire/smoke model is set (``detection.fire_model``).

Why classical at all: no fire/smoke model ships with GridWatch (none with a clear licence was available offline).
What the cue looks for is what makes fire fire, not its colour alone — colour alone raised fires on tail and brake
lights, red and orange cars, sunlit paint and red clothes (docs/DETECTION.md):

* **flame**: fire-coloured (red ≥ green ≥ blue, saturated, bright) pixels whose brightness *oscillates* — over the
  last ``WINDOW`` analysed frames their frame-to-frame change reverses direction at least ``MIN_FLIPS`` times.
  Flames flicker in place at 1-10 Hz; a passing red car or a tail light changes a pixel once or twice (it arrives,
  it leaves), a steady lamp or signal not at all;
* **smoke**: a low-saturation region that differs from the slowly learned background (darker, or paler), is
  smooth (lower texture than the background it covers — smoke veils edges) and is *new* (the background never
  learns from candidate pixels);
* **not an object**: candidates inside the boxes of tracked people, and of vehicles that are moving, are dropped (a
  red or yellow jacket, a red car, headlights); a still, burning vehicle keeps its pixels;
* **persistence in place**: a region must stay — overlapping itself — for ``persist_s`` seconds (2 s), and smoke
  must not shrink over that time (a shadow or a passing grey truck moves on; a plume stays and spreads);
* **a gap is not a new region**: the largest region is followed; when, for a frame, the largest lies elsewhere in
  the picture (farther than ``NEAR`` from the track's box), the followed region is missing, not replaced — the
  other takes over only once the track has been missing for ``GAP_S``. One odd frame (a spliced or corrupt
  frame, a flash, a passer-by in front of the flame) would otherwise hand the track to whatever else is largest
  that frame (orange caption text, a lamp) and restart the flame's clock (it cost 0.8 s on the e-scooter clip).
  A largest region *next to* the track's box (within ``NEAR``) that no longer overlaps it is the same thing
  moved — a limb, a flag, the yellow trousers of a man lying on a kitchen floor — so it is not in place and its
  clock restarts, as before;
* **flame and smoke together**: a flickering flame with a smoke plume against it (boxes within ``NEAR``) needs only
  ``CORROBORATED`` of the hold. Fire makes smoke; what passes the flame tests alone (a flickering tail light, a
  red jacket) has no plume beside it, and what passes the smoke tests alone (a shadow, a ghost) does not flicker
  red, so two independent cues agreeing in one place are stronger evidence than either held for longer;
* **no ghosts**: the background learns candidate pixels too, only slower (``CANDIDATE_LEARN``, a ~10 s time
  constant at 5 frames/s): where a person stood when the background was seeded, the bare floor left behind is pale,
  smooth and grey — "smoke" for ever if the background never learned there (the false smoke on the plaza and
  campus walkways); a real plume keeps changing and stays unlike the background.

Its measured precision/recall on the shared clips is in docs/DETECTION.md; treat it as a hint that a person
verifies, and plug a real model into ``detection.fire_model`` where one is available.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[float, float, float, float]

WINDOW = 8  # analysed frames the flicker is judged over (1.6 s at 5 frames/s)
MIN_FLIPS = 2  # brightness reversals within the window that make a pixel flicker
FLICKER_DIFF = 10.0  # grey levels: a frame-to-frame change smaller than this is not a change
GAP_S = 1.0  # a region missing for at most this long (a flame dying down between flickers) is still the same
FIRE_AREA = 0.125  # flame regions: from 0.05 % of the picture (a distant flame line is a few pixels high)
SMOKE_AREA = 5.0  # smoke regions must be this many times min_area (2 % of the picture): a plume, not a patch
CANDIDATE_LEARN = 0.02  # background learning per analysed frame where fire or smoke is seen (0.05 elsewhere)
SMOKE_DECAY = 0.6  # per analysed frame: how fast a pixel's smoke evidence fades
SMOKE_SPREAD = 1.2  # smoke spreads: its region must have grown by this factor since it appeared
CORROBORATED = 0.5  # the fraction of persist_s a flame needs when a smoke plume lies against it
NEAR = 0.05  # picture fraction: a plume this close to the flame's box is the flame's (smoke rises off and drifts)
SCENE = 0.5  # a "plume" over this fraction of the picture is the whole view changing (a cut, an IR switch), no plume


@dataclass(frozen=True, slots=True)
class FireCue:
    kind: str  # "fire" or "smoke"
    box: Box  # normalised
    area: float  # fraction of the picture
    score: float
    held_s: float = 0.0  # how long the region has stayed in place
    flicker: float = 0.0  # fraction of the region's pixels that flicker (fire)
    with_smoke: bool = False  # a flame confirmed on the shorter hold, with a smoke plume against it


@dataclass
class _Track:
    """A candidate region followed over time: where it is, since when, how big it was then."""

    box: Box
    since: float
    first_area: float
    seen: float  # last time the region was there
    area: float = 0.0  # its area when it was last there


def _overlap(a: Box, b: Box, margin: float = 0.0) -> bool:
    """Whether the boxes overlap once ``a`` is grown by ``margin`` (picture fraction) on every side."""
    return (min(a[2] + margin, b[2]) > max(a[0] - margin, b[0])
            and min(a[3] + margin, b[3]) > max(a[1] - margin, b[1]))


WIDTH = 320  # the cue works on a copy this wide: distant flames are a few pixels at the motion stage's 160


def working_copy(image: np.ndarray) -> np.ndarray:
    """The frame scaled to ``WIDTH`` (never up), as the detector wants it."""
    h, w = image.shape[:2]
    if w <= WIDTH:
        return image
    return cv2.resize(image, (WIDTH, max(1, round(h * WIDTH / w))), interpolation=cv2.INTER_AREA)


class FireSmokeDetector:
    """Feed it ``working_copy`` of every analysed frame, with the capture time."""

    def __init__(self, sensitivity: float = 1.0, min_area: float = 0.004, persist_s: float = 2.0):
        self.sensitivity = sensitivity
        self.min_area = min_area / sensitivity
        self.persist_s = persist_s / sensitivity
        self.max_texture = 90.0
        self._bg: np.ndarray | None = None
        self._bg_texture: np.ndarray | None = None
        self._greys: deque[np.ndarray] = deque(maxlen=WINDOW + 1)
        self._p_fire: np.ndarray | None = None
        self._p_smoke: np.ndarray | None = None
        self._tracks: dict[str, _Track | None] = {"fire": None, "smoke": None}
        self._frames = 0

    def _flips(self) -> np.ndarray:
        """Per pixel: how often the brightness change reversed direction over the window."""
        g = np.stack(self._greys)
        d = np.diff(g, axis=0)
        s = np.where(d > FLICKER_DIFF, 1, np.where(d < -FLICKER_DIFF, -1, 0)).astype(np.int8)
        return ((s[1:] * s[:-1]) < 0).sum(axis=0)

    def update(self, small: np.ndarray, now: float, exclude: list[Box] = ()) -> FireCue | None:
        """``exclude``: normalised boxes (people, moving vehicles) whose pixels are not fire or smoke."""
        img = small.astype(np.float32)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
        texture = cv2.blur(np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3)), (5, 5))
        if self._bg is None or self._bg.shape != img.shape:
            self._bg, self._bg_texture = img.copy(), texture.copy()
            self._p_fire = np.zeros(img.shape[:2], np.float32)
            self._p_smoke = np.zeros(img.shape[:2], np.float32)
            self._greys.clear()
            self._frames = 0
        self._greys.append(grey)
        self._frames += 1
        h, w = grey.shape
        b, g, r = img[..., 0], img[..., 1], img[..., 2]
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        s, v = hsv[..., 1].astype(np.float32), hsv[..., 2].astype(np.float32)
        bg_v = self._bg.max(axis=2)
        change = np.abs(img - self._bg).max(axis=2)
        coloured = (r > 150) & (r >= g) & (g >= b) & ((r - b) > 60) & (s > 80)
        # over-exposed flames read as near-white (a grey time-lapse, a night scene): only where they are new
        white_hot = (v > 225) & (r >= b) & (change > 60)
        fire = coloured | white_hot
        if len(self._greys) > 2:
            fire &= self._flips() >= MIN_FLIPS
        else:
            fire &= False
        smoke = (s < 60) & (np.abs(bg_v - v) > 30) & (v > 10) & (change > 30)
        # smoke veils what it covers: smooth, and smoother than the background it replaced
        smoke &= (texture < self.max_texture) & (texture < 0.8 * self._bg_texture + 4)
        keep = np.ones((h, w), bool)
        for x1, y1, x2, y2 in exclude:
            keep[int(y1 * h):int(np.ceil(y2 * h)), int(x1 * w):int(np.ceil(x2 * w))] = False
        fire &= keep
        smoke &= keep
        self._p_fire = 0.6 * self._p_fire + 0.4 * fire
        self._p_smoke = SMOKE_DECAY * self._p_smoke + (1 - SMOKE_DECAY) * smoke
        candidates = (fire | smoke).astype(np.uint8)
        # the background learns slowly, and from candidate pixels much more slowly: a plume keeps changing and stays
        # unlike it for minutes, but a ghost (the floor where a person stood when the background was seeded) must
        # fade into it instead of being "smoke" for ever
        rate = np.where(candidates > 0, CANDIDATE_LEARN, 0.05).astype(np.float32)
        self._bg += (img - self._bg) * rate[..., None]
        self._bg_texture += (texture - self._bg_texture) * rate
        if self._frames < 4:
            return None
        best: FireCue | None = None
        for kind, pmap, mask in (("fire", self._p_fire, fire), ("smoke", self._p_smoke, smoke)):
            cue = self._follow(kind, pmap > (0.5 if kind == "fire" else 0.8), mask, now)
            if cue is not None and (best is None or cue.area > best.area):
                best = cue
        return best

    def _follow(self, kind: str, region: np.ndarray, mask: np.ndarray, now: float) -> FireCue | None:
        """The followed region of ``kind`` if it has stayed in place long enough (and, smoke, not shrunk)."""
        track = self._live(kind, now)
        if track is None:
            self._tracks[kind] = None  # flames come and go; a region gone for long is gone
        found = self._largest(kind, region)
        if found is None:
            return None
        box, area = found
        if track is None:
            self._tracks[kind] = _Track(box, now, area, now, area)
            return None
        if not _overlap(track.box, box):
            if _overlap(track.box, box, NEAR):  # the region itself moved off its place: not in place, start again
                self._tracks[kind] = _Track(box, now, area, now, area)
            return None  # only a region elsewhere: a gap in the followed one, which it replaces once that is gone
        track.box, track.seen, track.area = box, now, area
        held = now - track.since
        hold = self._hold(kind, box, now)
        if held < hold or (kind == "smoke" and area < SMOKE_SPREAD * track.first_area):
            return None
        h, w = mask.shape
        x1, y1, x2, y2 = int(box[0] * w), int(box[1] * h), int(np.ceil(box[2] * w)), int(np.ceil(box[3] * h))
        flicker = float(mask[y1:y2, x1:x2].mean()) if kind == "fire" else 0.0
        min_area = self.min_area * (FIRE_AREA if kind == "fire" else SMOKE_AREA)
        return FireCue(kind, box, area, float(min(1.0, area / (min_area * 4))), round(held, 1), round(flicker, 3),
                       with_smoke=hold < self.persist_s)

    def _live(self, kind: str, now: float) -> _Track | None:
        """The track of ``kind`` unless its region has been missing for longer than ``GAP_S``."""
        track = self._tracks[kind]
        return track if track is not None and now - track.seen <= GAP_S else None

    def _hold(self, kind: str, box: Box, now: float) -> float:
        """Seconds a region of ``kind`` must stay: less for a flame with a smoke plume against it."""
        smoke = self._live("smoke", now)
        if kind == "fire" and smoke is not None and smoke.area < SCENE and _overlap(box, smoke.box, NEAR):
            return self.persist_s * CORROBORATED
        return self.persist_s

    def _largest(self, kind: str, mask: np.ndarray) -> tuple[Box, float] | None:
        h, w = mask.shape
        mask = mask.astype(np.uint8)
        if kind == "fire":  # a flame front flickers in patches: join the patches of one front
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n <= 1:
            return None
        i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = stats[i, cv2.CC_STAT_AREA] / float(h * w)
        if area < self.min_area * (FIRE_AREA if kind == "fire" else SMOKE_AREA):
            return None
        x, y, bw, bh = stats[i, :4]
        return (x / w, y / h, (x + bw) / w, (y + bh) / h), float(area)
