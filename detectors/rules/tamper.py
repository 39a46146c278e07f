"""Camera tamper (view changed, covered lens, defocus, frozen picture) against a reference background."""
from __future__ import annotations

from detectors.rules.base import Event, Rule, View
from detectors.tamper import TamperDetector


class TamperRule(Rule):
    needs_objects = False

    def __init__(self, cfg, zones, camera_min_score=None):
        super().__init__(cfg, zones, camera_min_score)
        hold = max(cfg.dwell_s, 1.0) if cfg.dwell_s else 2.0
        self.detector = TamperDetector(sensitivity=cfg.sensitivity, hold_s=hold)

    def evaluate(self, view: View) -> list[Event]:
        cue = self.detector.update(view.motion.grey, view.now)
        if cue is None:
            return []
        # one anomaly per onset (a camera moved twice is two; one held covered for an hour is one)
        return [Event("tamper", cue.score, key=f"tamper:{cue.reason}:{cue.episode}", once=True,
                      details={"reason": cue.reason, "episode": cue.episode})]
