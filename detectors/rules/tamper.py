"""Camera tamper (covered lens, defocus, moved camera, frozen picture) from whole-picture statistics."""
from __future__ import annotations

from detectors.rules.base import Event, Rule, View
from detectors.tamper import TamperDetector


class TamperRule(Rule):
    needs_objects = False

    def __init__(self, cfg, zones, camera_min_score=None):
        super().__init__(cfg, zones, camera_min_score)
        self.detector = TamperDetector(sensitivity=cfg.sensitivity, hold_s=max(cfg.dwell_s, 1.0) if cfg.dwell_s else 5.0)

    def evaluate(self, view: View) -> list[Event]:
        cue = self.detector.update(view.motion.grey, view.now)
        if cue is None:
            return []
        return [Event("tamper", cue.score, key=f"tamper:{cue.reason}", details={"reason": cue.reason})]
