"""Fire and smoke: a fire/smoke model's boxes when one is configured, else the classical colour/flicker cue."""
from __future__ import annotations

from detectors.fire import FireSmokeDetector
from detectors.rules.base import Event, Rule, View


class FireSmokeRule(Rule):
    needs_objects = False

    def __init__(self, cfg, zones, camera_min_score=None):
        super().__init__(cfg, zones, camera_min_score)
        self.classical = FireSmokeDetector(sensitivity=cfg.sensitivity)

    def evaluate(self, view: View) -> list[Event]:
        rows = view.aux.get("fire")
        if rows is not None:
            names = view.aux_names.get("fire", {})
            for r in rows:
                x1, y1, x2, y2, score, cls = (float(v) for v in r[:6])
                label = names.get(int(cls), "fire")
                if self.zones.contains(self.cfg.zone, (x1 + x2) / 2, (y1 + y2) / 2, view.w, view.h):
                    return [Event("fire_smoke", score, key="fire", boxes=[((x1, y1, x2, y2), label)],
                                  foot=((x1 + x2) / 2, y2), zone=self.cfg.zone, details={"method": "model", "label": label})]
            return []
        cue = self.classical.update(view.motion.small)
        if cue is None:
            return []
        b = cue.box
        box = (b[0] * view.w, b[1] * view.h, b[2] * view.w, b[3] * view.h)
        if not self.zones.contains(self.cfg.zone, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, view.w, view.h):
            return []
        return [Event("fire_smoke", cue.score, key="fire", boxes=[(box, cue.kind)], foot=((box[0] + box[2]) / 2, box[3]),
                      zone=self.cfg.zone, details={"method": "classical", "cue": cue.kind, "area": round(cue.area, 4)})]
