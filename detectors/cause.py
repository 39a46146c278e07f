"""Why a rule fired, in words and numbers: the ``cause`` an anomaly carries to its ticket or activity record.

Why: an operator judging a card needs "which object, and why" — *car #12 stationary 35 s in no_parking* — not
only a kind and a score. The cause is built from what the rule's Event already holds (its first box is the object
that triggered it, its details the rule's measurements), so every rule gets one without code of its own.
"""
from __future__ import annotations

from typing import Any

from detectors.rules.base import Event

# Event details that say why (copied into the cause as they are), and how to say each in the text.
MEASURES: dict[str, str] = {
    "dwell_s": "在区域内 {v} 秒", "stationary_s": "静止 {v} 秒", "count": "{v} 人聚集", "since_s": "持续 {v} 秒",
    "cue": "征象 {v}", "area": "面积 {v:.1%}", "held_s": "保持 {v} 秒", "flicker": "闪烁 {v:.0%}", "aspect_w_h": "宽高比 {v}",
    "height_ratio": "高度比 {v}", "method": "方法 {v}",
}
LISTS = ("track_ids",)


def describe(ev: Event, score: float) -> dict[str, Any]:
    """The structured cause of ``ev`` plus a one-line ``text`` for the ticket description."""
    d = ev.details
    cause: dict[str, Any] = {"kind": ev.kind, "score": round(float(score), 3)}
    label = d.get("label") or (ev.boxes[0][1].split(" #")[0] if ev.boxes else None)
    if label:
        cause["object"] = label
    if ev.track_id is not None:
        cause["track_id"] = ev.track_id
    if ev.zone:
        cause["zone"] = ev.zone
    for key in list(MEASURES) + list(LISTS):
        if d.get(key) is not None:
            cause[key] = d[key]
    who = f"{label} #{ev.track_id}" if label and ev.track_id is not None else (label or ev.kind)
    parts = [MEASURES[k].format(v=cause[k]) for k in MEASURES if k in cause and k != "method"]
    where = f"区域 {ev.zone}" if ev.zone else "全画面"
    cause["text"] = f"{who} · {where} · " + (", ".join(parts) + ", " if parts else "") + f"置信度 {cause['score']:.2f}"
    return cause
