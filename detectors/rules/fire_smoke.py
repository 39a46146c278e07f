"""Fire and smoke: a fire/smoke model's boxes when one is configured, else the classical flicker/smoke cue.

The classical cue ignores what lies inside the boxes of people and of moving vehicles (red clothes, red cars, tail
and brake lights, headlights), so the rule asks for tracked objects: on a camera with a loaded object model, the
fire rule alone is enough to have people and vehicles tracked.
"""
from __future__ import annotations

from detectors.fire import FireSmokeDetector, working_copy
from detectors.rules.base import PERSON, VEHICLES, Event, Rule, View

MOVING_S = 2.0  # an object still for less than this is moving (as the detector's motion regions judge it)


class FireSmokeRule(Rule):
    needs_objects = True
    default_classes = PERSON + VEHICLES + ["bicycle"]

    def __init__(self, cfg, zones, camera_min_score=None):
        super().__init__(cfg, zones, camera_min_score)
        self.classical = FireSmokeDetector(sensitivity=cfg.sensitivity)

    def _not_fire(self, view: View) -> list[tuple[float, float, float, float]]:
        """Boxes whose pixels are not fire or smoke: every person (red and yellow clothes), moving vehicles (tail,
        brake and head lights, red paint). A vehicle standing still keeps its pixels: it may be what burns."""
        return [(o.box[0] / view.w, o.box[1] / view.h, o.box[2] / view.w, o.box[3] / view.h)
                for o in view.objects if o.label in self.classes
                and (o.label == "person" or o.still_for(view.now) < MOVING_S)]

    def evaluate(self, view: View) -> list[Event]:
        rows = view.aux.get("fire")
        if rows is not None:
            names = view.aux_names.get("fire", {})
            for (x1, y1, x2, y2), score, cls in zip(rows.xyxy.tolist(), rows.confidence.tolist(), rows.class_id.tolist()):
                label = names.get(cls, "fire")
                if self.zones.contains(self.cfg.zone, (x1 + x2) / 2, (y1 + y2) / 2, view.w, view.h):
                    return [Event("fire_smoke", score, key="fire", boxes=[((x1, y1, x2, y2), label)],
                                  foot=((x1 + x2) / 2, y2), zone=self.cfg.zone, details={"method": "model", "label": label})]
            return []
        cue = self.classical.update(working_copy(view.image), view.now, self._not_fire(view))
        if cue is None:
            return []
        b = cue.box
        box = (b[0] * view.w, b[1] * view.h, b[2] * view.w, b[3] * view.h)
        if not self.zones.contains(self.cfg.zone, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, view.w, view.h):
            return []
        return [Event("fire_smoke", cue.score, key="fire", boxes=[(box, cue.kind)], foot=((box[0] + box[2]) / 2, box[3]),
                      zone=self.cfg.zone, details={"method": "classical", "cue": cue.kind, "area": round(cue.area, 4),
                                                   "held_s": cue.held_s, "flicker": cue.flicker,
                                                   "with_smoke": cue.with_smoke})]
