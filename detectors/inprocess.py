"""``InProcessVideo``: the whole video chain in the calling process (CameraManager → VideoPipeline).

This is the first build's code path behind the ``VideoEngine`` contract: one process decodes every
camera in its own threads and one analysis thread batches detection across them. The video role
uses it when no worker processes are asked for (``--video-workers 0``) and in unit tests.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ingest.anomaly import Anomaly
from detectors.engine import OverlayBox
from ingest.frame import Frame

log = logging.getLogger(__name__)


class InProcessVideo:
    """CameraManager + VideoPipeline in one process, answering the ``VideoEngine`` protocol.

    ``sources=False`` builds the analysis without decoding anything (tests that feed frames, or a
    process that only needs the pipeline's configuration checks).
    """

    def __init__(self, detection: Any, ingest: Any, base_dir: Path, evidence_dir: Path,
                 publish: Callable[[Anomaly], None], on_health: Callable[[Any], None] | None = None,
                 *, sources: bool = True):
        from detectors.pipeline import VideoPipeline

        self.pipeline = VideoPipeline(detection, base_dir, evidence_dir, publish=publish)
        self.cameras = None
        if sources:
            from ingest.video import CameraManager

            self.cameras = CameraManager(ingest, base_dir, sink=self.pipeline.submit, on_health=on_health)

    @property
    def model_status(self) -> str:
        return self.pipeline.model_status

    def start(self, cameras: Iterable[Any]) -> None:
        cameras = list(cameras)
        for cam in cameras:
            self.pipeline.configure_camera(cam.id, cam.pose, cam)
        self.pipeline.start()
        if self.cameras is not None:
            self.cameras.start([c for c in cameras if c.enabled])

    def stop(self) -> None:
        if self.cameras is not None:
            self.cameras.stop()
        self.pipeline.stop()

    def add_camera(self, camera: Any) -> None:
        self.pipeline.configure_camera(camera.id, camera.pose, camera)
        if self.cameras is not None and camera.enabled:
            self.cameras.add(camera)

    def update_camera(self, camera: Any) -> None:
        self.pipeline.configure_camera(camera.id, camera.pose, camera)
        if self.cameras is None:
            return
        if camera.id in self.cameras.cameras() or camera.id in self.cameras.status():
            self.cameras.update(camera)
        elif camera.enabled:
            self.cameras.add(camera)

    def remove_camera(self, camera_id: str) -> None:
        from ingest.video.errors import SourceError

        if self.cameras is not None:
            try:
                self.cameras.remove(camera_id)
            except (SourceError, KeyError):
                pass  # never attached (disabled, or it could not start): nothing to detach
        self.pipeline.remove_camera(camera_id)

    def camera_status(self) -> dict[str, dict[str, Any]]:
        if self.cameras is None:
            return {}
        analysis = self.pipeline.stats()["cameras"]
        out: dict[str, dict[str, Any]] = {}
        for cid, status in self.cameras.status().items():
            row = status.to_dict()
            counters = analysis.get(cid, {})
            row["detection_fps"] = counters.get("detection_fps", 0.0)
            row["analysis"] = counters  # the pipeline's own counters: processed, skipped, detections, objects …
            out[cid] = row
        return out

    def latest_frame(self, camera_id: str) -> Frame | None:
        return self.cameras.latest(camera_id) if self.cameras is not None else None

    def overlay(self, camera_id: str) -> list[OverlayBox]:
        slot = self.pipeline._cameras.get(camera_id)  # noqa: SLF001 — the pipeline's own analyzer, read-only
        tracker = getattr(getattr(slot, "analyzer", None), "tracker", None)
        if tracker is None:
            return []
        return [OverlayBox(tuple(float(v) for v in o.box), o.label, float(o.score), o.id)  # type: ignore[arg-type]
                for o in list(tracker.objects.values())]

    def stats(self) -> dict[str, Any]:
        stats = self.pipeline.stats()
        stats.pop("cameras", None)
        return {**stats, "engine": "in-process", "workers": 0}
