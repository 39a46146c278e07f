"""The worker-pool engine cuts evidence clips from the camera's packets too: the packet ring lives where the
decoder lives (the worker process), beside that worker's pipeline; nothing of it crosses shared memory."""
from __future__ import annotations

import os
from pathlib import Path

import av
import pytest

from alerts.publishing import OutboxFactory
from alerts.streams import StreamKeys
from ingest.anomaly import Anomaly
from detectors.config import DetectionConfig
from detectors.worker_pool import VideoParts, WorkerPoolVideo
from ingest.blobs import LocalDirStore
from ingest.config import IngestConfig
from tests.support import wait_for

REDIS_URL = os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")
pytestmark = pytest.mark.timeout(240)


def _second_clip(redis_client, stream: str) -> str | None:
    """The clip of the camera's second anomaly: the first may come before the ring holds a keyframe (then its clip
    is encoded, as for a source without packets); by the second (cooldown_s later) the ring is full."""
    clips = [e.path for _id, fields in redis_client.xrange(stream) for e in Anomaly.from_stream(fields).evidence
             if e.kind == "clip"]
    return clips[1] if len(clips) > 1 else None


def test_worker_pool_clips_are_the_cameras_packets(tmp_path: Path, rtsp_server, redis_client, stream_prefix):
    from gateway.config import Camera

    store = LocalDirStore(tmp_path / "evidence")
    # motion-only (no model needed): the motion rule's anomaly carries the evidence
    detection = DetectionConfig.model_validate({"model": {"path": None}, "motion": {"cooldown_s": 4},
                                                "evidence": {"pre_s": 1, "post_s": 1}})
    parts = VideoParts(IngestConfig(allow_private_sources=True), detection, tmp_path, store)
    cam = Camera.model_validate({
        "id": "pool-main", "name": "main", "source": {"url": rtsp_server.url("plaza720"), "open_timeout_s": 20,
                                                      "read_timeout_s": 20},
        "pose": {"position": {"lon": 120.1, "lat": 30.26}}, "analysis": {"fps": 5, "width": 640}})
    engine = WorkerPoolVideo(parts, 1, OutboxFactory(REDIS_URL, stream_prefix))
    try:
        engine.start([cam])
        key = wait_for(lambda: _second_clip(redis_client, StreamKeys(stream_prefix).anomalies), 150, what="a second clip")
        # the clip named exists at once (its part up to the event); the whole one replaces it ~post_s later
        assert store.local_path(key) is not None
        wait_for(lambda: av.open(str(store.root / key)).duration / 1e6 >= 1.9, 30, interval=0.3,
                 what="the clip extended to post_s after the event")
    finally:
        engine.stop()
    with av.open(str(store.root / key)) as c:
        ctx = c.streams.video[0].codec_context
        frames = sum(1 for _ in c.decode(video=0))
        # the camera's 1280x720 at 25 fps — not the worker's 640 px analysis frames at 5 fps, re-encoded
        assert (ctx.name, ctx.width, ctx.height) == ("h264", 1280, 720) and frames >= 45
