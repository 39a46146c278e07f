"""Plain motion: something moved (outside the masks, inside the zone if one is set). Works with no model at all."""
from __future__ import annotations

from detectors.rules.base import Event, Rule, View


class MotionRule(Rule):
    needs_objects = False

    def evaluate(self, view: View) -> list[Event]:
        boxes = [b for b in view.motion.boxes
                 if self.zones.contains(self.cfg.zone, (b[0] + b[2]) / 2 * view.w, (b[1] + b[3]) / 2 * view.h, view.w, view.h)]
        if not boxes:
            return []
        px = [((b[0] * view.w, b[1] * view.h, b[2] * view.w, b[3] * view.h), "motion") for b in boxes]
        big = max(px, key=lambda p: (p[0][2] - p[0][0]) * (p[0][3] - p[0][1]))[0]
        return [Event("motion", min(1.0, view.motion.fraction * 10), key=f"motion:{self.cfg.zone}", boxes=px,
                      foot=((big[0] + big[2]) / 2, big[3]), zone=self.cfg.zone,
                      details={"changed_fraction": round(view.motion.fraction, 4), "regions": len(boxes)})]
