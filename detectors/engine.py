"""The contract between the video role and whatever analyses its cameras.

The video role (decode → motion → detect → track → rules → evidence → Anomaly) can run in one process
(``InProcessVideo``: CameraManager + VideoPipeline, as the first build did) or spread over worker processes
with shared-memory frames and one detector process per host. Both implement ``VideoEngine``; the video role
only talks to this protocol, and publishes what the API needs (status, latest JPEG, overlay boxes) to Redis so
that an API process on any host can serve it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ingest.frame import Frame


@dataclass(frozen=True, slots=True)
class OverlayBox:
    """One tracked object as the live view draws it; coordinates are pixels of the analysed frame."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    label: str
    score: float
    track_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "label": self.label, "score": round(self.score, 3), "track_id": self.track_id}


@runtime_checkable
class VideoEngine(Protocol):
    """What analyses a set of cameras. ``camera`` values are the deployment's camera entries
    (source, analysis, pose, zones and rules: ``gateway.config.Camera`` or anything with its fields)."""

    @property
    def model_status(self) -> str:
        """The detector's state in words; starts with ``motion-only`` when no model is loaded."""
        ...

    def start(self, cameras: Iterable[Any]) -> None: ...

    def stop(self) -> None: ...

    def add_camera(self, camera: Any) -> None: ...

    def update_camera(self, camera: Any) -> None: ...

    def remove_camera(self, camera_id: str) -> None: ...

    def camera_status(self) -> dict[str, dict[str, Any]]:
        """Per camera: ``CameraStatus.to_dict()`` plus the analysis counters (camera/process/skipped/detection fps)."""
        ...

    def latest_frame(self, camera_id: str) -> Frame | None:
        """The newest decoded frame of a camera, or None if it has none (or is not held here)."""
        ...

    def overlay(self, camera_id: str) -> list[OverlayBox]:
        """The camera's currently tracked objects, for drawing on the live view."""
        ...

    def stats(self) -> dict[str, Any]:
        """Engine-wide counters (detector batches, inflight, denied, workers)."""
        ...
