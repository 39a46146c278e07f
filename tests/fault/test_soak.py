"""The soak's in-suite variant: 40 s of cameras + sensors + alarms + duty workers (the 10-minute run: GRIDWATCH_LONG=1).

Volume in the suite: 20 camera/sensor anomalies per second (~800), a one-key alarm every 2 s (~20), one demo camera
decoded, duty workers signing what is dispatched, sampled every second (40 points for the fits; the first quarter is
warm-up). The 10-minute run: 12,000 anomalies, 300 alarms, two cameras, a sample every 5 s.

Flat means healthy: the intake backlog and the duty pending count must not trend upward, memory must
not grow faster than a warm-up allows, nothing sent may be lost, and every one-key alarm must be
filed within a second.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fault.support import report

REPO = Path(__file__).resolve().parents[2]
LONG = os.environ.get("GRIDWATCH_LONG") == "1"
DURATION = 600 if LONG else 40
RATE_HZ = 20.0  # soak.py's default: camera + sensor anomalies per second

pytestmark = pytest.mark.timeout(DURATION + 180)


def test_soak_is_flat(tmp_path):
    out = tmp_path / "soak.json"
    r = subprocess.run([sys.executable, str(REPO / "tests" / "fault" / "soak.py"), "--duration", str(DURATION),
                        "--sample", "1" if not LONG else "5", "--rate", str(RATE_HZ), "--cameras", "1" if not LONG else "2", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=DURATION + 150, check=False,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.exists(), r.stdout[-2000:] + r.stderr[-3000:]
    res = json.loads(out.read_text(encoding="utf-8"))
    slopes = res["slopes_per_min"]
    report(f"soak {DURATION}s", sent=res["sent"], lost=res["lost"], alarms=res["alarms_filed"],
           slowest_alarm_s=res["slowest_alarm_s"], signed=res["signed"], frames=res["frames_decoded"],
           rss_mb_per_min=slopes["rss_mb"], backlog_per_min=slopes["intake_backlog"],
           duty_pending_per_min=slopes["duty_pending"], threads_per_min=slopes["threads"], rss_last_mb=round(res["last"]["rss_mb"], 1))
    assert res["sent"] >= RATE_HZ * DURATION / 2, "the soak pushed too little load to say anything"
    assert res["lost"] == 0
    assert res["errors"] == [], res["errors"]
    assert res["slowest_alarm_s"] < 1.0
    assert res["max"]["intake_backlog"] < 200, "the intake fell behind"
    assert slopes["intake_backlog"] < 20 and slopes["duty_pending"] < 20, slopes
    assert slopes["threads"] <= 0.5, slopes
    assert slopes["rss_mb"] < (10 if LONG else 30), slopes
