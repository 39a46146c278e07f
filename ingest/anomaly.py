"""Anomaly: what every detector, sensor rule and alarm hands to ``alerts``.

It is the one contract between the sources and the case system, so it is a plain pydantic model
that serialises to a single JSON field of a Redis stream entry.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest.geo import GeoPoint

SourceKind = Literal["camera", "sensor", "alarm", "report"]


def _new_id() -> str:
    return uuid.uuid4().hex


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Evidence(BaseModel):
    """A file that backs an anomaly, stored under the evidence directory (``path`` is relative to it)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["snapshot", "frame", "clip", "photo", "audio"]
    path: str
    content_type: str = "image/jpeg"


class FenceStamp(BaseModel):
    """Which lease a video anomaly was made under: the camera, the pool member that held it, the lease's fencing
    token. Intake rejects a stamp whose lease a newer token superseded before the anomaly reached the stream
    (``alerts.fencing``), so a stalled former owner never files a duplicate ticket."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: str
    owner: str
    token: int = Field(ge=1)


class Anomaly(BaseModel):
    """Something a source saw that may need a person to act.

    ``id`` makes intake idempotent: the same anomaly delivered twice (a re-claimed stream entry,
    a re-sent MQTT message) becomes one occurrence. ``state='cleared'`` reports that the
    condition ended (a camera back online, a smoke reading back to normal).
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=_new_id)
    kind: str
    source: SourceKind
    source_id: str
    zone: str | None = None
    location: GeoPoint
    occurred_at: datetime = Field(default_factory=_utcnow)
    observed_at: float = Field(default_factory=time.time, description="wall clock of the input that caused it")
    score: float = 1.0
    state: Literal["firing", "cleared"] = "firing"
    category: str | None = None
    title: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    tier: Literal["alert", "activity"] = Field(
        "alert", description="alert: intake files a ticket; activity: intake only records it (camera timeline)")
    fence: FenceStamp | None = Field(None, description="video pool lease the anomaly was made under; None: not pooled")

    def to_stream(self) -> dict[str, str]:
        return {"anomaly": self.model_dump_json()}

    @classmethod
    def from_stream(cls, fields: dict[bytes | str, bytes | str]) -> "Anomaly":
        raw = fields.get(b"anomaly", fields.get("anomaly"))
        if raw is None:
            raise ValueError("stream entry has no 'anomaly' field")
        return cls.model_validate_json(raw)


def stamp_fence(anomaly: Anomaly, fences: Mapping[str, FenceStamp]) -> Anomaly:
    """The anomaly with the fence of its camera's lease, when the camera is pooled (``fences`` has it)."""
    if anomaly.source != "camera" or anomaly.fence is not None:
        return anomaly
    stamp = fences.get(anomaly.source_id)
    return anomaly if stamp is None else anomaly.model_copy(update={"fence": stamp})
