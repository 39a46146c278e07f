"""Real footage over a real RTSP server (GStreamer): decoding, pacing, reconnects, health, runtime attach."""
from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from ingest.video import CameraExistsError, UnknownCameraError, probe
from tests.fixtures.cameras import Recorder, camera
from tests.fixtures.rtsp import GB28181_MOUNT, RtspServer


@pytest.mark.timeout(60)
def test_reads_real_footage_over_rtsp_tcp_and_udp(rtsp_server: RtspServer, make_manager, recorder: Recorder) -> None:
    manager = make_manager()
    manager.start([
        camera("tcp", rtsp_server.url("campus"), transport="tcp"),
        camera("udp", rtsp_server.url("traffic"), transport="udp", analysis={"fps": 5, "width": 320}),
    ])
    tcp = recorder.wait_frames("tcp", 12, 15)
    udp = recorder.wait_frames("udp", 12, 15)
    assert {(f.width, f.height) for f in tcp} == {(640, 360)}
    assert {(f.width, f.height) for f in udp} == {(320, 180)}  # scaled to the analysis width
    seqs = [f.seq for f in tcp]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(b.pts > a.pts for a, b in zip(tcp, tcp[1:]))
    # real pictures, not blank ones: the campus scene has texture everywhere
    assert float(np.std(cv2.cvtColor(tcp[-1].image, cv2.COLOR_BGR2GRAY))) > 20
    status = manager.status()
    for cid in ("tcp", "udp"):
        st = status[cid]
        assert st.state == "online", st
        assert (st.codec, st.kind, st.resolution) == ("h264", "rtsp", (640, 360))
        assert 11 <= st.camera_fps <= 19, st  # the camera sends 15 fps
        assert 3.5 <= st.process_fps <= 6.5, st  # the analysis rate is 5 fps
        assert st.skipped_fps == 0
        assert "127.0.0.1" in st.source
        assert json.loads(json.dumps(st.to_dict()))["resolution"] == [640, 360]
    # frames are spaced at the analysis rate, not the camera rate
    span = tcp[-1].captured_at - tcp[0].captured_at
    assert 3.5 <= (len(tcp) - 1) / span <= 6.5
    assert [e.kind for e in recorder.events if e.camera_id == "tcp"][0] == "online"


@pytest.mark.timeout(60)
def test_latest_is_full_resolution_while_analysis_is_scaled(rtsp_server: RtspServer, make_manager,
                                                            recorder: Recorder) -> None:
    manager = make_manager()
    manager.start([camera("main", rtsp_server.url("plaza720"), analysis={"fps": 4, "width": 640})])
    frames = recorder.wait_frames("main", 3, 15)
    assert (frames[-1].width, frames[-1].height) == (640, 360)
    latest = manager.latest("main")
    assert latest is not None and (latest.width, latest.height) == (1280, 720)
    assert manager.latest("nope") is None
    assert manager.status()["main"].camera_fps == pytest.approx(25, abs=6)


@pytest.mark.timeout(60)
def test_keyframes_only_mode_decodes_only_keyframes(rtsp_server: RtspServer, make_manager, recorder: Recorder) -> None:
    manager = make_manager()
    manager.add(camera("kf", rtsp_server.url("campus"), analysis={"fps": 10, "keyframes_only": True}))
    recorder.wait_frames("kf", 3, 15)  # the GOP is 2 s: three keyframes take ~4 s
    status = manager.status()["kf"]
    assert status.decoded <= status.frames + 1  # every decoded picture was a keyframe and was analysed
    assert status.camera_fps <= 1.0


@pytest.mark.timeout(90)
def test_reconnects_after_the_server_dies_and_reports_offline_then_online(
        rtsp_server: RtspServer, make_manager, recorder: Recorder) -> None:
    manager = make_manager()
    manager.start([camera("cam", rtsp_server.url("campus")), camera("other", "synthetic:walker")])
    recorder.wait_frames("cam", 3, 15)
    before = len(recorder.events)
    rtsp_server.kill()  # power cut: no TEARDOWN, the TCP connection just dies (mid-GOP)
    offline = recorder.wait_event("cam", "offline", 15, after=before)
    kinds = [e.kind for e in recorder.events[before:] if e.camera_id == "cam"]
    assert kinds.index("error") < kinds.index("offline")  # the failed reconnects are reported with a reason
    assert manager.status()["cam"].state == "offline"
    assert "no frame" in offline.reason
    other_before = recorder.count("other")
    after_offline = len(recorder.events)
    rtsp_server.restart()
    online = recorder.wait_event("cam", "online", 20, after=after_offline)
    assert online.at > offline.at
    count = recorder.count("cam")
    recorder.wait_frames("cam", count + 3, 10)
    status = manager.status()["cam"]
    assert status.state == "online" and status.reconnects >= 1
    assert recorder.count("other") > other_before  # the other camera never stopped


@pytest.mark.timeout(60)
def test_camera_attached_at_runtime_delivers_within_5s(rtsp_server: RtspServer, make_manager,
                                                       recorder: Recorder) -> None:
    manager = make_manager()
    manager.start([camera("first", "synthetic:crowd")])
    recorder.wait_frames("first", 2, 10)
    t0 = time.monotonic()
    manager.add(camera("late", rtsp_server.url("traffic")))
    recorder.wait_frames("late", 1, 5)
    assert recorder.first_at["late"] - t0 < 5.0
    with pytest.raises(CameraExistsError):
        manager.add(camera("late", rtsp_server.url("traffic")))
    # analysis settings change in place (no reconnect) ...
    manager.update(camera("late", rtsp_server.url("traffic"), analysis={"fps": 2, "width": 320}))
    n = recorder.count("late")
    frames = recorder.wait_frames("late", n + 2, 10)
    assert (frames[-1].width, frames[-1].height) == (320, 180)
    assert manager.status()["late"].reconnects == 0
    # ... a new source URL reconnects
    manager.update(camera("late", rtsp_server.url("campus")))
    n = recorder.count("late")
    recorder.wait_frames("late", n + 2, 10)
    manager.remove("late")
    assert "late" not in manager.status()
    with pytest.raises(UnknownCameraError):
        manager.remove("late")


@pytest.mark.timeout(60)
def test_gb28181_camera_through_a_media_server_is_plain_rtsp(rtsp_server: RtspServer, make_manager,
                                                             recorder: Recorder) -> None:
    """WVP/ZLMediaKit re-publish a GB/T 28181 device as rtsp://server/rtp/<device>_<channel>."""
    manager = make_manager()
    manager.add(camera("gb-34020000001320000001", rtsp_server.url(GB28181_MOUNT)))
    frames = recorder.wait_frames("gb-34020000001320000001", 3, 15)
    assert frames[-1].width == 640
    assert manager.status()["gb-34020000001320000001"].codec == "h264"


@pytest.mark.timeout(60)
def test_probe_describes_the_stream_and_returns_a_snapshot(rtsp_server: RtspServer) -> None:
    result = probe(rtsp_server.url("campus"), allow_private=True, timeout_s=5)
    assert (result.codec, result.width, result.height) == ("h264", 640, 360)
    assert result.fps == pytest.approx(15, abs=0.5)
    assert result.keyframe_interval == 30  # the fixture encodes a 2 s GOP
    assert result.keyframe_interval_s == pytest.approx(2.0, abs=0.1)
    assert result.first_frame_s is not None and result.first_frame_s < 2.0
    image = cv2.imdecode(np.frombuffer(result.snapshot_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (360, 640, 3)
