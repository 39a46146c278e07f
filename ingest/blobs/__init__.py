"""Evidence storage: one small blob-store interface, a local folder (default) and S3-compatible object storage.

Writers (``detectors.evidence``, ``detectors.snapshots``, ``alerts.channels.photos``) put blobs; the API's
evidence endpoints get them; ``ingest.blobs.retention`` deletes old ones. See docs/ARCHITECTURE.md ("Evidence").
"""
from __future__ import annotations

from pathlib import Path

from ingest.blobs.config import EvidenceStoreConfig, RetentionConfig, S3Config, local_dir, open_blob_store
from ingest.blobs.local import LocalDirStore
from ingest.blobs.s3 import S3Store
from ingest.blobs.store import BadKey, BlobError, BlobInfo, BlobNotFound, BlobStore, check_key


def as_blob_store(where: "BlobStore | Path | str") -> BlobStore:
    """A store as given, or a local folder store for a path (what callers passed before there were stores)."""
    return where if isinstance(where, BlobStore) else LocalDirStore(Path(where))


__all__ = ["BadKey", "BlobError", "BlobInfo", "BlobNotFound", "BlobStore", "EvidenceStoreConfig", "LocalDirStore",
           "RetentionConfig", "S3Config", "S3Store", "as_blob_store", "check_key", "local_dir", "open_blob_store"]
