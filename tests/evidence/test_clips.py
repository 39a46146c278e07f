"""Evidence clips cut from the camera's own H.264 packets (a real RTSP server streaming real footage), and the
encoded fallback for sources that have no packets."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from detectors.config import EvidenceConfig
from detectors.evidence import ClipWriter, EvidenceRecorder
from ingest.blobs import LocalDirStore
from ingest.config import IngestConfig
from ingest.frame import Frame
from ingest.video import CameraManager
from tests.fixtures.cameras import camera
from tests.fixtures.rtsp import RtspServer
from tests.support import wait_for

PRE_S, POST_S = 2.0, 2.0
GOP_S = 2.0  # the RTSP fixture's keyframe interval (tests/fixtures/media.py)


class _Capturing:
    """The camera's sink: every analysis frame to the recorder, one capture ~3 s in — all on the delivery thread,
    as the pipeline's analysis thread does it."""

    def __init__(self, rec: EvidenceRecorder, store: LocalDirStore):
        self.rec, self.store = rec, store
        self.first: float | None = None
        self.event: Frame | None = None
        self.evidence: list = []
        self.named_clip_existed = False
        self.done = threading.Event()

    def sink(self, frame: Frame) -> None:
        self.rec.record(frame.image, frame.captured_at, frame.packets)
        self.first = self.first or frame.captured_at
        if self.event is None and frame.captured_at - self.first >= PRE_S + GOP_S + 1.5:  # the ring is full
            self.event = frame
            self.evidence = self.rec.capture("a-1", frame.image, frame.captured_at, [((10, 10, 50, 50), "person")])
            clip = next((e for e in self.evidence if e.kind == "clip"), None)
            self.named_clip_existed = clip is not None and self.store.local_path(clip.path) is not None
            self.done.set()


def _decode(path: Path) -> tuple[list[np.ndarray], list[float], tuple[int, int], str]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames, times = [], []
        for f in c.decode(stream):
            frames.append(f.to_ndarray(format="bgr24"))
            times.append(float(f.time))
        return frames, times, (stream.codec_context.width, stream.codec_context.height), stream.codec_context.name


@pytest.mark.timeout(90)
def test_clip_is_the_cameras_h264_remuxed_and_covers_the_event(rtsp_server: RtspServer, tmp_path: Path) -> None:
    store = LocalDirStore(tmp_path / "evidence")
    writer = ClipWriter()
    rec = EvidenceRecorder("main", store, EvidenceConfig(pre_s=PRE_S, post_s=POST_S), writer)
    cap = _Capturing(rec, store)
    manager = CameraManager(IngestConfig.model_validate({"allow_private_sources": True}), tmp_path, cap.sink, None)
    try:
        # the 720p main stream at 25 fps, analysed at 640 px: a remuxed clip keeps the camera's 1280x720
        manager.start([camera("main", rtsp_server.url("plaza720"), analysis={"fps": 5, "width": 640})])
        assert cap.done.wait(30), "no event captured"
        assert cap.named_clip_existed, "the clip named by the anomaly was not in the store when it left"
        wait_for(lambda: writer.written >= 1, 20, what="the clip extended past the event")
    finally:
        manager.stop()
        writer.close(10)
    kinds = {e.kind: e for e in cap.evidence}
    assert set(kinds) == {"snapshot", "frame", "clip"} and rec.remuxed == 1 and rec.failures == 0
    frames, times, size, codec = _decode(store.root / kinds["clip"].path)
    assert (codec, size) == ("h264", (1280, 720))  # the camera's stream, not the 640 px analysis frames re-encoded
    assert PRE_S + POST_S - 0.5 <= times[-1] - times[0] <= PRE_S + POST_S + GOP_S + 1.0  # + up to a GOP before pre_s
    assert all(b > a for a, b in zip(times, times[1:]))
    # The event's own picture is in the clip with pre_s before it and post_s after it.
    event = cap.event.image.astype(np.int16)
    diffs = [float(np.abs(cv2.resize(f, (event.shape[1], event.shape[0]), interpolation=cv2.INTER_AREA)
                          .astype(np.int16) - event).mean()) for f in frames]
    best = int(np.argmin(diffs))
    assert diffs[best] < 4.0, f"no clip frame looks like the event's (closest differs by {diffs[best]:.1f})"
    assert times[best] - times[0] >= PRE_S - 0.3 and times[-1] - times[best] >= POST_S - 0.5


@pytest.mark.timeout(60)
def test_sources_without_packets_get_an_encoded_clip(tmp_path: Path) -> None:
    """Synthetic frames (no packet ring, like MJPEG or WHIP): the clip is encoded from the analysis frames."""
    store = LocalDirStore(tmp_path / "evidence")
    writer = ClipWriter()
    rec = EvidenceRecorder("synthetic", store, EvidenceConfig(pre_s=1, post_s=1), writer)
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (180, 320, 3), dtype=np.uint8) for _ in range(15)]
    t0 = time.time()
    evidence = []
    for i, img in enumerate(images):
        rec.record(img, t0 + i * 0.2)
        if i == 7:
            evidence = rec.capture("a-2", img, t0 + i * 0.2, [])
    rec.flush()
    assert writer.wait_idle(20) and writer.written == 1
    writer.close(5)
    clip = next(e for e in evidence if e.kind == "clip")
    frames, times, size, codec = _decode(store.root / clip.path)
    assert rec.remuxed == 0 and codec == "h264" and size == (320, 180) and len(frames) >= 8
