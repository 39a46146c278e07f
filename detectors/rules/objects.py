"""Zone rules over tracked objects: intrusion, loitering, crowd gathering, illegal parking, abandoned object."""
from __future__ import annotations

import math

import numpy as np

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
    """人员聚集: at least ``min_count`` people *standing together* in the zone, for ``dwell_s``.

    Why not "N people in the zone": on a busy square any N passers-by are in a large zone at once, and a city
    platform's gathering alarm means people who cluster and stay. So a person counts only when

    * it is **settled**: tracked for ≥ 1 s and its foot point moved less than 0.3 of its own height per second over
      the last 3 s (a walker covers ~0.7 heights per second);
    * it is **with the others**: members are linked when their feet are within ``LINK`` (1.5) of their mean box
      height (perspective-free: near people are bigger and stand further apart in pixels), and the largest linked
      group (connected components, scipy) is the gathering.

    People inside a tight group are hidden by each other and detected only now and then (measured on the plaza
    clip: 1-3 of the ~4 per frame), so a settled member is **remembered** for ``hold_s`` (5 s) after it was last
    seen — unless its track is seen again walking or outside the zone — but only beside at least ``MIN_FRESH`` (2)
    members seen settled in the last second: remembered members alone are ghosts of people who walked away under a
    new track id (the false gathering on the campus clip: three ids of passers-by who had paused). Two remembered members closer than 0.35 of a
    height are one person under two track ids. The gathering must last ``dwell_s``; a dip below ``min_count`` of up
    to 2 s (a missed detection) does not restart the clock; repeats follow ``cooldown_s``.
    """

    default_classes = PERSON
    LINK = 1.5  # foot distance, in mean box heights, that links two people
    SETTLED_SPEED = 0.3  # box heights per second
    SETTLE_S = 1.0
    WINDOW_S = 3.0
    SAME_PERSON = 0.35
    FRESH_S = 1.0  # a member seen (settled) within this long is fresh
    MIN_FRESH = 2  # a gathering needs this many fresh members: remembered ones alone are ghosts of people gone

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hold_s = self.cfg.hold_s
        self._since: float | None = None
        self._below_since: float | None = None
        # track id -> (last seen settled, foot, box height, box, label)
        self._members: dict[int, tuple[float, tuple[float, float], float, tuple, str]] = {}

    def _settled(self, o: TrackedObject, now: float) -> bool:
        hist = [(t, b) for t, b in o.history if now - t <= self.WINDOW_S]
        if not hist or now - o.first_seen < self.SETTLE_S:
            return False
        t_old, b_old = hist[0]
        span = max(now - t_old, self.SETTLE_S)
        h = max(o.box[3] - o.box[1], 1.0)
        moved = math.dist(((b_old[0] + b_old[2]) / 2, b_old[3]), o.foot)
        return moved / h / span < self.SETTLED_SPEED

    def _update_members(self, view: View) -> None:
        for o in view.objects:
            if not self.wanted(o):
                continue
            if self.in_zone(o, view) and self._settled(o, view.now):
                self._members[o.id] = (view.now, o.foot, max(o.box[3] - o.box[1], 1.0), o.box, o.label)
            else:
                self._members.pop(o.id, None)  # seen walking, or outside the zone: no longer part of a gathering
        for tid in [k for k, m in self._members.items() if view.now - m[0] > self.hold_s]:
            del self._members[tid]

    def _largest_group(self) -> list[int]:
        from scipy.sparse.csgraph import connected_components

        # newest first, so a duplicate (same person, new id) keeps the latest box
        ids = sorted(self._members, key=lambda k: -self._members[k][0])
        kept: list[int] = []
        for k in ids:
            _t, f, h, _b, _l = self._members[k]
            if all(math.dist(f, self._members[j][1]) > self.SAME_PERSON * (h + self._members[j][2]) / 2 for j in kept):
                kept.append(k)
        if len(kept) < 2:
            return kept
        feet = np.array([self._members[k][1] for k in kept])
        hs = np.array([self._members[k][2] for k in kept])
        dist = np.hypot(feet[:, None, 0] - feet[None, :, 0], feet[:, None, 1] - feet[None, :, 1])
        linked = dist <= self.LINK * (hs[:, None] + hs[None, :]) / 2
        _n, labels = connected_components(linked, directed=False)
        best = np.bincount(labels).argmax()
        return [k for k, lb in zip(kept, labels) if lb == best]

    def evaluate(self, view: View) -> list[Event]:
        self._update_members(view)
        group = self._largest_group()
        fresh = sum(1 for k in group if view.now - self._members[k][0] <= self.FRESH_S)
        if len(group) >= self.cfg.min_count and fresh >= min(self.MIN_FRESH, self.cfg.min_count):
            self._below_since = None
            if self._since is None:
                self._since = view.now
        else:
            # tolerate a short dip (a missed detection) before the gathering counts as gone
            self._below_since = self._below_since or view.now
            if view.now - self._below_since > 2.0:
                self._since = None
        if self._since is None or view.now - self._since < self.cfg.dwell_s or len(group) < self.cfg.min_count \
                or fresh < min(self.MIN_FRESH, self.cfg.min_count):
            return []
        boxes = [self._members[k][3] for k in group]
        box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        return [Event("crowd", min(1.0, len(group) / (2 * self.cfg.min_count)), key=f"crowd:{self.cfg.zone}",
                      boxes=[(box, f"crowd {len(group)}")] + [(self._members[k][3], f"{self._members[k][4]} #{k}") for k in group],
                      foot=((box[0] + box[2]) / 2, box[3]), zone=self.cfg.zone,
                      details={"count": len(group), "since_s": round(view.now - self._since, 1),
                               "track_ids": sorted(group), "method": "settled-cluster"})]


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
