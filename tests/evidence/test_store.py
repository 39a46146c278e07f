"""The evidence store: local folder and S3 (a real S3-compatible server), key checks, outage, retention, config."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from ingest.blobs import BadKey, BlobError, BlobNotFound, LocalDirStore, RetentionConfig, S3Store, check_key
from ingest.blobs.retention import sweep

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 100


def _stores(tmp_path: Path, s3_server) -> list:
    return [LocalDirStore(tmp_path / "evidence"), S3Store(s3_server.bucket(), endpoint_url=s3_server.endpoint, prefix="gw/")]


def test_both_stores_put_get_list_delete_the_same_keys(tmp_path, s3_server):
    for store in _stores(tmp_path, s3_server):
        store.put("cam-1/20260101/a-snapshot.jpg", JPEG, "image/jpeg")
        scratch = store.scratch("cam-1/20260101/a-clip.mp4")
        scratch.write_bytes(b"mp4 bytes")
        store.put_file("cam-1/20260101/a-clip.mp4", scratch, "video/mp4")
        assert not scratch.exists(), store  # put_file consumes its file
        assert store.get("cam-1/20260101/a-snapshot.jpg") == JPEG
        assert store.get("cam-1/20260101/a-clip.mp4") == b"mp4 bytes"
        assert sorted((b.key, b.size) for b in store.list()) == [("cam-1/20260101/a-clip.mp4", 9),
                                                                ("cam-1/20260101/a-snapshot.jpg", len(JPEG))]
        with pytest.raises(BlobNotFound):
            store.get("cam-1/20260101/none.jpg")
        store.delete("cam-1/20260101/a-snapshot.jpg")
        store.delete("cam-1/20260101/never-there.jpg")  # absent is no error
        assert [b.key for b in store.list()] == ["cam-1/20260101/a-clip.mp4"]


@pytest.mark.parametrize("key", ["../outside.txt", "/etc/passwd", "a/../../b.jpg", "a//b.jpg", "a/./b.jpg",
                                 ".hidden.part", "a\\..\\b", "", "a/b\x00.jpg", "x" * 600, "a/\u2028b.jpg"])
def test_keys_that_leave_the_store_are_refused(key, tmp_path):
    with pytest.raises(BadKey):
        check_key(key)
    with pytest.raises(BadKey):
        LocalDirStore(tmp_path).get(key)


def test_local_writes_leave_no_partial_file_when_they_fail(tmp_path):
    store = LocalDirStore(tmp_path / "evidence")
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "cam-1").write_text("a file where the folder should be")
    with pytest.raises(BlobError, match="cam-1/day/a.jpg"):
        store.put("cam-1/day/a.jpg", JPEG, "image/jpeg")
    assert sorted(p.name for p in (tmp_path / "evidence").iterdir()) == ["cam-1"]


def test_s3_outage_fails_fast_and_names_no_evidence(tmp_path, s3_server):
    """The bucket's server dies: capture returns at once without the files it could not store; it comes back."""
    from detectors.config import EvidenceConfig
    from detectors.evidence import ClipWriter, EvidenceRecorder

    bucket = s3_server.bucket()
    store = S3Store(bucket, endpoint_url=s3_server.endpoint, retry_after_s=1.0)
    writer = ClipWriter()
    rec = EvidenceRecorder("cam-s3", store, EvidenceConfig(pre_s=1, post_s=0), writer)
    img = np.random.default_rng(5).integers(0, 255, (180, 320, 3), dtype=np.uint8)
    try:
        rec.record(img, 1000.0)
        ok = rec.capture("a-up", img, 1000.1, [((1, 1, 20, 20), "person")])
        assert writer.wait_idle(20)
        assert {e.kind for e in ok} == {"snapshot", "frame", "clip"}
        s3_server.stop()
        started = time.monotonic()
        down = [rec.capture(f"a-down-{i}", img, 1001.0 + i, [((1, 1, 20, 20), "person")]) for i in range(5)]
        took = time.monotonic() - started
        assert down == [[]] * 5 and rec.failures == 10  # nothing named: 5 × (snapshot + frame) refused, counted
        assert took < 3.0, f"5 captures took {took:.1f}s with the bucket down"
    finally:
        writer.close(5)


def _age(store: LocalDirStore, key: str, size: int, days_old: float, now: float) -> None:
    store.put(key, b"x" * size, "image/jpeg")
    t = now - days_old * 86400
    os.utime(store.root / key, (t, t))


def test_retention_deletes_by_age_then_oldest_first_beyond_the_budget(tmp_path):
    store = LocalDirStore(tmp_path / "evidence")
    now = time.time()
    _age(store, "cam-1/20250101/old-snapshot.jpg", 1000, 40, now)  # past keep_days
    _age(store, "cam-1/20251201/b-snapshot.jpg", 1000, 9, now)
    _age(store, "cam-1/20251205/c-snapshot.jpg", 1000, 5, now)
    _age(store, "reports/20251209/photo.jpg", 1000, 1, now)
    scratch = store.scratch("cam-1/20251209/killed-clip.mp4")
    scratch.write_bytes(b"half a clip")
    os.utime(scratch, (now - 7200, now - 7200))
    result = sweep(store, RetentionConfig(keep_days=30, max_gb=2.5e-6), now)  # budget 2 500 bytes
    left = sorted(b.key for b in store.list())
    assert left == ["cam-1/20251205/c-snapshot.jpg", "reports/20251209/photo.jpg"]
    assert (result.deleted, result.freed_bytes, result.kept, result.kept_bytes) == (2, 2000, 2, 2000)
    assert not (store.root / "cam-1" / "20250101").exists()  # emptied day folders go too
    assert not scratch.exists()  # a killed writer's scratch file, an hour old
    assert sweep(store, RetentionConfig(keep_days=None, max_gb=None), now).deleted == 0


def test_an_s3_evidence_store_needs_its_section_and_a_valid_bucket(tmp_path):
    import shutil

    from gateway.config import ConfigError, load_deployment

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "config" / "grids", tmp_path / "grids")
    demo = (repo / "config" / "demo.yaml").read_text(encoding="utf-8")
    for block, field, words in (
        ("  evidence_store:\n    kind: s3\n", "services.evidence_store", "needs an s3 section"),
        ("  evidence_store:\n    kind: s3\n    s3:\n      bucket: Not_A_Bucket\n", "services.evidence_store.s3.bucket", "pattern"),
        ("  evidence_store:\n    retention:\n      keep_days: -1\n", "services.evidence_store.retention.keep_days", "greater than 0"),
    ):
        path = tmp_path / "deploy.yaml"
        path.write_text(demo.replace("services:\n", "services:\n" + block, 1), encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            load_deployment(path)
        problems = err.value.problems
        assert any(p.field == field and words in p.message and p.line for p in problems), problems
