"""The done-when checks: the real model on the real clips, replayed at a camera's analysis rate."""
from __future__ import annotations

import pytest

from detectors.config import CameraAnalytics
from detectors.replay import replay
from ingest.config import GeoPose
from tests.detectors.conftest import clip

POSE = GeoPose(position={"lon": 120.1, "lat": 30.2})
pytestmark = pytest.mark.slow


def _frame_index(a, fps: float) -> int:
    return round(a.details["pts"] * fps)


@pytest.mark.timeout(120)
def test_fall_alerts_within_two_seconds(make_pipeline, model_path):
    pipe, got = make_pipeline(model=model_path)
    pipe.configure_camera("office", POSE, CameraAnalytics.model_validate({"rules": [{"kind": "fall"}]}))
    pipe.start()
    replay(pipe, clip("fall_indoor_office_urfd.mp4"), "office", 30, 5)
    falls = [a for a in got if a.kind == "fall"]
    assert falls, "no fall alert"
    first = _frame_index(falls[0], 30)
    # MANIFEST: he falls at frames 93-118 and lies still from 120 to the clip's last frame, 159. Within 2 s of
    # the onset (93 + 60 = 153) is a bound the 160-frame clip can break (a rule that only fires on the lying
    # body at the very end, or never, fails it).
    assert 93 <= first <= 93 + 60, first
    assert falls[0].evidence and falls[0].details["track_id"] is not None


@pytest.mark.timeout(120)
def test_fire_smoke_after_onset_never_before(make_pipeline, model_path):
    pipe, got = make_pipeline(model=model_path)
    pipe.configure_camera("garages", POSE, CameraAnalytics.model_validate({"rules": [{"kind": "fire_smoke"}]}))
    pipe.start()
    replay(pipe, clip("building_fire_smoke_hoodcam.mp4"), "garages", 29.97, 5, max_frames=200)
    fires = [_frame_index(a, 29.97) for a in got if a.kind == "fire_smoke"]
    assert fires, "no fire/smoke alert in frames 0-199"
    assert min(fires) > 84, fires


@pytest.mark.timeout(180)
def test_scooter_fire_alerted_within_five_seconds_of_the_first_smoke(make_pipeline, model_path):
    """The e-scooter news clip (PTZ street camera, 29.97 fps; MANIFEST: white smoke pours from the moving scooter
    from ~frame 15, first flame ~115, a spliced one-frame flash of earlier footage at 144): the classical cue must
    alert by frame 15 + 5 s = 164 — not before the smoke, and on the burning scooter (left of centre, below the
    middle), not on the orange caption text or the lane markings. It used to come at frame 198 (6.1 s)."""
    pipe, got = make_pipeline(model=model_path)
    pipe.configure_camera("street", POSE, CameraAnalytics.model_validate({"rules": [{"kind": "fire_smoke"}]}))
    pipe.start()
    replay(pipe, clip("fire_ev_scooter_street_cctv_ganzhou_news.mp4"), "street", 29.97, 5, max_frames=200)
    fires = [a for a in got if a.kind == "fire_smoke"]
    assert fires, "no fire/smoke alert in frames 0-199"
    first = _frame_index(fires[0], 29.97)
    assert 15 <= first <= 15 + 5 * 29.97, f"first fire alert at frame {first}"
    x1, y1, x2, y2 = fires[0].details["boxes"][0]["box"]
    assert 0.3 <= (x1 + x2) / 2 <= 0.6 and 0.4 <= (y1 + y2) / 2 <= 0.7, fires[0].details["boxes"][0]


@pytest.mark.timeout(180)
def test_standing_group_loiters(make_pipeline, model_path):
    group = {"name": "group", "polygon": [[0.14, 0.38], [0.30, 0.38], [0.30, 0.64], [0.14, 0.64]]}
    # small, distant people in a tight group: the camera switches to native-scale tiles by itself once it sees that
    # its people are small (detectors/camera.py::_small_people, no deployment-wide override any more); 2 detection
    # passes/s is the per-camera rate a user picks for a busy square (at 1/s the group's tracks break up)
    pipe, got = make_pipeline(model=model_path)
    pipe.configure_camera("plaza", POSE, CameraAnalytics.model_validate({
        "detect": {"fps": 2}, "zones": [group], "rules": [{"kind": "loitering", "zone": "group", "dwell_s": 6},
                                    {"kind": "crowd", "zone": "group", "min_count": 3, "dwell_s": 5}]}))
    pipe.start()
    replay(pipe, clip("plaza_pedestrians_720p.avi"), "plaza", 25, 5)
    hits = [a for a in got if a.kind in ("loitering", "crowd")]
    assert hits, "the standing group raised neither loitering nor crowd"
    # the rules only watch "group", so a.zone says nothing; what a user checks is that the people flagged stand
    # in it: the foot point (bottom centre) of every flagged person's box lies inside the zone's polygon
    people = [b["box"] for a in hits for b in a.details["boxes"] if not str(b["label"]).startswith("crowd")]
    assert people, hits
    feet = [((x1 + x2) / 2, y2) for x1, _y1, x2, y2 in people]
    assert all(0.14 <= x <= 0.30 and 0.38 <= y <= 0.64 for x, y in feet), feet


@pytest.mark.timeout(180)
def test_parked_cars_flagged_moving_traffic_not(make_pipeline, model_path):
    """The zone covers the parking row (top, y < 0.15) and the lanes in front of it; only parked cars may fire."""
    zone = {"name": "no_parking", "polygon": [[0.3, 0.0], [1.0, 0.0], [1.0, 0.4], [0.3, 0.4]]}
    pipe, got = make_pipeline(model=model_path)
    pipe.configure_camera("crossing", POSE, CameraAnalytics.model_validate({
        "zones": [zone], "rules": [{"kind": "illegal_parking", "zone": "no_parking", "dwell_s": 15}]}))
    pipe.start()
    replay(pipe, clip("intersection_traffic_cctv.mp4"), "crossing", 30, 5)
    parking = [a for a in got if a.kind == "illegal_parking"]
    assert parking, "no parked car flagged"
    for a in parking:
        box = a.details["boxes"][0]["box"]
        assert box[3] < 0.2, f"a car in the traffic lanes was flagged: {box}"


@pytest.mark.timeout(180)
def test_fall_model_person_down(make_pipeline, model_path):
    """With the Normal/Fall model scripts/setup fetches, the fall rule fuses it with the track: the office fall is
    alerted within 3 s of the man hitting the floor (frames ~108-118), once, as "person down"."""
    from detectors.fetch_models import DEFAULT_DIR, FALL_FILE

    fall = DEFAULT_DIR / FALL_FILE
    assert fall.exists(), f"fall model not fetched: {fall} (scripts/setup, or python -m detectors.fetch_models fall)"
    pipe, got = make_pipeline({"fall_model": {"path": str(fall), "classes": ["Fall"]}}, model=model_path)
    pipe.configure_camera("office", POSE, CameraAnalytics.model_validate({"rules": [{"kind": "fall"}]}))
    pipe.start()
    replay(pipe, clip("fall_indoor_office_urfd.mp4"), "office", 30, 5)
    falls = [a for a in got if a.kind == "fall"]
    assert len(falls) == 1 and falls[0].details["method"] == "fall-model+track"
    assert 108 <= _frame_index(falls[0], 30) <= 118 + 90  # within 3 s of hitting the floor
    assert falls[0].details["held_s"] >= 1.0 and falls[0].details["cause"]["track_id"] == falls[0].details["track_id"]
