"""Corrupt, truncated and wrong-codec video through ``POST /api/v1/cameras/probe`` and through ``CameraManager``.

The files are made by ffmpeg from the shared footage into the test's temp dir (``file:`` sources,
``ingest.allow_private_sources`` on, as an integrator's test rig would have it):

==================  ==================================================================  ==================
file                what it is                                                          expected
==================  ==================================================================  ==================
good.mp4            3 s of the campus clip, H.264 (reference)                           probe 200, online
truncated.mp4       the first 40 % of an MP4 whose index (moov) is at the end           422 / error
headless.h264       raw H.264 with its first 30 % cut off (no SPS/PPS, no keyframe)    422 / error
corrupt.h264        raw H.264 with one byte in 40 overwritten after the first 2 kB      no 5xx / no crash
audio_only.m4a      the plaza clip's AAC track only (a stream with no video)            422 / error
empty.mp4           zero bytes                                                          422 / error
noise.mp4           64 kB of random bytes                                               422 / error
==================  ==================================================================  ==================

Probe: never a 5xx, an answer within its timeout, a 422 names the reason. CameraManager: every bad
camera reports an ``error`` health event with a reason and ends ``offline``/``error`` while a good
camera on the same manager keeps delivering frames.
"""
from __future__ import annotations

import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.fault.support import REPO, report

pytestmark = pytest.mark.timeout(150)

FOOTAGE = REPO.parent / "shared" / "footage"
CERTAINLY_BAD = ("truncated.mp4", "headless.h264", "audio_only.m4a", "empty.mp4", "noise.mp4")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    campus, plaza = FOOTAGE / "campus_pedestrians_pets2009.avi", FOOTAGE / "plaza_pedestrians_720p.avi"
    if not campus.exists() or not plaza.exists():
        pytest.skip(f"shared footage absent: {FOOTAGE}")
    d = tmp_path_factory.mktemp("badvideo")
    h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p"]
    _ffmpeg("-i", str(campus), "-t", "3", "-an", *h264, str(d / "good.mp4"))
    _ffmpeg("-i", str(campus), "-t", "3", "-an", *h264, "-f", "h264", str(d / "raw.h264"))
    whole = (d / "good.mp4").read_bytes()
    assert whole.find(b"moov") > whole.find(b"mdat"), "expected the index at the end (no faststart)"
    (d / "truncated.mp4").write_bytes(whole[: int(len(whole) * 0.4)])
    raw = (d / "raw.h264").read_bytes()
    (d / "headless.h264").write_bytes(raw[int(len(raw) * 0.3):])
    # Strip every remaining IDR/SPS/PPS NAL so nothing can start decoding: a stream joined without a keyframe.
    headless = bytearray((d / "headless.h264").read_bytes())
    for marker in (b"\x00\x00\x01\x65", b"\x00\x00\x01\x67", b"\x00\x00\x01\x68"):
        headless = headless.replace(marker, b"\x00\x00\x01\x01")
    (d / "headless.h264").write_bytes(bytes(headless))
    rng = random.Random(9)
    corrupt = bytearray(raw)
    for i in range(2048, len(corrupt), 40):
        corrupt[i] = rng.randrange(256)
    (d / "corrupt.h264").write_bytes(bytes(corrupt))
    _ffmpeg("-i", str(plaza), "-t", "3", "-vn", "-c:a", "copy", str(d / "audio_only.m4a"))
    (d / "empty.mp4").write_bytes(b"")
    (d / "noise.mp4").write_bytes(rng.randbytes(65536))
    return {p.name: p for p in d.iterdir() if p.name != "raw.h264"}


@pytest.fixture
def probe_client(tmp_path, monkeypatch):
    """The gateway app on the real test runtime (tests/gateway helpers) with private sources allowed."""
    import redis
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gw_support import REDIS_URL, build_test_runtime, drop_keys, make_deployment

    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics"))
    dep = make_deployment(tmp_path)
    dep.ingest.allow_private_sources = True
    dep.detection.model.path = None
    rt = build_test_runtime(dep)
    try:
        with TestClient(create_app(rt)) as client:
            yield client
    finally:
        rt.stop()
        r = redis.Redis.from_url(REDIS_URL)
        drop_keys(r, dep.services.stream_prefix)
        r.close()


def test_probe_answers_bad_video_with_a_clear_4xx(bad_files, probe_client):
    from gw_support import PASSWORDS, bearer, login

    headers = bearer(login(probe_client, "admin", PASSWORDS["admin"]))
    outcomes: dict[str, str] = {}
    for name in ["good.mp4", *CERTAINLY_BAD, "corrupt.h264"]:
        started = time.monotonic()
        r = probe_client.post("/api/v1/cameras/probe", json={"url": f"file:{bad_files[name]}", "timeout_s": 4},
                              headers=headers)
        took = time.monotonic() - started
        assert r.status_code < 500, f"{name}: {r.status_code} {r.text[:300]}"
        assert took < 4 + 5 + 2, f"{name}: the probe took {took:.1f}s"
        detail = r.json().get("detail")
        outcomes[name] = f"{r.status_code} {detail if r.status_code != 200 else r.json()['detail'].get('codec')} ({took:.1f}s)"
        if name == "good.mp4":
            assert r.status_code == 200 and r.json()["snapshot"], r.text[:300]
        elif name in CERTAINLY_BAD:
            assert r.status_code == 422, f"{name}: {r.status_code} {r.text[:300]}"
            assert isinstance(detail, str) and "failed: " in detail and len(detail.split("failed: ", 1)[1]) > 5, detail
    report("bad video through POST /cameras/probe", **{k.replace(".", "_"): v for k, v in outcomes.items()})


def test_camera_manager_reports_bad_video_and_keeps_the_good_camera(bad_files, tmp_path):
    from ingest.config import IngestConfig
    from ingest.video import CameraManager
    from tests.fixtures.cameras import Recorder, camera

    recorder = Recorder()
    manager = CameraManager(IngestConfig.model_validate({"allow_private_sources": True}), tmp_path, recorder.sink,
                            recorder.on_health)
    bad = [*CERTAINLY_BAD, "corrupt.h264"]
    ids = {name: "bad-" + name.replace(".", "-").replace("_", "-") for name in bad}
    try:
        manager.start([camera("good", f"file:{bad_files['good.mp4']}"),
                       *[camera(ids[name], f"file:{bad_files[name]}") for name in bad]])
        recorder.wait_frames("good", 5, 20)
        reasons: dict[str, str] = {}
        for name in CERTAINLY_BAD:
            event = recorder.wait_event(ids[name], "error", 20)
            reasons[name] = event.reason
            assert event.reason, name
        # the corrupt stream decodes with errors or fails; either way it is reported, not crashed on
        status = manager.status()
        corrupt = status[ids["corrupt.h264"]]
        n = recorder.count("good")
        recorder.wait_frames("good", n + 5, 10)
        status = manager.status()
        assert status["good"].state == "online", status["good"]
        for name in CERTAINLY_BAD:
            assert status[ids[name]].state in ("offline", "error"), (name, status[ids[name]])
            assert status[ids[name]].frames == 0, (name, status[ids[name]])
        report("bad video through CameraManager", good_frames=recorder.count("good"),
               corrupt_h264=f"{corrupt.state}/{corrupt.decoded} decoded/{corrupt.reason[:60]!r}",
               **{k.replace(".", "_"): repr(v[:80]) for k, v in reasons.items()})
    finally:
        manager.stop()
