"""Fast checks of the pieces: regions, ONNX batching surgery, NMS, geolocation, health, bad input, motion-only."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from detectors.config import CameraAnalytics, DetectionConfig
from detectors.detection import from_rows, merge_crops, to_rows
from detectors.geolocate import Geolocator
from detectors.health import health_anomaly, publish_health
from detectors.regions import crop_for_model, full_frame_regions, plan_regions
from ingest.config import GeoPose
from ingest.frame import Frame
from tests.detectors.conftest import REPO, clip

POSE = GeoPose(position={"lon": 120.1, "lat": 30.2})


@pytest.mark.timeout(10)
def test_regions_cluster_and_fall_back_to_full_frame():
    regions, full = plan_regions([(10, 10, 40, 60), (20, 20, 30, 30)], 640, 480, 320)
    assert not full and len(regions) == 1
    x1, y1, x2, y2 = regions[0]
    assert (x2 - x1, y2 - y1) == (320, 320) and x1 <= 10 and y1 <= 10
    many = [(x, y, x + 20, y + 20) for x in range(0, 640, 160) for y in range(0, 480, 160)]
    regions, full = plan_regions(many, 640, 480, 320)
    assert full and regions == [(0, 0, 640, 480)]  # motion everywhere: one letterboxed pass, not two tiles
    regions, full = plan_regions(many, 640, 480, 320, tiles=True)
    assert full and regions == full_frame_regions(640, 480, 320) and len(regions) == 2
    assert full_frame_regions(640, 360, 320, tiles=False) == [(0, 0, 640, 360)]
    assert full_frame_regions(640, 480, 640) == [(0, 0, 640, 480)]
    crop, scale = crop_for_model(np.zeros((480, 640, 3), np.uint8), (0, 0, 640, 480), 320)
    assert crop.shape == (320, 320, 3) and scale == 2.0


@pytest.mark.timeout(10)
def test_nms_merges_tile_overlaps_and_contained_parts():
    dets = np.array([[0, 0, 100, 200, 0.9, 0], [2, 2, 101, 198, 0.8, 0], [0, 100, 100, 200, 0.5, 0],
                     [0, 0, 100, 200, 0.7, 2]], np.float32)
    out = merge_crops(from_rows(dets))
    assert len(out) == 2 and set(out.class_id) == {0, 2}


def test_a_crops_rows_land_in_frame_pixels_clipped_to_the_frame():
    """A 2x-downscaled crop at (100, 50): its rows scale by 2, move by the corner and stop at the frame edge."""
    rows = np.array([[10, 10, 20, 30, 0.9, 0], [300, 0, 320, 40, 0.6, 2]], np.float32)
    dets = from_rows(rows, scale=2.0, offset=(100, 50), size=(640, 360))
    assert dets.xyxy.tolist() == [[120, 70, 140, 110], [640, 50, 640, 130]]
    assert dets.class_id.tolist() == [0, 2] and dets.confidence.tolist() == pytest.approx([0.9, 0.6])
    assert to_rows(dets).shape == (2, 6) and len(from_rows(None)) == 0


@pytest.mark.timeout(60)
def test_prepared_onnx_batches_and_matches_single(model_path, model_cache):
    """The surgery gives a real batch axis, and a crop's output does not depend on its batch neighbours."""
    import onnxruntime as ort

    from detectors.onnx_prepare import prepare_onnx

    prepared = prepare_onnx(model_path, model_cache, 320, 8)
    sess = ort.InferenceSession(str(prepared), providers=["CPUExecutionProvider"])
    assert isinstance(sess.get_inputs()[0].shape[0], str)
    x = np.random.default_rng(0).random((3, 3, 320, 320), dtype=np.float32)
    batched = sess.run(None, {"images": x})[0]
    single = np.concatenate([sess.run(None, {"images": x[i : i + 1]})[0] for i in range(3)])
    assert batched.shape == (3, 84, 2100)
    np.testing.assert_allclose(batched, single, atol=1e-4)
    assert not list(model_path.parent.glob("*.dynbatch*"))  # nothing written next to the source


@pytest.mark.timeout(10)
def test_homography_places_the_foot_point():
    pts = [(0, 0, 120.0, 30.0), (1, 0, 120.001, 30.0), (1, 1, 120.001, 29.999), (0, 1, 120.0, 29.999)]
    geo = Geolocator(GeoPose(position={"lon": 120.0005, "lat": 29.9995, "crs": "GCJ02"}, homography_points=pts))
    p = geo.locate(320, 240, 640, 480)
    assert p.crs == "GCJ02" and abs(p.lon - 120.0005) < 1e-6 and abs(p.lat - 29.9995) < 1e-6
    assert Geolocator(POSE).locate(1, 2, 640, 480) == POSE.position


