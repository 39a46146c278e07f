"""Video rules, one class per analytic; ``build_rules`` turns a camera's RuleConfigs into rule objects."""
from __future__ import annotations

from detectors.config import CameraAnalytics
from detectors.rules.base import Event, Rule, View, Zones
from detectors.rules.fall import FallRule
from detectors.rules.fire_smoke import FireSmokeRule
from detectors.rules.line import LineCrossingRule
from detectors.rules.motion import MotionRule
from detectors.rules.objects import AbandonedObjectRule, CrowdRule, IllegalParkingRule, IntrusionRule, LoiteringRule
from detectors.rules.tamper import TamperRule

RULES: dict[str, type[Rule]] = {
    "motion": MotionRule, "intrusion": IntrusionRule, "line_crossing": LineCrossingRule, "loitering": LoiteringRule,
    "crowd": CrowdRule, "illegal_parking": IllegalParkingRule, "abandoned_object": AbandonedObjectRule,
    "fall": FallRule, "fire_smoke": FireSmokeRule, "tamper": TamperRule,
}


def build_rules(analytics: CameraAnalytics) -> tuple[Zones, list[Rule]]:
    """Raises ValueError naming the rule when a zone/line it refers to does not exist."""
    zones = Zones(analytics)
    return zones, [RULES[r.kind](r, zones, analytics.detect.min_score) for r in analytics.rules]


__all__ = ["Event", "Rule", "View", "Zones", "RULES", "build_rules"]
