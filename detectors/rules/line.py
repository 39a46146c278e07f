"""Line crossing with direction: the foot point passes from one side of the directed segment a→b to the other.

Direction convention (image coordinates, y down): ``a_to_b`` = crossing from the left of the arrow a→b to its
right, as you see it on the picture; ``b_to_a`` the opposite; ``any`` both.

Why not supervision's ``LineZone`` (tried, supervision 0.31.2, 2026-12-01): it remembers a track's side for two
calls of absence, so a person hidden at the line (a pillar, another person) for longer is never counted when
the tracker finds them again on the other side; here the tracker's own previous foot point (``prev_foot``, kept
through the gap) is compared with the new one
(``tests/detectors/test_line_rule.py::test_a_person_hidden_while_crossing_is_still_counted_when_the_tracker_finds_them_again``).
"""
from __future__ import annotations

from detectors.rules.base import PERSON, Event, Rule, View


def _side(ax: float, ay: float, bx: float, by: float, x: float, y: float) -> float:
    return (bx - ax) * (y - ay) - (by - ay) * (x - ax)


def _segments_cross(p1, p2, q1, q2) -> bool:
    d1, d2 = _side(*q1, *q2, *p1), _side(*q1, *q2, *p2)
    d3, d4 = _side(*p1, *p2, *q1), _side(*p1, *p2, *q2)
    return d1 * d2 < 0 and d3 * d4 < 0


class LineCrossingRule(Rule):
    default_classes = PERSON

    def __init__(self, cfg, zones, camera_min_score=None):
        super().__init__(cfg, zones, camera_min_score)
        if cfg.line is None or cfg.line not in zones.lines:
            raise ValueError(f"rule line_crossing: unknown line {cfg.line!r} (lines: {sorted(zones.lines)})")
        self.line = zones.lines[cfg.line]

    def evaluate(self, view: View) -> list[Event]:
        a = (self.line.a[0] * view.w, self.line.a[1] * view.h)
        b = (self.line.b[0] * view.w, self.line.b[1] * view.h)
        out = []
        for o in view.objects:
            if o.prev_foot is None or not self.wanted(o) or not _segments_cross(o.prev_foot, o.foot, a, b):
                continue
            # y grows downwards, so a positive cross product is the right-hand side of a→b on screen
            direction = "a_to_b" if _side(*a, *b, *o.foot) > 0 else "b_to_a"
            if self.cfg.direction in ("any", direction):
                out.append(Event("line_crossing", o.median_score, key=f"track:{o.id}:{direction}",
                                 boxes=[(o.box, f"{o.label} #{o.id}")], foot=o.foot, zone=self.cfg.zone, track_id=o.id,
                                 once=True, details={"line": self.line.name, "direction": direction, "label": o.label}))
        return out
