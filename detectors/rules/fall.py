"""Person fallen: the Normal/Fall model fused with the person's track when that model is configured, else box-shape cues.

Model path ("person down", a state change held over time): a Fall box must overlap the last box of a person
track seen in the last 3 s (a lying person is often no longer detected as a person) that was upright (h/w >= 1.3,
not cut by the edge) in the 10 s before; the model must still say Fall there ``HOLD_S`` (1 s, or ``dwell_s``)
after it first did, with no gap over 1.2 s (the hold runs from one Fall answer to another, so one answer is never
enough); the box must not be cut by the picture's left, right or top edge (a walker leaving is cut the same way a
body going down is; a wide box on the bottom edge is a body lying across a close camera's view); it must be lying
— its top has come down by ``TOP_DROP`` (30 %) of the standing height, and wide (w/h >= 0.9) or under half the
standing height — not sitting or bending, whose boxes stay tall; the person must not be detected upright again
meanwhile (the same track standing: got up, or never went down); and not seated on a tracked motorcycle or bicycle
(a rider is low and wide too). One alert per person.

Why the top and the upright track (measured, docs/DETECTION.md "Accuracy"): on the e-scooter news clip the model
said Fall for 1.2 s on a rider waiting on a scooter the detector does not see as a motorcycle; the Fall box (rider
and scooter) was as wide as tall and its top level with the rider's head, and the detector kept finding the same
person track upright inside it. The three real falls came down by 52-65 % of the standing height.

Shape cues (no extra model) need a *transition of one track*: the same tracked person is seen upright
(h/w ≥ 1.3, within the last 5 s) and then lying — its top has dropped by > 30 % of the upright height and at least
twice as far as its bottom (a walker moves both together), and the box is wide (w/h ≥ 0.9) or its height has
collapsed below 55 % of the upright height, within 2 s of the upright observation. Why the extra guards (measured on the shared clips,
docs/DETECTION.md "Accuracy"): on crowded, distant views almost every false alarm was a box change that is not a
body going down —

* a walker leaving the picture: its box is cut by the frame edge, the top creeps down, the bottom stays. The drop
  must happen within 2 s of the upright observation, and a box touching the picture's border counts only when it
  is also wider (by 10 %) than when upright — a lying body widens, a cut walker does not;
* a person half hidden by another: boxes overlapping another person's by > 30 % of their area are skipped;
* one odd detection: the lying shape must be seen in ``min_frames`` (default 2) distinct detections of the track
  within ``confirm_s`` (default 2 s, i.e. ``dwell_s`` when set) with no upright one in between. A fallen person is
  detected intermittently, so the observations need not be consecutive frames.

Camera view (``RuleConfig.view`` when the deployment schema has it, else ``auto``): the box-shape cues assume a
side or oblique view, where a standing person's box is tall. ``top_down`` turns them off (only the fall model can
judge such a camera); ``auto`` learns the view from the camera's own person boxes — once 30 unclipped detections
have a median h/w below 1.5, people do not look upright in this view and the cues switch off. Note: the shared
plaza clip, although filmed from high up, has a median person h/w of 2.5 and so counts as oblique; configure
``view: top_down`` for such a camera if its false alarms matter more than its falls.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import supervision as sv

from detectors.rules.base import PERSON, Event, Rule, View
from detectors.tracking import TrackedObject

Box = tuple[float, float, float, float]

UPRIGHT_H_W = 1.3
TOP_DOWN_MEDIAN_H_W = 1.5
VIEW_SAMPLES = 30
FALL_S = 2.0  # upright to lying within this long
# The model path ("person down"):
HOLD_S = 1.0  # Fall answers there this far apart (dwell_s when set): 3 answers at 2/s
MODEL_GAP_S = 1.2  # a Fall answer missing this long (the model runs every 0.5 s) ends the "down" state
UPRIGHT_LOOKBACK_S = 10.0  # the track must have been seen upright within this long before going down
PERSON_GONE_S = 3.0  # a Fall box may belong to a person the detector lost this long ago (lying people are missed)
LYING_W_H = 0.9
TOP_DROP = 0.3  # a lying body's top is at least this fraction of the standing height below the standing top
TWO_WHEELERS = ("motorcycle", "bicycle")
EDGE = 0.01  # a box within this fraction of the width of the picture's edge is cut by it


@dataclass
class _Down:
    """A person the model says is down: which track, its upright box, since when, the latest Fall box."""

    track_id: int
    ref: Box
    first: float
    last: float
    box: Box
    score: float


def _iou(a: Box, b: Box) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _h_w(b: Box) -> float:
    return max(b[3] - b[1], 1.0) / max(b[2] - b[0], 1.0)


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the area of ``a``."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return iw * ih / max((a[2] - a[0]) * (a[3] - a[1]), 1.0)


class FallRule(Rule):
    default_classes = PERSON

    def __init__(self, cfg, zones, camera_min_score=None):
        super().__init__(cfg, zones, camera_min_score)
        self.view_mode: str = cfg.view
        self.min_frames = cfg.min_frames
        self.confirm_s = float(cfg.dwell_s or 2.0)
        self._aspects: deque[float] = deque(maxlen=300)
        self.hold_s = float(cfg.dwell_s or HOLD_S)
        self._down: list[_Down] = []  # people the model says are down
        self._people: dict[int, tuple[float, Box, float | None, Box | None]] = {}  # id -> seen, box, upright at, box
        self._fired: set[int] = set()
        self._seen: set[tuple[int, float]] = set()  # (track, detection time) already sampled for the view

    # -- camera view --------------------------------------------------------------------------------------------
    @property
    def shape_cues(self) -> bool:
        """Whether box-shape cues are valid for this camera (see the module doc)."""
        if self.view_mode == "side":
            return True
        if self.view_mode == "top_down":
            return False
        if len(self._aspects) < VIEW_SAMPLES:
            return True
        return float(np.median(self._aspects)) >= TOP_DOWN_MEDIAN_H_W

    def _learn_view(self, view: View) -> None:
        for o in view.objects:
            if o.label != "person" or o.last_detected != view.now or (o.id, o.last_detected) in self._seen:
                continue
            self._seen.add((o.id, o.last_detected))
            if not self._clipped(o.box, view) and o.score >= 0.5:
                self._aspects.append(_h_w(o.box))
        if len(self._seen) > 2000:
            self._seen.clear()

    @staticmethod
    def _clipped(b: Box, view: View, margin: float = 3.0) -> bool:
        return b[0] <= margin or b[1] <= margin or b[2] >= view.w - margin or b[3] >= view.h - margin

    # -- evaluation ---------------------------------------------------------------------------------------------
    def evaluate(self, view: View) -> list[Event]:
        if "fall" in view.aux_names:  # the camera has the Normal/Fall model (it runs every interval_s)
            return self._from_model(view, view.aux.get("fall"))
        self._learn_view(view)
        if not self.shape_cues:
            return []
        people = [o for o in view.objects if o.label == "person"]
        out = []
        for o in view.objects:
            if not self.wanted(o) or not self.in_zone(o, view):
                continue
            ev = self._judge(o, view, people)
            if ev is not None:
                out.append(ev)
        return out

    def _lying(self, box: Box, ref: Box, view: View) -> bool:
        """``box`` is a lying body relative to the upright ``ref`` box of the same track."""
        x1, y1, x2, y2 = box
        w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        ref_w, ref_h = max(ref[2] - ref[0], 1.0), ref[3] - ref[1]
        top_drop, bottom_drop = y1 - ref[1], max(y2 - ref[3], 0.0)
        if not (top_drop > 0.3 * ref_h and top_drop >= 2 * bottom_drop):
            return False
        lying = w / h >= 0.9 or h < 0.55 * ref_h
        if self._clipped(box, view):  # cut by the picture's edge: a walker leaving shrinks the same way, but narrower
            return lying and w >= 1.1 * ref_w
        return lying

    def _judge(self, o: TrackedObject, view: View, people: list[TrackedObject]) -> Event | None:
        if any(p is not o and _overlap(o.box, p.box) > 0.3 for p in people):
            return None  # half hidden by someone: its box shape says nothing about its pose
        recent = [(t, b) for t, b in o.history if view.now - t <= 5.0]
        # distinct boxes only: a box held for a still object between detections is not a new observation
        # (a run of the same box keeps its latest time: "upright until then")
        obs: list[tuple[float, Box]] = []
        for t, b in recent:
            if obs and obs[-1][1] == b:
                obs[-1] = (t, b)
            else:
                obs.append((t, b))
        last_up = max((i for i, (_t, b) in enumerate(obs) if _h_w(b) >= UPRIGHT_H_W and not self._clipped(b, view)),
                      default=None)
        if last_up is None:
            return None
        ref = obs[last_up][1]
        lying = [(t, b) for t, b in obs[last_up + 1:] if self._lying(b, ref, view)]
        if len(lying) < self.min_frames or lying[-1][1] != obs[-1][1]:  # the latest observation must still be lying
            return None
        if lying[0][0] - obs[last_up][0] > FALL_S:  # a fall is fast; a walker's top creeps down over seconds
            return None
        if lying[-1][0] - lying[-self.min_frames][0] > self.confirm_s:
            return None
        # nothing after the upright reference may look upright again (someone bending down and standing up)
        if any(_h_w(b) >= UPRIGHT_H_W for _t, b in obs[last_up + 1:]):
            return None
        w, h = max(o.box[2] - o.box[0], 1.0), max(o.box[3] - o.box[1], 1.0)
        return Event("fall", min(1.0, 0.5 + w / h / 4), key=f"track:{o.id}", boxes=[(o.box, f"fall #{o.id}")],
                     foot=o.foot, zone=self.cfg.zone, track_id=o.id, once=True,
                     details={"method": "box-shape", "aspect_w_h": round(w / h, 2),
                              "height_ratio": round(h / max(ref[3] - ref[1], 1.0), 2), "observations": len(lying)})

    def _from_model(self, view: View, rows: sv.Detections | None) -> list[Event]:
        """"Person down" from the Normal/Fall model fused with the person's track: see the module doc."""
        now = view.now
        self._remember_people(view)
        if rows is not None:  # the model ran on this frame
            names = view.aux_names.get("fall", {})
            for xyxy, score, cls in zip(rows.xyxy.tolist(), rows.confidence.tolist(), rows.class_id.tolist()):
                x1, y1, x2, y2 = box = tuple(xyxy)
                if names.get(cls, "").lower() != "fall" or self._truncated(box, view):
                    continue
                if not self.zones.contains(self.cfg.zone, (x1 + x2) / 2, y2, view.w, view.h):
                    continue
                if self._on_two_wheeler(box, view):
                    continue  # a rider seated on a scooter or bicycle: low and wide, but not down
                state = max(self._down, key=lambda d: _iou(d.box, box), default=None)
                if state is None or _iou(state.box, box) < 0.2:
                    person = self._who_went_down(box, now)
                    if person is None:
                        continue  # nobody seen standing there: a Fall box alone is not a person going down
                    state = _Down(person[0], person[1], now, now, box, score)
                    self._down.append(state)
                state.last, state.box, state.score = now, box, max(state.score, score)
        out = []
        for state in list(self._down):
            if now - state.last > MODEL_GAP_S:  # the model says Normal again (got up), or the person left
                self._down.remove(state)
                continue
            if self._seen_upright(state, view):  # the same person detected standing: not down (any more)
                self._down.remove(state)
                continue
            held = state.last - state.first  # from the first Fall answer to the latest: one answer is no hold
            if held < self.hold_s or state.track_id in self._fired or not self._lying_now(state.box, state.ref):
                continue  # not yet held, already alerted, or sitting / bending (the box stays tall)
            self._fired.add(state.track_id)
            b = state.box
            w, h = max(b[2] - b[0], 1.0), max(b[3] - b[1], 1.0)
            out.append(Event("fall", state.score, key=f"track:{state.track_id}", boxes=[(b, f"fall #{state.track_id}")],
                             foot=((b[0] + b[2]) / 2, b[3]), zone=self.cfg.zone, track_id=state.track_id, once=True,
                             details={"method": "fall-model+track", "label": "person", "track_id": state.track_id,
                                      "held_s": round(held, 1), "aspect_w_h": round(w / h, 2),
                                      "height_ratio": round(h / max(state.ref[3] - state.ref[1], 1.0), 2)}))
        return out

    def _remember_people(self, view: View) -> None:
        """Each person track's last box and last upright (unclipped, h/w >= 1.3) box, kept for a while after the
        detector loses it — a person on the floor is often not detected as a person any more."""
        for o in view.objects:
            if o.label != "person" or not self.wanted(o):
                continue
            _seen, _box, up_t, up = self._people.get(o.id, (0.0, o.box, None, None))
            if _h_w(o.box) >= UPRIGHT_H_W and not self._clipped(o.box, view):
                up_t, up = view.now, o.box
            self._people[o.id] = (view.now, o.box, up_t, up)
        for tid in [k for k, v in self._people.items() if view.now - v[0] > UPRIGHT_LOOKBACK_S]:
            del self._people[tid]

    def _who_went_down(self, box: Box, now: float) -> tuple[int, Box] | None:
        """The person whose last box overlaps ``box`` most, seen in the last ``PERSON_GONE_S`` and upright within
        ``UPRIGHT_LOOKBACK_S``: (track id, upright box)."""
        best, best_cover = None, 0.0
        for tid, (seen, last, up_t, up) in self._people.items():
            if up is None or now - seen > PERSON_GONE_S or now - up_t > UPRIGHT_LOOKBACK_S:
                continue
            cover = _overlap(last, box)
            if cover > best_cover:
                best, best_cover = (tid, up), cover
        return best if best_cover > 0.2 else None

    def _truncated(self, box: Box, view: View) -> bool:
        """Cut by the picture's edge: a walker leaving is cut the same way a body going down is. A wide box on the
        bottom edge is a body lying across the bottom of a close camera's view, not a cut walker."""
        m = EDGE * view.w
        if box[0] <= m or box[1] <= m or box[2] >= view.w - m:
            return True
        w, h = max(box[2] - box[0], 1.0), max(box[3] - box[1], 1.0)
        return box[3] >= view.h - m and w / h < 1.2

    @staticmethod
    def _on_two_wheeler(box: Box, view: View) -> bool:
        """The Fall box sits on a tracked motorcycle or bicycle: the vehicle covers a third of it and lies under its
        middle. A seated rider is low and wide, and the Normal/Fall model says Fall (the burning e-scooter's rider on
        the shared clips); a rider thrown off lies beside the vehicle, not on it."""
        cx = (box[0] + box[2]) / 2
        return any(o.label in TWO_WHEELERS and o.box[0] <= cx <= o.box[2] and _overlap(box, o.box) >= 1 / 3
                   for o in view.objects)

    def _seen_upright(self, state: _Down, view: View) -> bool:
        """The track that went down is detected on this frame upright (h/w >= 1.3, not cut by the edge) where the
        Fall box is: the person stands (got up, or was never down — a rider on a scooter the detector does not see)."""
        return any(o.id == state.track_id and o.last_detected == view.now and _h_w(o.box) >= UPRIGHT_H_W
                   and not self._clipped(o.box, view) and _overlap(o.box, state.box) > 0.3 for o in view.objects)

    @staticmethod
    def _lying_now(box: Box, ref: Box) -> bool:
        """Lying, not sitting, bending or riding: the top has come down by ``TOP_DROP`` of the standing height (a
        seated rider's head stays where it was), and the box is wide, or under half the standing height."""
        w, h = max(box[2] - box[0], 1.0), max(box[3] - box[1], 1.0)
        ref_h = max(ref[3] - ref[1], 1.0)
        if box[1] - ref[1] < TOP_DROP * ref_h:
            return False
        return w / h >= LYING_W_H or h < 0.5 * ref_h
