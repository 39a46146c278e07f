"""Camera health events (from ingest) as Anomalies: offline fires a 设备离线 case, online clears it."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

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


def publish_health(event: Any, cameras: Mapping[str, Any], publish: Callable[[Anomaly], None]) -> None:
    """Publish a camera health event (``ingest.video.health.HealthEvent``) as its anomaly, if it stands for one.

    One function for both engines — in-process and the video worker processes — so a camera going offline files
    the same 设备离线 case wherever it is decoded. ``cameras``: id → the camera's entry (its ``pose`` places the
    case); an event of a camera no longer configured (removed while its worker stopped) is dropped."""
    cam = cameras.get(event.camera_id)
    if cam is None:
        return
    anomaly = health_anomaly(event.camera_id, cam.pose, event.kind, event.reason, event.at)
    if anomaly is not None:
        publish(anomaly)
