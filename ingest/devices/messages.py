"""The two things devices send that matter downstream: a sensor reading and an alarm press (or cancel).

Both are small frozen dataclasses (not pydantic models) because telemetry runs at tens of thousands
per second and they never leave the process; ``raw`` keeps the decoded payload for the evidence trail.
Times: ``at`` is the device's own clock, ``received_at`` the ingest's wall clock — rules reason on the
first, latency is measured from the second.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

PressKind = Literal["press", "cancel"]


@dataclass(frozen=True, slots=True)
class Reading:
    device_id: str
    metric: str
    value: float
    at: float
    received_at: float
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AlarmPress:
    """A signed one-key-alarm press, or its cancellation (误按) naming the press it cancels.

    ``press_id`` is the box's own id of the press; a repeat (retry, redelivery) carries the same one,
    which is how the same press gets the same case number. ``case`` is filled in for a cancel: the
    case number the cancelled press was filed under, when GridWatch still knows it.
    """

    device_id: str
    press_id: str
    kind: PressKind
    reason: str | None
    at: float
    received_at: float
    case: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