@pytest.mark.timeout(10)
def test_health_anomaly_fires_and_clears():
    off = health_anomaly("cam1", POSE, "offline", "no frames for 30 s", 1000.0)
    on = health_anomaly("cam1", POSE, "online", "frames again", 1060.0)
    assert off.kind == on.kind == "camera_offline" and (off.state, on.state) == ("firing", "cleared")
    assert health_anomaly("cam1", POSE, "stalled", "", 1.0) is None


def test_health_events_are_published_for_configured_cameras_only():
    from types import SimpleNamespace

    from ingest.video.health import HealthEvent

    published = []
    cameras = {"cam1": SimpleNamespace(pose=POSE)}
    publish_health(HealthEvent("cam1", "offline", "no frames for 30 s", 1000.0), cameras, published.append)
    publish_health(HealthEvent("gone", "offline", "removed", 1000.0), cameras, published.append)
    publish_health(HealthEvent("cam1", "stalled", "slow", 1001.0), cameras, published.append)
    assert [(a.source_id, a.kind, a.state) for a in published] == [("cam1", "camera_offline", "firing")]
    assert published[0].location == POSE.position  # the case is placed where the camera stands


@pytest.mark.timeout(10)
def test_demo_config_still_validates_and_bad_zone_is_named():
    from gateway.config import load_deployment

    dep = load_deployment(REPO / "config" / "demo.yaml")
    assert dep.detection.model.refresh_s > 0
    from detectors.rules import build_rules

    with pytest.raises(ValueError, match="unknown zone 'nowhere'"):
        build_rules(CameraAnalytics.model_validate({"rules": [{"kind": "crowd", "zone": "nowhere"}]}))


@pytest.mark.timeout(60)
def test_motion_only_without_model_clip_to_anomaly_with_evidence(make_pipeline, tmp_path, caplog):
    """The skeleton's path: a camera clip → motion → Anomaly, with no model file at all; says so loudly."""
    from detectors.replay import replay

    pipe, got = make_pipeline({"motion": {"cooldown_s": 2}, "evidence": {"pre_s": 1, "post_s": 1}},
                              model=tmp_path / "missing.onnx")
    assert pipe.model_status.startswith("motion-only: model file not found")
    pipe.configure_camera("cam-walk", POSE, CameraAnalytics())
    with caplog.at_level("WARNING"):
        pipe.start()
    assert "motion-only" in caplog.text
    replay(pipe, clip("fall_indoor_office_urfd.mp4"), "cam-walk", 30, 5, max_frames=90)
    motions = [a for a in got if a.kind == "motion"]
    assert motions, "no motion anomaly from a walking person"
    a = motions[0]
    assert a.source == "camera" and a.source_id == "cam-walk" and a.location == POSE.position
    assert a.observed_at > 0 and a.details["boxes"]
    assert {e.kind for e in a.evidence} == {"snapshot", "frame", "clip"}
    pipe.stop()  # flushes and writes open clips
    root = tmp_path / "evidence"
    for e in a.evidence:
        assert (root / e.path).stat().st_size > 0, e.path
    import av

    with av.open(str(root / next(e.path for e in a.evidence if e.kind == "clip"))) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 3


@pytest.mark.timeout(30)
def test_bad_frames_are_counted_not_fatal(make_pipeline, tmp_path):
    pipe, got = make_pipeline(model=tmp_path / "none.onnx")
    pipe.configure_camera("c", POSE, CameraAnalytics())
    pipe.start()
    pipe.submit(Frame("c", 0, 0.0, time.time(), np.zeros((10, 10), np.uint8)))  # greyscale: wrong shape
    pipe.submit(Frame("unknown", 0, 0.0, time.time(), np.zeros((10, 10, 3), np.uint8)))
    pipe.submit(Frame("c", 1, 0.1, time.time(), np.zeros((48, 64, 3), np.uint8)))
    assert pipe.drain(5)
    s = pipe.stats()
    assert s["rejected_frames"] == 2 and s["cameras"]["c"]["processed"] == 1


@pytest.mark.timeout(30)
def test_newest_frame_slot_counts_skips(make_pipeline, tmp_path):
    pipe, _ = make_pipeline(model=tmp_path / "none.onnx")
    pipe.configure_camera("c", POSE, CameraAnalytics())
    img = np.zeros((48, 64, 3), np.uint8)
    for i in range(5):  # not started: frames pile into the one slot
        pipe.submit(Frame("c", i, i * 0.2, time.time(), img))
    pipe.start()
    assert pipe.drain(5)
    cam = pipe.stats()["cameras"]["c"]
    assert cam["skipped"] == 4 and cam["processed"] == 1
