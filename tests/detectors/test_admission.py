"""Detection admission: the detector runs at ``model.detect_fps`` per camera, never blocks the analysis rate, and
cameras take fair turns when the inference worker is full. A fake model (fixed cost per image, one person box)
stands in for the real one, so the policy is tested without the CPU cost of YOLO."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from detectors.config import CameraAnalytics, DetectionConfig
from detectors.pipeline import VideoPipeline
from ingest.config import GeoPose
from ingest.frame import Frame

POSE = GeoPose(position={"lon": 120.1, "lat": 30.2})
NAMES = {0: "person", 2: "car"}


class FakeModel:
    """Duck-types ObjectModel: ``cost_s`` of work per image; one person in the middle of every crop."""

    def __init__(self, cost_s: float):
        self.cost_s, self.names, self.loaded, self.imgsz = cost_s, NAMES, True, 320
        self.status = "fake model"
        self.images = 0
        self._lock = threading.Lock()

    def predict(self, images: list[np.ndarray]) -> list[np.ndarray]:
        threading.Event().wait(self.cost_s * len(images))  # the model's compute time, not synchronisation
        with self._lock:
            self.images += len(images)
        return [np.array([[100, 80, 160, 240, 0.9, 0]], np.float32) for _ in images]


def _pipeline(tmp_path, cost_s: float, **model) -> tuple[VideoPipeline, FakeModel, list]:
    det = DetectionConfig.model_validate({"model": {"path": str(tmp_path / "none.onnx"), "imgsz": 320, **model},
                                          "evidence": {"enabled": False}})
    got: list = []
    pipe = VideoPipeline(det, tmp_path, tmp_path / "evidence", got.append)
    fake = FakeModel(cost_s)
    pipe.model = fake  # type: ignore[assignment]
    pipe.worker.models["objects"] = fake  # type: ignore[assignment]
    return pipe, fake, got


def _feed(pipe: VideoPipeline, cams: list[str], seconds: float, fps: float = 5.0, still: tuple[str, ...] = ()) -> int:
    """Cameras with constant motion (a bright block moving across a dark 640x360 frame) and ``still`` ones that see
    the same dark picture every time, paced like live cameras."""
    t0 = time.time()
    n = int(seconds * fps)
    for k in range(n):
        due = t0 + k / fps
        threading.Event().wait(max(0.0, due - time.time()))  # pacing a camera, not waiting for a result
        for i, cid in enumerate(cams):
            img = np.full((360, 640, 3), 20, np.uint8)
            x = (40 * k + 37 * i) % 480
            img[60:300, x:x + 160] = 230
            pipe.submit(Frame(cid, k, k / fps, due, img))
        for cid in still:
            pipe.submit(Frame(cid, k, k / fps, due, np.full((360, 640, 3), 20, np.uint8)))
    return n


@pytest.mark.timeout(60)
def test_detector_rate_is_capped_per_camera_and_analysis_keeps_full_rate(tmp_path):
    pipe, fake, got = _pipeline(tmp_path, cost_s=0.01, detect_fps=1.0)
    cams = [f"c{i}" for i in range(8)]
    for cid in cams:
        pipe.configure_camera(cid, POSE, CameraAnalytics.model_validate({"rules": [{"kind": "intrusion"}]}))
    pipe.start()
    try:
        seconds = 6.0
        frames = _feed(pipe, cams, seconds)
        assert pipe.drain(10)
        s = pipe.stats()
        passes = {cid: s["cameras"][cid]["detect_passes"] for cid in cams}
        # detect_fps = 1: at most one pass per camera-second (+1 for where the window starts)
        assert all(1 <= p <= seconds * 1.0 + 1 for p in passes.values()), passes
        assert sum(passes.values()) <= len(cams) * (seconds * 1.0 + 1)
        # every frame analysed (motion, rules) although only ~1 in 5 went to the detector
        assert all(s["cameras"][cid]["processed"] == frames for cid in cams), s["cameras"]
        assert all(s["cameras"][cid]["skipped"] == 0 for cid in cams)
        assert {a.source_id for a in got if a.kind == "intrusion"} == set(cams), "a camera got no detections"
    finally:
        pipe.stop()


@pytest.mark.timeout(60)
def test_overloaded_detector_is_shared_fairly_and_never_queues_unbounded(tmp_path):
    # 8 cameras want 8 passes/s; the fake detector does ~3 images/s: it must be shared, not let some starve
    pipe, fake, _ = _pipeline(tmp_path, cost_s=0.3, detect_fps=1.0, max_batch=2)
    assert pipe.max_inflight == 4
    depth = []
    orig = fake.predict

    def watched(images):
        depth.append(pipe.worker.depth + len(images))
        return orig(images)

    fake.predict = watched  # type: ignore[method-assign]
    cams = [f"c{i}" for i in range(8)]
    for cid in cams:
        pipe.configure_camera(cid, POSE, CameraAnalytics.model_validate({"rules": [{"kind": "intrusion"}]}))
    pipe.start()
    try:
        frames = _feed(pipe, cams, 8.0)
        assert pipe.drain(10)
        s = pipe.stats()
        passes = [s["cameras"][cid]["detect_passes"] for cid in cams]
        assert min(passes) >= 1 and max(passes) - min(passes) <= 2, passes
        assert max(depth) <= pipe.max_inflight, max(depth)
        assert s["detect_denied"] > 0  # it really was overloaded
        assert all(s["cameras"][cid]["processed"] == frames for cid in cams)  # the analysis rate did not suffer
    finally:
        pipe.stop()


@pytest.mark.timeout(30)
def test_active_cameras_go_before_idle_ones(tmp_path):
    """A still camera wants only its periodic refresh pass; while moving cameras keep the worker full it waits."""
    pipe, fake, _ = _pipeline(tmp_path, cost_s=0.3, detect_fps=5.0, max_batch=1, max_inflight=1, refresh_s=0.5)
    rules = CameraAnalytics.model_validate({"rules": [{"kind": "intrusion"}]})
    for cid in ("busy1", "busy2", "idle"):
        pipe.configure_camera(cid, POSE, rules)
    pipe.start()
    try:
        frames = _feed(pipe, ["busy1", "busy2"], 4.0, still=("idle",))
        assert pipe.drain(10)
        s = pipe.stats()["cameras"]
        assert s["busy1"]["detect_passes"] >= 2 and s["busy2"]["detect_passes"] >= 2, s
        # its first frame may go before motion starts elsewhere; after that the moving cameras come first
        assert s["idle"]["detect_passes"] <= 1, s["idle"]
        assert s["idle"]["processed"] == frames
    finally:
        pipe.stop()
