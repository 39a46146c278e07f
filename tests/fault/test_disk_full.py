"""The disk fills up: evidence files cannot be written, the SQLite store cannot grow.

A real full filesystem: a 2 MiB tmpfs mounted in the test's temp dir (needs root; skipped otherwise),
filled with a file until ENOSPC. The alarm itself must never be lost because its pictures could not
be saved; what the anomaly names as evidence must exist; the intake must leave what it could not
commit pending and file it once space is freed.
"""
from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

pytestmark = pytest.mark.timeout(90)


class Tmpfs:
    def __init__(self, path: Path, size: str = "2m"):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True, text=True, timeout=20, check=False)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
        self.filler = path / "filler.bin"

    def fill(self) -> None:
        with self.filler.open("ab", buffering=0) as f:  # unbuffered: nothing left to flush (and fail) on close
            try:
                while True:
                    f.write(b"\0" * 16384)
            except OSError:
                pass

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def umount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=20, check=False)


@pytest.fixture
def tmpfs(tmp_path: Path, request) -> Iterator[Tmpfs]:  # noqa: ANN001
    # 2 MiB for evidence; the store test needs room for its WAL (up to ~4 MiB before a checkpoint) once freed.
    fs = Tmpfs(tmp_path / "small", "24m" if "sqlite" in request.node.name else "2m")
    try:
        yield fs
    finally:
        fs.umount()


def _recorder(root: Path):  # noqa: ANN202
    from detectors.config import DetectionConfig
    from detectors.evidence import ClipWriter, EvidenceRecorder

    writer = ClipWriter()
    return EvidenceRecorder("cam-full", root, DetectionConfig().evidence, writer), writer


def _image() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)


def test_capture_on_a_full_disk_does_not_raise_and_works_again_after_space_is_freed(tmpfs):
    rec, writer = _recorder(tmpfs.path)
    img = _image()
    try:
        tmpfs.fill()
        evidence = rec.capture("a-full", img, time.time(), [((0, 0, 10, 10), "person")])  # must not raise
        assert isinstance(evidence, list)
        tmpfs.free()
        evidence = rec.capture("a-free", img, time.time(), [((0, 0, 10, 10), "person")])
        snaps = [e for e in evidence if e.kind == "snapshot"]
        assert writer.wait_idle(10)  # snapshots are written by the evidence writer thread
        assert snaps and (tmpfs.path / snaps[0].path).stat().st_size > 0
    finally:
        rec.flush()
        writer.close(20)


def test_evidence_named_by_an_anomaly_exists_even_when_the_disk_is_full(tmpfs):
    """F-EVID-1: what the anomaly names is on disk — on a full disk nothing is named (and the loss is counted),
    once space is back the snapshot, frame and clip are named and all there."""
    rec, writer = _recorder(tmpfs.path)
    try:
        tmpfs.fill()
        for i in range(3):
            rec.record(_image(), 1000.0 + i)
        evidence = rec.capture("a-full", _image(), 1003.0, [((0, 0, 10, 10), "person")])
        rec.flush()
        assert writer.wait_idle(20)
        missing = [e.path for e in evidence if not (tmpfs.path / e.path).exists()]
        assert missing == [], f"evidence named but not on disk: {missing}"
        assert rec.failures >= 2  # the snapshot and the frame, refused by the full disk
        tmpfs.free()
        evidence = rec.capture("a-free", _image(), 1004.0, [((0, 0, 10, 10), "person")])
        rec.flush()
        assert writer.wait_idle(20)
        assert {e.kind for e in evidence} == {"snapshot", "frame", "clip"}
        assert [e.path for e in evidence if not (tmpfs.path / e.path).stat().st_size] == []
        assert [p.name for p in tmpfs.path.rglob("*.part")] == []
    finally:
        writer.close(1)


def test_a_failed_clip_leaves_no_partial_file(tmpfs):
    from detectors.evidence import write_mp4

    frames = [(1000.0 + i / 5, _image()) for i in range(5)]
    tmpfs.fill()
    target = tmpfs.path / "clip.mp4"
    with pytest.raises(Exception):
        write_mp4(target, frames)
    assert sorted(p.name for p in tmpfs.path.iterdir() if p.name != "filler.bin") == []


def test_sqlite_store_on_a_full_disk_leaves_anomalies_pending_and_files_them_after(tmpfs, own_redis, prefix):
    from alerts.intake import INTAKE_GROUP
    from tests.fault.support import IntakeRig, report, wait_for

    rig = IntakeRig(own_redis.url, prefix, f"sqlite:///{tmpfs.path / 'cases.db'}")
    intake = rig.intake("intake-disk")
    try:
        rig.run_intake(intake, block_ms=100)
        tmpfs.fill()
        rig.producer.run(400, threading.Event(), rate_hz=2000.0)  # ~400 tickets need far more than what is left
        wait_for(lambda: intake.store_down, 30, "intake noticed the full disk")
        pending = rig.client.xpending(rig.keys.anomalies, INTAKE_GROUP)["pending"]
        filed_full = rig.ledger()["filed"]
        tmpfs.free()
        freed_at = time.monotonic()
        wait_for(lambda: rig.ledger()["lost_count"] == 0, 60, "all filed after freeing")
        out = rig.ledger()
        report("sqlite store on a full disk", sent=out["sent"], filed_while_full=filed_full, pending_while_full=pending,
               lost=out["lost_count"], occurrence_dupes=out["occurrence_dupes"], duty_dupes=out["duty_dupes"],
               all_filed_after_free_s=round(time.monotonic() - freed_at, 2))
        assert pending > 0
        assert out["lost_count"] == 0 and out["occurrence_dupes"] == 0 and out["duty_dupes"] == 0
        assert out["tickets"] == 400
    finally:
        rig.close()
