"""The accuracy harness in its short (CI) form: real model, Normal/Fall model and clips, one configuration, truth from
the footage MANIFEST — a fire, a fall and two incident-free clips (red cars, a busy street)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks import accuracy  # noqa: E402


def test_wilson_interval_matches_the_textbook_values():
    assert accuracy.wilson(0, 0) is None
    assert accuracy.wilson(0, 1) == (0.0, 0.793)
    assert accuracy.wilson(5, 5) == (0.566, 1.0)
    assert accuracy.wilson(8, 10) == (0.49, 0.943)


def test_poisson_interval_matches_the_textbook_values():
    assert accuracy.poisson_rate_ci(0, 0) is None
    assert accuracy.poisson_rate_ci(0, 1.0) == (0.0, 3.69)  # "rule of three": none seen in an hour
    assert accuracy.poisson_rate_ci(2, 1.0) == (0.24, 7.22)
    assert accuracy.poisson_rate_ci(0, 0.5) == (0.0, 7.38)  # the same counts over half the time: twice the rate


def test_one_alert_credits_one_event_when_truth_windows_overlap():
    cuts = accuracy.Clip("cuts.mp4", 10, 400, {"tamper": [accuracy.Event(100, 250), accuracy.Event(200, 350)]})
    row = accuracy.score_frames(cuts, {"tamper": [220, 380]})["tamper"]
    assert (row["events"], row["detected"], row["true"], row["false"]) == (2, 1, 1, 1)  # 220 is the second cut's
    assert row["time_to_alert_s"] == [2.0]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_short_form_fire_and_fall_caught_in_time_no_false_alarm(tmp_path):
    missing = [c for c in accuracy.SHORT if not (accuracy.FOOTAGE / c).exists()]
    if missing or not (accuracy.SHARED / "models" / "yolov8n_int8.onnx").exists():
        pytest.skip(f"shared footage/model absent: {missing or 'yolov8n_int8.onnx'}")
    out = tmp_path / "short.json"
    result = accuracy.main(["--short", "--json", str(out)])
    assert json.loads(out.read_text())["rules"] == json.loads(json.dumps(result["rules"]))
    assert {c["clip"] for c in result["clips"]} == set(accuracy.SHORT)
    assert all(c["settings"] == {} or c["clip"].startswith("house_fire") for c in result["clips"])  # one configuration
    rows = {r["rule"]: r for r in result["rules"]}
    fire, fall = rows["fire_smoke"], rows["fall"]
    assert (fire["events"], fire["detected"], fire["false"]) == (1, 1, 0), fire
    assert fire["time_to_alert_s"][0] <= 5.0, fire
    assert (fall["events"], fall["detected"], fall["false"]) == (1, 1, 0), fall
    assert fall["time_to_alert_s"][0] <= 3.0, fall  # from hitting the floor
    assert rows["crowd"]["alerts"] == 0 and rows["tamper"]["alerts"] == 0
    assert fire["precision_ci"] == accuracy.wilson(fire["true"], fire["alerts"])
