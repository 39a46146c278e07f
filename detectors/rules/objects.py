"""Zone rules over tracked objects: intrusion, loitering, crowd gathering, illegal parking, abandoned object."""
from __future__ import annotations

import math

from detectors.rules.base import BAGGAGE, PERSON, VEHICLES, Event, Rule, View
from detectors.tracking import TrackedObject


def _event(kind: str, rule: Rule, obj: TrackedObject, now: float, **details) -> Event:
    return Event(kind, obj.median_score, key=f"track:{obj.id}", boxes=[(obj.box, f"{obj.label} #{obj.id}")],
                 foot=obj.foot, zone=rule.cfg.zone, track_id=obj.id, once=True,
                 details={"label": obj.label, "track_id": obj.id, **details})


def _in_zone_for(rule: Rule, obj: TrackedObject, now: float) -> float:
    if rule.cfg.zone is None:
        return now - obj.first_seen
    since = obj.zone_since.get(rule.cfg.zone)
    return -1.0 if since is None else now - since


class IntrusionRule(Rule):
    """An object of the classes (default person) inside the zone for at least ``dwell_s``."""

    default_classes = PERSON

    def evaluate(self, view: View) -> list[Event]:
        return [_event("intrusion", self, o, view.now, dwell_s=round(_in_zone_for(self, o, view.now), 1))
                for o in view.objects if self.wanted(o) and _in_zone_for(self, o, view.now) >= self.cfg.dwell_s]


class LoiteringRule(Rule):
    """A person staying in the zone longer than ``dwell_s`` (default 60 s when unset)."""

    default_classes = PERSON

    def evaluate(self, view: View) -> list[Event]:
        dwell = self.cfg.dwell_s or 60.0
        return [_event("loitering", self, o, view.now, dwell_s=round(_in_zone_for(self, o, view.now), 1))
                for o in view.objects if self.wanted(o) and _in_zone_for(self, o, view.now) >= dwell]


class CrowdRule(Rule):
    """At least ``min_count`` people in the zone, continuously for ``dwell_s``; re-arms when the crowd breaks up."""

    default_classes = PERSON

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._since: float | None = None
        self._below_since: float | None = None

    def evaluate(self, view: View) -> list[Event]:
        inside = [o for o in view.objects if self.wanted(o) and self.in_zone(o, view)]
        if len(inside) >= self.cfg.min_count:
            self._below_since = None
            if self._since is None:
                self._since = view.now
        else:
            # tolerate a short dip (a missed detection) before the crowd counts as gone
            self._below_since = self._below_since or view.now
            if view.now - self._below_since > 2.0:
                self._since = None
        if self._since is None or view.now - self._since < self.cfg.dwell_s or len(inside) < self.cfg.min_count:
            return []
        xs = [o.box for o in inside]
        box = (min(b[0] for b in xs), min(b[1] for b in xs), max(b[2] for b in xs), max(b[3] for b in xs))
        return [Event("crowd", min(1.0, len(inside) / (2 * self.cfg.min_count)), key=f"crowd:{self.cfg.zone}",
                      boxes=[(o.box, f"{o.label} #{o.id}") for o in inside], foot=((box[0] + box[2]) / 2, box[3]),
                      zone=self.cfg.zone, details={"count": len(inside), "since_s": round(view.now - self._since, 1)})]


class IllegalParkingRule(Rule):
    """A vehicle standing still in a no-stopping zone for longer than ``dwell_s`` (default 60 s when unset)."""

    default_classes = VEHICLES

    def evaluate(self, view: View) -> list[Event]:
        dwell = self.cfg.dwell_s or 60.0
        out = []
        for o in view.objects:
            if not self.wanted(o) or _in_zone_for(self, o, view.now) < 0:
                continue
            still = min(o.still_for(view.now), _in_zone_for(self, o, view.now))
            if still >= dwell:
                out.append(_event("illegal_parking", self, o, view.now, stationary_s=round(still, 1)))
        return out


class AbandonedObjectRule(Rule):
    """Baggage standing still for ``dwell_s`` (default 30 s) with no person near it (within 3 of its own sizes)."""

    default_classes = BAGGAGE

    def evaluate(self, view: View) -> list[Event]:
        dwell = self.cfg.dwell_s or 30.0
        people = [p for p in view.objects if p.label == "person"]
        out = []
        for o in view.objects:
            if not self.wanted(o) or not self.in_zone(o, view) or o.still_for(view.now) < dwell:
                continue
            size = max(o.box[2] - o.box[0], o.box[3] - o.box[1], 1.0)
            cx, cy = (o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2
            near = any(math.dist((cx, cy), ((p.box[0] + p.box[2]) / 2, (p.box[1] + p.box[3]) / 2)) < 3 * size
                       for p in people)
            if not near:
                out.append(_event("abandoned_object", self, o, view.now, stationary_s=round(o.still_for(view.now), 1)))
        return out
