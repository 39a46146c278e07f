"""What the API needs from cameras it does not hold, kept in Redis: status, latest JPEG, overlay boxes, changes.

The video role (on this host or another) owns the decoders; the API process only reads these keys, so
the console works the same whether video runs in the API's process, in a child process or on another
machine. Every key carries the deployment's stream prefix as a Redis Cluster hash tag (``{gw}:…``), so
a cluster keeps them in one slot and multi-key reads stay legal:

===============================  =====================================================  ==============
key                              value                                                  lifetime
===============================  =====================================================  ==============
``{p}:camera:{id}:status``       JSON: state, fps counters, worker, host, published_at  TTL 15 s
``{p}:camera:{id}:jpeg``         the newest picture, JPEG (no boxes)                     TTL 15 s
``{p}:camera:{id}:overlay``      JSON: analysis size + tracked boxes                     TTL 15 s
``{p}:camera:{id}:watch``        "1" while someone looks at the live view                TTL 10 s
``{p}:video:engines``            hash worker → JSON: engine counters, model status       entries > 15 s old ignored
``{p}:video:control``            stream of {op, id}: a camera changed via the API        capped
===============================  =====================================================  ==============

Cameras changed through the API live in the SQL store (``config_items``, kind ``camera``); the control
stream only wakes the video roles, which read the camera's row (``ingest.changes``).

The JPEG is refreshed about once a second, and up to ``WATCH_FPS`` while a watch key exists.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import redis

from ingest.changes import ConfigChanges, ConfigStore, apply_overrides
from ingest.redis_connect import hash_tag

log = logging.getLogger(__name__)

STATUS_TTL_S = 15
WATCH_TTL_S = 10
STATUS_EVERY_S = 2.0
IDLE_FPS = 1.0
WATCH_FPS = 10.0
JPEG_QUALITY = 80


@dataclass(frozen=True)
class CameraKeys:
    """Key names of the camera state; ``prefix`` is the deployment's ``services.stream_prefix``."""

    prefix: str

    @property
    def tag(self) -> str:
        return hash_tag(self.prefix)

    def status(self, camera_id: str) -> str:
        return f"{self.tag}:camera:{camera_id}:status"

    def jpeg(self, camera_id: str) -> str:
        return f"{self.tag}:camera:{camera_id}:jpeg"

    def overlay(self, camera_id: str) -> str:
        return f"{self.tag}:camera:{camera_id}:overlay"

    def watch(self, camera_id: str) -> str:
        return f"{self.tag}:camera:{camera_id}:watch"

    @property
    def engines(self) -> str:
        return f"{self.tag}:video:engines"

    @property
    def control(self) -> str:
        return f"{self.tag}:video:control"


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class CameraStatePublisher:
    """Copies an engine's camera state into Redis from one thread: status every 2 s, JPEGs at 1 or 10 fps.

    Runs in the video role. Encoding a JPEG costs a few ms per camera per second; nobody watching
    means one per camera per second (alarm snapshots and the console's wall need no more).
    """

    def __init__(self, client: redis.Redis, keys: CameraKeys, engine: Any, *, worker: str | None = None,
                 lease: Callable[[str], dict[str, Any] | None] | None = None):
        self.client, self.keys, self.engine = client, keys, engine
        self.worker = worker or worker_id()
        self.lease = lease or (lambda _cid: None)  # pooled: the lease (owner, fence) the camera is analysed under
        self.host = socket.gethostname()
        self._last_jpeg: dict[str, float] = {}
        self._last_seq: dict[str, int] = {}
        self._watched: set[str] = set()
        self._rows: dict[str, dict[str, Any]] = {}  # the last status, so pictures need not ask the engine again
        self.published_jpegs = 0

    def run_forever(self, stop: threading.Event) -> None:
        next_status = 0.0
        while not stop.is_set():
            now = time.monotonic()
            try:
                if now >= next_status:
                    self.publish_status()
                    next_status = now + STATUS_EVERY_S
                self.publish_pictures(now)
            except redis.RedisError as exc:  # Redis away: the console goes stale, the cameras keep working
                log.warning("camera state not published: %s", exc)
                stop.wait(1.0)
            stop.wait(1.0 / WATCH_FPS / 2)

    def publish_status(self) -> None:
        rows = self._rows = self.engine.camera_status()
        at = time.time()
        pipe = self.client.pipeline(transaction=False)
        for cid, row in rows.items():
            doc = {**row, "worker": self.worker, "host": self.host, "published_at": at, "lease": self.lease(cid)}
            pipe.set(self.keys.status(cid), json.dumps(doc, default=str), ex=STATUS_TTL_S)
        stats = {**self.engine.stats(), "model_status": self.engine.model_status, "cameras": sorted(rows),
                 "worker": self.worker, "host": self.host, "published_at": at}
        pipe.hset(self.keys.engines, self.worker, json.dumps(stats, default=str))
        pipe.expire(self.keys.engines, 4 * STATUS_TTL_S)
        ids = list(rows)
        for cid in ids:
            pipe.exists(self.keys.watch(cid))
        results = pipe.execute()
        self._prune_engines(at)
        self._watched = {cid for cid, seen in zip(ids, results[-len(ids):] if ids else []) if seen}

    def _prune_engines(self, now: float) -> None:
        """Entries of engines that stopped publishing (a killed worker's pid) go after a minute."""
        stale = [k for k, v in self.client.hgetall(self.keys.engines).items()
                 if now - float(json.loads(v).get("published_at", 0)) > 4 * STATUS_TTL_S]
        if stale:
            self.client.hdel(self.keys.engines, *stale)

    def publish_pictures(self, now: float) -> None:
        import cv2  # only the video role encodes; readers (API, filer) need no OpenCV

        pipe = self.client.pipeline(transaction=False)
        n = 0
        for cid, row in list(self._rows.items()):
            fps = WATCH_FPS if cid in self._watched else IDLE_FPS
            if now - self._last_jpeg.get(cid, 0.0) < 1.0 / fps:
                continue
            frame = self.engine.latest_frame(cid)
            if frame is None or self._last_seq.get(cid) == frame.seq:
                continue
            ok, data = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                continue
            self._last_jpeg[cid], self._last_seq[cid] = now, frame.seq
            pipe.set(self.keys.jpeg(cid), data.tobytes(), ex=STATUS_TTL_S)
            size = row.get("analysis_size") or [frame.width, frame.height]
            boxes = [b.to_dict() for b in self.engine.overlay(cid)]
            pipe.set(self.keys.overlay(cid), json.dumps({"size": list(size), "boxes": boxes, "captured_at": frame.captured_at}),
                     ex=STATUS_TTL_S)
            n += 1
        if n:
            pipe.execute()
            self.published_jpegs += n

    def retire(self) -> None:
        """This engine stops: its entry goes (its cameras' keys expire on their own)."""
        try:
            self.client.hdel(self.keys.engines, self.worker)
        except redis.RedisError:
            pass

    def forget(self, camera_id: str) -> None:
        """A removed camera's keys go at once (the console must not show a ghost for 15 s)."""
        self.client.delete(self.keys.status(camera_id), self.keys.jpeg(camera_id), self.keys.overlay(camera_id))
        self._last_jpeg.pop(camera_id, None)
        self._last_seq.pop(camera_id, None)
        self._rows.pop(camera_id, None)


