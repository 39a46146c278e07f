"""Camera health events (from ingest) as Anomalies: offline fires a 设备离线 case, online clears it."""
from __future__ import annotations

from datetime import datetime, timezone

from ingest.anomaly import Anomaly
from ingest.config import GeoPose


def health_anomaly(camera_id: str, pose: GeoPose, event_kind: str, reason: str, at: float) -> Anomaly | None:
    """``event_kind`` 'offline' → firing camera_offline; 'online' → the same kind, cleared; anything else → None.

    Plain arguments rather than ingest's HealthEvent so detectors do not depend on its exact shape.
    """
    state = {"offline": "firing", "online": "cleared"}.get(event_kind)
    if state is None:
        return None
    return Anomaly(
        kind="camera_offline", source="camera", source_id=camera_id, location=pose.position,
        occurred_at=datetime.fromtimestamp(at, timezone.utc), observed_at=at, state=state,
        title=f"camera {camera_id} {event_kind}", details={"reason": reason, "event": event_kind},
    )
