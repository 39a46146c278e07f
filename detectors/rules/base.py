"""What every video rule sees (a View of one analysed frame) and what it returns (Events)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
import supervision as sv

from detectors.config import CameraAnalytics, RuleConfig
from detectors.motion import MotionResult
from detectors.tracking import TrackedObject

BoxLabel = tuple[tuple[float, float, float, float], str]

PERSON = ["person"]
VEHICLES = ["car", "truck", "bus", "motorcycle"]
BAGGAGE = ["backpack", "handbag", "suitcase"]


@dataclass
class Event:
    """A rule's finding; the camera analyzer turns it into an Anomaly (geolocation, evidence, cooldown)."""

    kind: str
    score: float
    key: str  # cooldown / once-only key within the rule (track id, zone)
    boxes: list[BoxLabel] = field(default_factory=list)
    foot: tuple[float, float] | None = None  # frame pixels, for the homography
    zone: str | None = None
    track_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    once: bool = False  # object-scoped: fire once per key, never again


@dataclass
class View:
    now: float
    w: int
    h: int
    objects: list[TrackedObject]
    motion: MotionResult
    detected: bool
    image: np.ndarray
    aux: dict[str, sv.Detections] = field(default_factory=dict)  # auxiliary model name -> what it found this frame
    aux_names: dict[str, dict[int, str]] = field(default_factory=dict)


class Zones:
    """The camera's zones (normalised polygons) and lines; tracks which objects are inside since when."""

    def __init__(self, analytics: CameraAnalytics):
        self.polygons = {z.name: shapely.Polygon(z.polygon) for z in analytics.zones}
        for name, poly in self.polygons.items():
            if not poly.is_valid:
                raise ValueError(f"zone {name!r}: polygon is not valid ({shapely.is_valid_reason(poly)})")
        self.lines = {ln.name: ln for ln in analytics.lines}

    def outline(self, zone: str | None) -> list[tuple[float, float]] | None:
        """The zone's polygon (normalised points) for drawing on evidence; None for the whole picture."""
        poly = self.polygons.get(zone) if zone is not None else None
        return None if poly is None else [(float(x), float(y)) for x, y in poly.exterior.coords[:-1]]

    def contains(self, zone: str | None, x: float, y: float, w: int, h: int) -> bool:
        if zone is None:
            return True
        return bool(shapely.contains_xy(self.polygons[zone], x / w, y / h))

    def update(self, objects: list[TrackedObject], now: float, w: int, h: int) -> None:
        for obj in objects:
            fx, fy = obj.foot
            for name in self.polygons:
                if self.contains(name, fx, fy, w, h):
                    obj.zone_since.setdefault(name, now)
                else:
                    obj.zone_since.pop(name, None)


class Rule:
    """One configured analytic on one camera."""

    needs_objects = True
    default_classes: list[str] = []

    def __init__(self, cfg: RuleConfig, zones: Zones, camera_min_score: float | None = None):
        self.cfg = cfg
        self.zones = zones
        self.classes = {c.lower() for c in (cfg.classes or self.default_classes)}
        self.min_score = cfg.min_score or camera_min_score
        if cfg.zone is not None and cfg.zone not in zones.polygons:
            raise ValueError(f"rule {cfg.kind}: unknown zone {cfg.zone!r} (zones: {sorted(zones.polygons)})")

    @property
    def name(self) -> str:
        return f"{self.cfg.kind}:{self.cfg.zone or self.cfg.line or '*'}"

    def wanted(self, obj: TrackedObject) -> bool:
        if self.classes and obj.label.lower() not in self.classes:
            return False
        if self.min_score and obj.score < self.min_score:
            return False
        if self.cfg.min_median_score and obj.median_score < self.cfg.min_median_score:
            return False
        return True

    def in_zone(self, obj: TrackedObject, view: View) -> bool:
        return self.cfg.zone is None or self.cfg.zone in obj.zone_since

    def evaluate(self, view: View) -> list[Event]:
        raise NotImplementedError
