"""/metrics reads what the video role publishes: per-camera rates and the detector's latency quantiles.

Real runtime, Redis and app; the video role's side is the real ``CameraStatePublisher`` over a stand-in engine that
reports what a worker-pool engine reports (its detector's figures under ``detector``), so no decoder or model runs.
"""
from __future__ import annotations

import re
from typing import Any

import pytest

from detectors.camera_state import CameraStatePublisher

pytestmark = pytest.mark.timeout(60)


class _PoolEngine:
    """A worker-pool engine's published shape: one camera online, the detector process's latency under ``detector``."""

    model_status = "loaded"

    def __init__(self, camera_id: str):
        self.camera_id = camera_id

    def camera_status(self) -> dict[str, dict[str, Any]]:
        return {self.camera_id: {"state": "online", "camera_fps": 14.5, "process_fps": 5.0, "skipped_fps": 0.0}}

    def stats(self) -> dict[str, Any]:
        return {"video_workers": 2, "detector": {"inference_ms_p50": 12.0, "inference_ms_p99": 48.0}}


def _sample(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{name}\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_metrics_show_camera_rates_and_the_detector_latency_of_a_worker_pool(client, runtime):
    cam = runtime.deployment.cameras[0].id
    CameraStatePublisher(runtime.redis, runtime.camera_keys, _PoolEngine(cam), worker="test").publish_status()
    text = client.get("/api/v1/metrics").text
    assert _sample(text, "gridwatch_camera_fps", camera=cam) == 14.5
    assert _sample(text, "gridwatch_camera_up", camera=cam) == 1.0
    assert _sample(text, "gridwatch_inference_latency_seconds", quantile="0.5") == pytest.approx(0.012)
    assert _sample(text, "gridwatch_inference_latency_seconds", quantile="0.99") == pytest.approx(0.048)
