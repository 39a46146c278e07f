"""Person fallen: the Normal/Fall model's 'Fall' boxes when that model is configured, else box-shape cues.

Shape cues (no extra model): a tracked person whose box turns from upright (h/w ≥ 1.3 within the last 5 s) to
lying (w/h ≥ 0.9, or the height collapsing below 55 % of the upright height) while its top has dropped by > 30 %
of the upright height and at least twice as far as its bottom (a walker moves both together). Clearly lying
(w/h ≥ 1.2) counts at once; otherwise it must stay so for ``dwell_s`` (default 0.3 s). A fallen person is often detected
only intermittently, so one clear observation after an upright one counts.
"""
from __future__ import annotations

from detectors.rules.base import PERSON, Event, Rule, View


class FallRule(Rule):
    default_classes = PERSON

    def evaluate(self, view: View) -> list[Event]:
        rows = view.aux.get("fall")
        if rows is not None:
            return self._from_model(view, rows)
        dwell = self.cfg.dwell_s or 0.3
        out = []
        for o in view.objects:
            if not self.wanted(o) or not self.in_zone(o, view):
                continue
            x1, y1, x2, y2 = o.box
            w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
            upright = [(t, b) for t, b in o.history if view.now - t <= 5.0 and (b[3] - b[1]) >= 1.3 * (b[2] - b[0])]
            if not upright:
                o.__dict__.pop("_down_since", None)
                continue
            ref = upright[-1][1]  # the latest upright box
            ref_h, ref_top, ref_bottom = ref[3] - ref[1], ref[1], ref[3]
            # a body going down: the head drops far more than the feet (a walker moves both together)
            top_drop, bottom_drop = y1 - ref_top, max(y2 - ref_bottom, 0.0)
            going_down = top_drop > 0.3 * ref_h and top_drop >= 2 * bottom_drop
            lying = going_down and (w / h >= 0.9 or h < 0.55 * ref_h)
            if not lying:
                o.__dict__.pop("_down_since", None)
                continue
            since = o.__dict__.setdefault("_down_since", view.now)
            if w / h >= 1.2 or view.now - since >= dwell:
                out.append(Event("fall", min(1.0, 0.5 + w / h / 4), key=f"track:{o.id}", boxes=[(o.box, f"fall #{o.id}")],
                                 foot=o.foot, zone=self.cfg.zone, track_id=o.id, once=True,
                                 details={"method": "box-shape", "aspect_w_h": round(w / h, 2),
                                          "height_ratio": round(h / ref_h, 2)}))
        return out

    def _from_model(self, view: View, rows) -> list[Event]:
        names = view.aux_names.get("fall", {})
        out = []
        for r in rows:
            x1, y1, x2, y2, score, cls = (float(v) for v in r[:6])
            if names.get(int(cls), "").lower() != "fall" or not self.zones.contains(self.cfg.zone, (x1 + x2) / 2, y2, view.w, view.h):
                continue
            out.append(Event("fall", score, key="fall-model", boxes=[((x1, y1, x2, y2), f"fall {score:.2f}")],
                             foot=((x1 + x2) / 2, y2), zone=self.cfg.zone, details={"method": "fall-model"}))
        return out[:1]
