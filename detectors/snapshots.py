"""Snapshots of the cameras best placed to see a spot, from the latest JPEGs the video role keeps in Redis.

An alarm is filed in the devices role, which holds no camera: the pictures come from
``{prefix}:camera:{id}:jpeg`` (see ``detectors.camera_state``), so the filer needs only Redis and the
shared evidence store, wherever the cameras are decoded.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ingest.anomaly import Evidence
from detectors.camera_state import CameraStateReader
from detectors.nearby import cameras_seeing
from ingest.blobs import BlobStore, as_blob_store

log = logging.getLogger(__name__)


class NearbySnapshots:
    """``snapshots_near(points)``: for each point, JPEGs of the cameras facing it (then nearest), saved as evidence."""

    def __init__(self, reader: CameraStateReader, poses: Callable[[], Iterable[tuple[str, Any]]],
                 evidence: BlobStore | Path):
        self.reader, self.poses, self.store = reader, poses, as_blob_store(evidence)

    def __call__(self, points: list[Any], limit: int = 3) -> list[list[Evidence]]:
        """A burst of presses from one estate sees the same few cameras: each is saved once per call and shared."""
        poses = list(self.poses())
        chosen = [cameras_seeing(poses, point, limit=limit) for point in points]
        taken: dict[str, Evidence] = {}
        for camera_id in dict.fromkeys(cid for ids in chosen for cid in ids):
            data = self.reader.jpeg(camera_id)
            if not data:
                continue
            try:
                taken[camera_id] = self._save(camera_id, data)
            except OSError as exc:  # a full disk costs the picture, never the alarm
                log.error("snapshot of %s for an alarm not written: %s", camera_id, exc)
        return [[taken[cid] for cid in ids if cid in taken] for ids in chosen]

    def _save(self, camera_id: str, data: bytes) -> Evidence:
        key = f"snapshots/{time.strftime('%Y%m%d', time.gmtime())}/{camera_id}-{uuid.uuid4().hex[:12]}.jpg"
        self.store.put(key, data, "image/jpeg")  # BlobError is an OSError: the caller logs it, the alarm goes on
        return Evidence(kind="snapshot", path=key)
