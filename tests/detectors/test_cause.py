"""Evidence shows the cause: the real model on a real clip, an intrusion rule on a drawn zone — the anomaly says
which object and why, and its snapshot has that object's box (red) and the zone (yellow) drawn on the frame."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from detectors.config import CameraAnalytics
from detectors.replay import replay
from ingest.config import GeoPose
from tests.detectors.conftest import clip
from tests.support import wait_for

POSE = GeoPose(position={"lon": 120.1, "lat": 30.2})
ZONE = [[0.05, 0.05], [0.95, 0.05], [0.95, 0.95], [0.05, 0.95]]


def _colour_along(img: np.ndarray, pts: list[tuple[int, int]]) -> np.ndarray:
    return np.median(np.array([img[y, x].astype(int) for x, y in pts]), axis=0)  # BGR


@pytest.mark.timeout(120)
def test_intrusion_snapshot_draws_trigger_box_and_zone_and_says_why(make_pipeline, model_path, tmp_path):
    pipe, got = make_pipeline({"evidence": {"pre_s": 1, "post_s": 0}}, model=model_path)
    pipe.configure_camera("office", POSE, CameraAnalytics.model_validate({
        "zones": [{"name": "hall", "polygon": ZONE}], "rules": [{"kind": "intrusion", "zone": "hall", "dwell_s": 1}]}))
    pipe.start()
    replay(pipe, clip("fall_indoor_office_urfd.mp4"), "office", 30, 5, max_frames=90)
    hits = [a for a in got if a.kind == "intrusion"]
    assert hits, "the man by the door raised no intrusion"
    a = hits[0]
    cause = a.details["cause"]
    assert cause["object"] == "person" and cause["track_id"] == a.details["track_id"] and cause["zone"] == "hall"
    assert cause["dwell_s"] >= 1.0 and cause["score"] == a.score
    assert f"person #{a.details['track_id']}" in cause["text"] and "hall" in cause["text"]
    assert a.details["description"] == cause["text"]  # intake makes it the ticket's description
    pipe.stop()
    root = tmp_path / "evidence"
    snap_path = root / next(e.path for e in a.evidence if e.kind == "snapshot")
    raw_path = root / next(e.path for e in a.evidence if e.kind == "frame")
    wait_for(lambda: snap_path.exists() and raw_path.exists(), 10, what="the evidence JPEGs")
    snap, raw = cv2.imread(str(snap_path)), cv2.imread(str(raw_path))
    h, w = snap.shape[:2]
    x1, y1, x2, y2 = (round(v * s) for v, s in zip(a.details["boxes"][0]["box"], (w, h, w, h)))
    top_edge = [(x, y1) for x in range(x1 + 4, x2 - 4, 3)]
    b, g, r = _colour_along(snap, top_edge)
    assert r > 180 and g < 90 and b < 90, (b, g, r)
    assert not np.array_equal(_colour_along(raw, top_edge), _colour_along(snap, top_edge))
    zone_left = [(round(0.05 * w), y) for y in range(round(0.1 * h), round(0.9 * h), 7)]
    rb, rg, rr = _colour_along(raw, zone_left)
    assert not (rr - rb > 100), "the raw frame is yellow there already"
    b, g, r = _colour_along(snap, zone_left)
    assert r > 180 and g > 150 and b < 110 and r - b > 100, (b, g, r)  # yellow, where the frame is grey-white
