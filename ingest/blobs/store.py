"""The blob store every evidence writer and reader goes through: snapshots, frames, clips, report photos.

Why an interface in ``ingest``: the video side (detectors), the human channels (alerts.channels) and the API
(gateway) all write or read evidence, and imports point gateway → alerts → detectors → ingest, so the lowest
layer is the one all of them can reach. A key is the relative path the evidence record carries
(``cam-1/20260101/<anomaly>-snapshot.jpg``): the local store keeps today's ``run/evidence/`` layout, the S3 store
uses the same key as the object name, so a record written on one host reads on any other.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_KEY_LENGTH = 512
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")


class BlobError(OSError):
    """The store could not do what was asked (disk full, S3 unreachable, access denied); the message says which."""


class BlobNotFound(BlobError):
    """No blob under that key."""


class BadKey(ValueError):
    """A key that is no plain relative path inside the store (``..``, an absolute path, odd characters)."""


def check_key(key: object) -> str:
    """``key`` if it names a blob inside the store, else BadKey — the one check that keeps reads inside it.

    Segments start with a letter, digit or underscore, so ``.``, ``..`` and hidden scratch files (``.part``) can
    never be named; no backslashes, no empty segments, no leading slash.
    """
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise BadKey(f"evidence key must be 1-{MAX_KEY_LENGTH} characters")
    parts = key.split("/")
    bad = next((p for p in parts if not _SEGMENT.match(p)), None)
    if bad is not None:
        raise BadKey(f"evidence key {key[:80]!r}: segment {bad[:40]!r} is not allowed")
    return key


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """One stored blob as a listing sees it (retention sorts by ``modified``, epoch seconds)."""

    key: str
    size: int
    modified: float


class BlobStore(ABC):
    """Put, get, list and delete blobs by key. Implementations are picklable (video worker processes get one)."""

    kind: str = "?"

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` whole or not at all (a reader never sees half a file); BlobError on failure."""

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file at ``path`` (a finished clip) and remove it; BlobError on failure (the file is removed too)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise BlobError(f"cannot read {path}: {exc}") from None
        finally:
            Path(path).unlink(missing_ok=True)
        self.put(key, data, content_type)

    @abstractmethod
    def scratch(self, key: str) -> Path:
        """A local path to write ``key``'s content to before ``put_file`` (clip encoders write files, not bytes)."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The blob's bytes; BlobNotFound when absent, BlobError when the store cannot answer."""

    def local_path(self, key: str) -> Path | None:
        """A file holding the blob that may be sent as it is (the local store), else None."""
        return None

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the blob; absent is not an error."""

    @abstractmethod
    def list(self) -> Iterator[BlobInfo]:
        """Every blob of the store (retention's input); BlobError when the store cannot answer."""

    def cleanup_scratch(self, max_age_s: float) -> int:
        """Remove scratch files a killed writer left (older than ``max_age_s``); how many went."""
        return 0

    @abstractmethod
    def describe(self) -> str:
        """Where the blobs go, for start-up logs and errors (no credentials)."""
