"""HTTP cameras with real footage: MJPEG multipart, JPEG snapshot polling, HLS."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.video import probe
from ingest.video.http_source import MjpegParser
from tests.fixtures.cameras import Recorder, camera
from tests.fixtures.media import (footage, http_server, jpeg_frames, make_hls, mjpeg_handler, static_handler,
                                  transcoded)


@pytest.fixture(scope="module")
def campus_jpegs() -> list[bytes]:
    return jpeg_frames(footage("campus_pedestrians_pets2009.avi"), limit=40, width=480)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("send_length", [True, False], ids=["content-length", "boundary-only"])
def test_mjpeg_camera(campus_jpegs: list[bytes], send_length: bool, make_manager, recorder: Recorder) -> None:
    with http_server(mjpeg_handler(campus_jpegs, fps=10, send_length=send_length)) as base:
        manager = make_manager()
        manager.add(camera("mjpeg", f"{base}/video.mjpg", analysis={"fps": 5, "width": 320}))
        frames = recorder.wait_frames("mjpeg", 6, 15)
        assert (frames[-1].width, frames[-1].height) == (320, 240)
        original = cv2.imdecode(np.frombuffer(campus_jpegs[0], np.uint8), cv2.IMREAD_COLOR)
        assert original.shape == (360, 480, 3)
        status = manager.status()["mjpeg"]
        assert (status.kind, status.codec, status.resolution) == ("mjpeg", "mjpeg", (480, 360))
        recorder.wait(lambda: manager.status()["mjpeg"].camera_fps >= 7, 10, "MJPEG camera fps near 10")
        latest = manager.latest("mjpeg")
        assert latest is not None and latest.image.shape == (360, 480, 3)


@pytest.mark.timeout(60)
def test_snapshot_polling_camera(campus_jpegs: list[bytes], make_manager, recorder: Recorder) -> None:
    with http_server(mjpeg_handler(campus_jpegs)) as base:
        manager = make_manager()
        manager.add(camera("snap", f"{base}/snapshot.jpg", snapshot_interval_s=0.25))
        frames = recorder.wait_frames("snap", 4, 10)
        assert frames[-1].width == 480
        assert manager.status()["snap"].kind == "snapshot"
        result = probe(f"{base}/snapshot.jpg", allow_private=True, timeout_s=5)
        assert (result.kind, result.width, result.height) == ("snapshot", 480, 360)


@pytest.mark.timeout(90)
def test_hls_camera(tmp_path: Path, make_manager, recorder: Recorder) -> None:
    clip = transcoded("intersection_traffic_cctv.mp4", 640, 360, 15)
    make_hls(clip, tmp_path / "hls", seconds=12)
    with http_server(static_handler(tmp_path / "hls")) as base:
        manager = make_manager()
        manager.add(camera("hls", f"{base}/index.m3u8", analysis={"fps": 5}))
        frames = recorder.wait_frames("hls", 8, 20)
        assert (frames[-1].width, frames[-1].height) == (640, 360)
        # a VOD playlist is paced like a live camera, not decoded as fast as possible
        span = frames[-1].captured_at - frames[0].captured_at
        assert (len(frames) - 1) / span <= 6.5
        status = manager.status()["hls"]
        assert (status.kind, status.codec) == ("hls", "h264")
        assert status.camera_fps <= 20


def _multipart(bodies: list[bytes], boundary: str, with_length: bool) -> bytes:
    out = b""
    for body in bodies:
        out += f"--{boundary}\r\nContent-Type: image/jpeg\r\n".encode()
        if with_length:
            out += f"Content-Length: {len(body)}\r\n".encode()
        out += b"\r\n" + body + b"\r\n"
    return out + f"--{boundary}".encode()


@settings(max_examples=60, deadline=None)
@given(
    bodies=st.lists(st.binary(min_size=1, max_size=300).map(lambda b: b"\xff\xd8" + b.replace(b"--gw", b"") + b"\xff\xd9"),
                    min_size=1, max_size=5),
    cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=40),
    with_length=st.booleans(),
    header_dashes=st.booleans(),
)
def test_mjpeg_parser_handles_any_chunking(bodies: list[bytes], cuts: list[int], with_length: bool,
                                           header_dashes: bool) -> None:
    data = _multipart(bodies, "gw", with_length)
    parser = MjpegParser("--gw" if header_dashes else "gw")
    got: list[bytes] = []
    pos = 0
    for cut in cuts:
        got += parser.feed(data[pos : pos + cut])
        pos += cut
    got += parser.feed(data[pos:])
    assert got == bodies


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "boundary-only"])
def test_mjpeg_parser_keeps_a_body_that_holds_dashes(with_length: bool) -> None:
    """Entropy-coded JPEG data can hold ``\r\n--``: only the declared boundary ends a part (FFmpeg's
    mpjpeg demuxer, fed the same bytes, cuts such a body in two — the reason the parser is ours)."""
    bodies = [b"\xff\xd8AAAA\r\n--zzBBBB\xff\xd9", b"\xff\xd8CCCC\xff\xd9"]
    parser = MjpegParser("gw")
    assert parser.feed(_multipart(bodies, "gw", with_length)) == bodies