class CameraStateReader:
    """The API's side: status, JPEG and overlay of any camera, wherever its video role runs."""

    def __init__(self, client: redis.Redis, keys: CameraKeys):
        self.client, self.keys = client, keys
        self._watch_sent: dict[str, float] = {}

    def status(self, camera_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = list(camera_ids)
        if not ids:
            return {}
        try:
            raw = self.client.mget([self.keys.status(c) for c in ids])
        except redis.RedisError:
            return {}
        return {cid: json.loads(v) for cid, v in zip(ids, raw) if v}

    def jpeg(self, camera_id: str) -> bytes | None:
        try:
            return self.client.get(self.keys.jpeg(camera_id))
        except redis.RedisError:
            return None

    def overlay(self, camera_id: str) -> dict[str, Any]:
        try:
            raw = self.client.get(self.keys.overlay(camera_id))
        except redis.RedisError:
            return {}
        return json.loads(raw) if raw else {}

    def watch(self, camera_id: str) -> None:
        """Ask the owning video role for pictures at WATCH_FPS; refreshed at most every 2 s per camera."""
        now = time.monotonic()
        if now - self._watch_sent.get(camera_id, 0.0) < 2.0:
            return
        self._watch_sent[camera_id] = now
        try:
            self.client.set(self.keys.watch(camera_id), "1", ex=WATCH_TTL_S)
        except redis.RedisError:
            pass

    def engines(self) -> list[dict[str, Any]]:
        """The counters each live video engine published (one per video role process)."""
        try:
            raw = self.client.hgetall(self.keys.engines)
        except redis.RedisError:
            return []
        now = time.time()
        rows = [json.loads(v) for _, v in sorted(raw.items())]
        return [r for r in rows if now - float(r.get("published_at", 0)) <= STATUS_TTL_S]


class CameraControl(ConfigChanges):
    """Camera changes made through the API, for video roles anywhere: SQL rows (kind ``camera``) + ``{p}:video:control``."""

    def __init__(self, client: redis.Redis, keys: CameraKeys, store: ConfigStore):
        super().__init__(client, store, "camera", keys.control)
        self.keys = keys
