"""Person fallen: the Normal/Fall model's 'Fall' boxes when that model is configured, else box-shape cues.

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

import numpy as np

from detectors.rules.base import PERSON, Event, Rule, View
from detectors.tracking import TrackedObject

Box = tuple[float, float, float, float]

UPRIGHT_H_W = 1.3
TOP_DOWN_MEDIAN_H_W = 1.5
VIEW_SAMPLES = 30
FALL_S = 2.0  # upright to lying within this long


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
        rows = view.aux.get("fall")
        if rows is not None:
            return self._from_model(view, rows)
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

    def _from_model(self, view: View, rows) -> list[Event]:
        names = view.aux_names.get("fall", {})
        out = []
        for r in rows:
            x1, y1, x2, y2, score, cls = (float(v) for v in r[:6])
            if names.get(int(cls), "").lower() != "fall" or not self.zones.contains(self.cfg.zone, (x1 + x2) / 2, y2, view.w, view.h):
                continue
            out.append(Event("fall", score, key="fall-model", boxes=[((x1, y1, x2, y2), f"fall {score:.2f}")],
                             foot=((x1 + x2) / 2, y2), zone=self.cfg.zone, details={"method": "fall-model"}))
        return out[:1]
