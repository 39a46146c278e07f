"""Smoke run of benchmarks/bench_clips.py: both ways ran on the real footage, the remuxed clip is the camera's."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOOTAGE = REPO.parent / "shared" / "footage" / "intersection_traffic_cctv.mp4"


@pytest.mark.timeout(120)
def test_bench_clips_prints_both_ways_with_the_baseline() -> None:
    if not FOOTAGE.exists():
        pytest.skip(f"{FOOTAGE} is absent (see ../shared/footage/MANIFEST.md)")
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_clips.py"), "--clips", "2", "--pre", "2",
                           "--post", "2", "--footage", FOOTAGE.name], cwd=REPO, capture_output=True, text=True,
                          timeout=110, check=False, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = {m[0]: m for m in re.findall(r"^\| \S+ \| (encode \(baseline\)|remux \(camera packets\)) \| (\d+x\d+) \| "
                                        r"[\d.]+ \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", proc.stdout, re.M)}
    assert set(rows) == {"encode (baseline)", "remux (camera packets)"}, proc.stdout
    enc, rem = rows["encode (baseline)"], rows["remux (camera packets)"]
    assert rem[1] == "640x480" and float(rem[4]) > 0 and float(enc[4]) > 0  # the camera's size; both wrote a clip
    assert float(rem[2]) < float(enc[2]), proc.stdout  # remuxing is cheaper than encoding, by a wide margin
