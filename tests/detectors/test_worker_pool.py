"""The video path across processes: WorkerPoolVideo with real RTSP footage, the real model, real Redis, SIGKILL.

What a user would check: anomalies from cameras of every worker reach the Redis stream; kill -9 of one worker
brings its cameras back while the other worker's cameras never stop delivering frames; the parent can read every
camera's newest frame from shared memory; nothing is left in /dev/shm after stop; a full crop ring drops the
oldest request and counts it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from alerts.publishing import OutboxFactory
from alerts.streams import StreamKeys
from ingest.anomaly import Anomaly
from detectors.config import DetectionConfig
from detectors.worker_pool import VideoParts, WorkerPoolVideo
from ingest.config import IngestConfig
from ingest.video.shm import Ring, engine_prefix, remove_leftovers, segments
from tests.support import wait_for

REDIS_URL = os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0")
ALL = [[0, 0], [1, 0], [1, 1], [0, 1]]


# -- the rings on their own (real shared memory) -------------------------------------------------------------------
def test_full_ring_drops_the_oldest_and_counts_it_skipped():
    ring = Ring(engine_prefix() + "c0", 2, 8 * 8 * 3, create=True)
    reader = Ring(ring.name)  # a second mapping, as the detector process has
    try:
        pictures = [np.full((8, 8, 3), v, np.uint8) for v in (10, 20, 30)]
        refs = []
        dropped = []
        for p in pictures:
            ref, lost = ring.put(p, hold=True)
            refs.append(ref)
            dropped.append(lost)
        assert dropped[:2] == [None, None]
        assert dropped[2] == refs[0]  # the oldest request gave way ...
        assert ring.skipped == 1 and reader.skipped == 1  # ... and is counted, visibly to other processes
        assert reader.read(refs[0]) is None  # its slot now holds a newer picture: the stale reference reads None
        for ref, p in zip(refs[1:], pictures[1:]):
            image, _seq, _at = reader.read(ref)
            assert (image == p).all()
        ring.release(refs[1])
        _, lost = ring.put(pictures[0], hold=True)
        assert lost is None and ring.skipped == 1  # a released slot is reused without dropping anything
    finally:
        reader.close()
        ring.close()
    assert segments(ring.name) == []


def test_a_picture_larger_than_a_slot_is_refused_not_truncated():
    ring = Ring(engine_prefix() + "f0", 1, 100, create=True)
    try:
        ref, _ = ring.put(np.zeros((10, 10, 3), np.uint8))
        assert ref is None and ring.oversize == 1 and ring.latest() is None
    finally:
        ring.close()


def test_segments_of_a_dead_engine_are_removed_and_live_ones_kept():
    dead_pid = subprocess.Popen(["true"])  # noqa: S607 - a pid that has just exited
    dead_pid.wait()
    leftover = Ring(f"gwv{dead_pid.pid}x{os.urandom(3).hex()}_f0", 1, 64, create=True)
    mine = Ring(engine_prefix() + "f0", 1, 64, create=True)
    try:
        removed = remove_leftovers()
        assert leftover.name in removed
        assert segments(leftover.name) == []
        assert segments(mine.name) == [mine.name]
    finally:
        leftover.close()
        mine.close()


# -- the engine with real cameras --------------------------------------------------------------------------------
def _camera(cid: str, url: str):
    from gateway.config import Camera

    return Camera.model_validate({
        "id": cid, "name": cid, "source": {"url": url, "open_timeout_s": 20, "read_timeout_s": 20},
        "pose": {"position": {"lon": 120.1, "lat": 30.26}}, "analysis": {"fps": 5, "width": 640},
        "zones": [{"name": "all", "polygon": ALL}],
        "rules": [{"kind": "intrusion", "zone": "all"}],
    })


@pytest.fixture
def engine_parts(tmp_path: Path, model_path: Path, model_cache: Path) -> VideoParts:
    detection = DetectionConfig.model_validate(
        {"model": {"path": str(model_path), "imgsz": 320, "cache_dir": str(model_cache)}})
    return VideoParts(IngestConfig(allow_private_sources=True), detection, tmp_path, tmp_path / "evidence")


def _anomaly_sources(redis_client, stream: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for _id, fields in redis_client.xrange(stream):
        a = Anomaly.from_stream(fields)
        out.setdefault(a.source_id, set()).add(a.kind)
    return out


def _frame_seq(engine: WorkerPoolVideo, cid: str) -> int:
    frame = engine.latest_frame(cid)
    return frame.seq if frame is not None else -1


def test_two_workers_publish_anomalies_survive_a_sigkill_and_leave_no_shared_memory(
        engine_parts, rtsp_server, redis_client, stream_prefix):
    mounts = ["campus", "traffic"]
    cams = [_camera(f"cam{i}", rtsp_server.url(mounts[i % 2])) for i in range(4)]
    engine = WorkerPoolVideo(engine_parts, 2, OutboxFactory(REDIS_URL, stream_prefix))
    prefix = engine.prefix
    stream = StreamKeys(stream_prefix).anomalies
    try:
        engine.start(cams)
        assert engine.model_status.startswith("yolov8n_int8.onnx loaded"), engine.model_status
        owners = {cid: st["worker"] for cid, st in engine.camera_status().items()}
        assert sorted(owners.values()) == [0, 0, 1, 1]  # two cameras each
        wait_for(lambda: all(st["state"] == "online" for st in engine.camera_status().values()), 60,
                 what="every camera online")
        # the parent reads each camera's newest analysis frame out of shared memory
        frame = wait_for(lambda: engine.latest_frame("cam0"), 20, what="a frame of cam0")
        assert frame.image.shape == (360, 640, 3) and frame.image.dtype == np.uint8 and frame.image.std() > 5
        # people on the footage → the real model → intrusion anomalies on the Redis stream, from both workers
        wait_for(lambda: {c for c, kinds in _anomaly_sources(redis_client, stream).items() if "intrusion" in kinds}
                 >= {"cam0", "cam1"}, 90, what="intrusion anomalies from cameras of both workers")
        wait_for(lambda: engine.stats()["detector"].get("images_total", 0) > 0, 5,
                 what="the detector process's counters (reported once a second) showing its batches")

        victim = 0
        victims = sorted(c for c, w in owners.items() if w == victim)
        others = sorted(c for c, w in owners.items() if w != victim)
        pid = engine.pids()[f"video-worker-{victim}"]
        seq_before = {c: _frame_seq(engine, c) for c in victims}
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: all(engine.camera_status()[c]["state"] == "offline" for c in victims), 10,
                 what="the killed worker's cameras reported down")
        assert "video worker 0 is down" in engine.camera_status()[victims[0]]["reason"]

        # while the victim restarts, the other worker's cameras keep delivering: their newest frame keeps changing
        last = {c: (_frame_seq(engine, c), time.monotonic()) for c in others}
        worst_gap = 0.0

        def recovered() -> bool:
            nonlocal worst_gap
            now = time.monotonic()
            for c in others:
                seq = _frame_seq(engine, c)
                if seq != last[c][0]:
                    last[c] = (seq, now)
                worst_gap = max(worst_gap, now - last[c][1])
            new_pid = engine.pids()[f"video-worker-{victim}"]
            st = engine.camera_status()
            return (new_pid not in (None, pid) and all(st[c]["state"] == "online" for c in victims)
                    and all(_frame_seq(engine, c) != seq_before[c] for c in victims))

        wait_for(recovered, 90, interval=0.1, what="the killed worker's cameras back with new frames")
        assert worst_gap < 3.0, f"the other worker's cameras stalled {worst_gap:.1f}s while its neighbour died"
        assert all(engine.camera_status()[c]["state"] == "online" for c in others)
        assert engine.stats()["workers"][victim]["restarts"] == 1
        assert engine.stats()["workers"][1 - victim]["restarts"] == 0
        assert len(segments(prefix)) == 2 * len(cams)  # the rings outlived the worker (the parent owns them)
    finally:
        engine.stop()
    assert segments(prefix) == [], "shared memory left after stop"
    assert all(p is None for p in engine.pids().values())


def test_cameras_added_and_removed_at_runtime_get_and_lose_their_rings(engine_parts, rtsp_server, stream_prefix):
    engine = WorkerPoolVideo(engine_parts, 2, OutboxFactory(REDIS_URL, stream_prefix))
    try:
        engine.start([])
        engine.add_camera(_camera("late", rtsp_server.url("campus")))
        assert len(segments(engine.prefix)) == 2
        wait_for(lambda: engine.latest_frame("late"), 60, what="a frame of the camera added at runtime")
        with pytest.raises(ValueError):
            engine.add_camera(_camera("late", rtsp_server.url("traffic")))
        engine.remove_camera("late")
        assert segments(engine.prefix) == []
        assert "late" not in engine.camera_status() and engine.latest_frame("late") is None
    finally:
        engine.stop()


def test_a_killed_detector_process_is_restarted_and_detections_resume(engine_parts, rtsp_server, stream_prefix):
    from detectors.engine import VideoEngine

    engine = WorkerPoolVideo(engine_parts, 1, OutboxFactory(REDIS_URL, stream_prefix))
    assert isinstance(engine, VideoEngine)
    try:
        engine.start([_camera("cam", rtsp_server.url("campus"))])
        wait_for(lambda: engine.stats()["detector"].get("images_total", 0) > 0, 60, what="first detections")
        old = engine.pids()["detector"]
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: engine.pids()["detector"] not in (None, old), 30, what="a new detector process")
        seq = _frame_seq(engine, "cam")
        # the camera kept running without a detector, and the new detector process gets its crops again
        wait_for(lambda: _frame_seq(engine, "cam") > seq, 10, what="frames while the detector restarts")
        wait_for(lambda: engine.stats()["detector"].get("images_total", 0) > 0
                 and engine.stats()["detector"]["pid"] != old, 60, what="detections from the new detector process")
        assert engine.stats()["detector"]["restarts"] == 1
        assert engine.camera_status()["cam"]["state"] == "online"
    finally:
        engine.stop()
    assert segments(engine.prefix) == []
