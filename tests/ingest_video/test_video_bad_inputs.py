"""Bad input is reported per camera with a reason and never stops the other cameras."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ingest.video import InvalidSourceError, SourceUnavailableError
from tests.fixtures.cameras import Recorder, camera
from tests.fixtures.media import GarbageServer, SilentServer, footage, free_port, require_tool, short_clip
from tests.fixtures.rtsp import RtspServer


@pytest.fixture
def hostile_peers():
    garbage, silent = GarbageServer(), SilentServer()
    yield garbage, silent
    garbage.close()
    silent.close()


def _error_reason(recorder: Recorder, camera_id: str, timeout_s: float = 15) -> str:
    return recorder.wait_event(camera_id, "error", timeout_s).reason


@pytest.mark.timeout(90)
def test_garbage_silence_and_refusal_are_reported_while_a_good_camera_keeps_delivering(
        rtsp_server: RtspServer, hostile_peers, make_manager, recorder: Recorder, tmp_path: Path) -> None:
    garbage, silent = hostile_peers
    audio_only = tmp_path / "audio_only.m4a"  # the plaza clip's own AAC track: a stream with no video
    subprocess.run([require_tool("ffmpeg"), "-v", "error", "-y", "-i", str(footage("plaza_pedestrians_720p.avi")),
                    "-vn", "-c:a", "copy", str(audio_only)], check=True, timeout=60)
    manager = make_manager()
    manager.start([
        camera("good", rtsp_server.url("campus")),
        camera("garbage-rtsp", f"rtsp://127.0.0.1:{garbage.port}/live"),
        camera("garbage-http", f"http://127.0.0.1:{garbage.port}/video.mjpg"),
        camera("silent", f"rtsp://127.0.0.1:{silent.port}/live"),
        camera("refused", f"rtsp://127.0.0.1:{free_port()}/live"),
        camera("no-video", f"file:{audio_only}"),
        camera("unknown-mount", rtsp_server.url("campus").replace("/campus", "/nope")),
    ])
    recorder.wait_frames("good", 3, 15)
    reasons = {cid: _error_reason(recorder, cid) for cid in
               ("garbage-rtsp", "garbage-http", "silent", "refused", "no-video", "unknown-mount")}
    assert "cannot parse" in reasons["garbage-rtsp"] or "Invalid data" in reasons["garbage-rtsp"], reasons
    assert "cannot connect" in reasons["garbage-http"], reasons
    assert "timed out" in reasons["silent"].lower(), reasons
    assert "refused" in reasons["refused"].lower(), reasons
    assert "no video stream" in reasons["no-video"] and "aac" in reasons["no-video"], reasons
    assert "404" in reasons["unknown-mount"] or "not found" in reasons["unknown-mount"].lower(), reasons
    assert garbage.connections >= 1
    # they go offline one after another; the good camera keeps its rate throughout
    for cid in reasons:
        recorder.wait_event(cid, "offline", 15)
    n = recorder.count("good")
    recorder.wait_frames("good", n + 5, 5)
    status = manager.status()
    assert status["good"].state == "online"
    for cid in reasons:
        assert status[cid].state == "offline", status[cid]
        assert status[cid].reconnects >= 1
        assert "last error" in status[cid].reason


@pytest.mark.timeout(60)
def test_resolution_change_is_reported(make_manager, recorder: Recorder, tmp_path: Path) -> None:
    """An elementary H.264 stream whose SPS changes size mid-stream (a camera reconfigured on the fly)."""
    ffmpeg = require_tool("ffmpeg")
    big = short_clip("intersection_traffic_cctv.mp4", 1.0, tmp_path / "a.mp4", 640, 360, 10)
    small = short_clip("intersection_traffic_cctv.mp4", 1.0, tmp_path / "b.mp4", 320, 180, 10)
    raw = tmp_path / "changing.h264"
    with raw.open("wb") as out:
        for clip in (big, small):
            out.write(subprocess.run([ffmpeg, "-v", "error", "-i", str(clip), "-c", "copy", "-bsf:v", "h264_mp4toannexb",
                                      "-f", "h264", "-"], capture_output=True, check=True, timeout=60).stdout)
    manager = make_manager()
    manager.add(camera("cam", f"file:{raw}", analysis={"fps": 20, "width": 640}))
    event = recorder.wait_event("cam", "resolution_changed", 15)
    assert "640x360 -> 320x180" in event.reason
    recorder.wait_event("cam", "resolution_changed", 15, after=recorder.events.index(event) + 1)  # and back at the loop
    assert manager.status()["cam"].state == "online"


@pytest.mark.timeout(30)
def test_add_refuses_with_readable_reasons(make_manager, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("GRIDWATCH_TEST_ONLY_LOOPBACK_CAMERAS", raising=False)  # production rules (tests/conftest.py)
    strict = make_manager(allow_private_sources=False)
    with pytest.raises(InvalidSourceError, match="loopback"):
        strict.add(camera("a", "rtsp://127.0.0.1:554/live"))
    with pytest.raises(InvalidSourceError, match="metadata"):
        strict.add(camera("b", "http://169.254.169.254/latest/meta-data/"))
    with pytest.raises(InvalidSourceError, match="unknown synthetic scene"):
        strict.add(camera("c", "synthetic:volcano"))
    lenient = make_manager()
    with pytest.raises(InvalidSourceError, match="unsupported source scheme"):
        lenient.add(camera("d", "x-nosuch://8.8.8.8/"))
    with pytest.raises(SourceUnavailableError, match="not found"):
        lenient.add(camera("e", f"file:{tmp_path}/missing.mp4"))
    assert strict.status() == {} and lenient.status() == {}
