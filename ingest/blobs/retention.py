"""Evidence retention: age first, then a size budget, oldest first — as Frigate keeps its recordings.

Frigate deletes recordings past ``retain.days`` and, when the disk runs short, the oldest recordings whatever their
age. GridWatch does the same over its evidence store: blobs older than ``keep_days`` go, then, while the total is
over ``max_gb``, the oldest. Evidence is not kept for open tickets on purpose: the store cannot see tickets (it
lives below alerts), and a budget that open cases could pin would let one stuck case fill the disk again. Set
``keep_days`` longer than cases stay open (the ticket API answers 404 for evidence that has gone).

One sweep lists the whole store; several processes sweeping the same bucket is harmless (deletes are idempotent),
but only the sla role runs the sweeper.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from ingest.blobs.config import RetentionConfig
from ingest.blobs.store import BlobError, BlobStore

log = logging.getLogger(__name__)

SCRATCH_MAX_AGE_S = 3600.0  # a clip is written within minutes; older scratch files are a killed writer's


@dataclass(frozen=True, slots=True)
class SweepResult:
    deleted: int
    freed_bytes: int
    kept: int
    kept_bytes: int


def sweep(store: BlobStore, cfg: RetentionConfig, now: float | None = None) -> SweepResult:
    """Delete what the retention policy says must go; BlobError when the store cannot be listed."""
    now = time.time() if now is None else now
    blobs = sorted(store.list(), key=lambda b: b.modified)
    cutoff = now - cfg.keep_days * 86400 if cfg.keep_days is not None else None
    budget = int(cfg.max_gb * 1e9) if cfg.max_gb is not None else None
    total = sum(b.size for b in blobs)
    deleted = freed = 0
    for blob in blobs:
        too_old = cutoff is not None and blob.modified < cutoff
        over = budget is not None and total > budget
        if not (too_old or over):
            break  # sorted oldest first: everything after is newer and within the budget
        try:
            store.delete(blob.key)
        except BlobError as exc:
            log.warning("retention: %s", exc)
            continue
        deleted, freed, total = deleted + 1, freed + blob.size, total - blob.size
    store.cleanup_scratch(SCRATCH_MAX_AGE_S)
    return SweepResult(deleted, freed, len(blobs) - deleted, total)


def run_sweeper(store: BlobStore, cfg: RetentionConfig, stop: threading.Event) -> None:
    """Sweep every ``cfg.sweep_every_s`` until ``stop``; a store that is down is tried again next time."""
    while True:
        try:
            result = sweep(store, cfg)
            if result.deleted:
                log.info("evidence retention: %d deleted (%.1f MB), %d kept (%.1f MB) in %s", result.deleted,
                         result.freed_bytes / 1e6, result.kept, result.kept_bytes / 1e6, store.describe())
        except BlobError as exc:
            log.warning("evidence retention skipped: %s", exc)
        if stop.wait(cfg.sweep_every_s):
            return
