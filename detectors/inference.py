"""One inference thread for every camera: dynamic batching of crops, then one model call per batch.

Why: the design forbids a model call per camera per frame. Requests from all cameras queue here; the worker
takes the first, waits at most ``max_wait_ms`` for up to ``max_batch`` more, and runs them in one call per model.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from detectors.model import ObjectModel

log = logging.getLogger(__name__)

ResultCallback = Callable[[np.ndarray | None], None]


@dataclass(slots=True)
class _Request:
    model: str
    image: np.ndarray
    callback: ResultCallback
    queued_at: float = field(default_factory=time.perf_counter)


class InferenceWorker:
    """Owns the models; ``submit`` is thread-safe and never blocks; callbacks run on the worker thread."""

    def __init__(self, models: dict[str, ObjectModel], max_batch: int = 8, max_wait_ms: float = 20.0):
        self.models = models
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._infer_ms: deque[float] = deque(maxlen=1000)
        self._calls: deque[tuple[float, int]] = deque(maxlen=5000)  # (time, batch size)
        self.total_calls = 0
        self.total_images = 0

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="gw-inference", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        while True:  # answer whatever is left so nobody waits forever
            try:
                self._queue.get_nowait().callback(None)
            except queue.Empty:
                break

    def submit(self, model: str, image: np.ndarray, callback: ResultCallback, camera_id: str | None = None) -> None:
        """``camera_id`` is for batchers that keep per-camera state (the worker pool's shm rings); unused here."""
        self._queue.put(_Request(model, image, callback))

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.perf_counter() + self.max_wait_s
            while len(batch) < self.max_batch:
                remaining = deadline - time.perf_counter()
                try:
                    batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            by_model: dict[str, list[_Request]] = {}
            for req in batch:
                by_model.setdefault(req.model, []).append(req)
            for name, reqs in by_model.items():
                self._call(name, reqs)

    def _call(self, name: str, reqs: list[_Request]) -> None:
        model = self.models.get(name)
        results: list[np.ndarray | None]
        try:
            t0 = time.perf_counter()
            results = model.predict([r.image for r in reqs]) if model is not None else [None] * len(reqs)
            ms = (time.perf_counter() - t0) * 1000
            with self._lock:
                self._infer_ms.append(ms)
                self._calls.append((time.time(), len(reqs)))
                self.total_calls += 1
                self.total_images += len(reqs)
        except Exception:
            log.exception("inference on %s failed for a batch of %d", name, len(reqs))
            results = [None] * len(reqs)
        for req, res in zip(reqs, results):
            try:
                req.callback(res)
            except Exception:
                log.exception("inference callback failed")

    def stats(self, window_s: float = 10.0) -> dict:
        now = time.time()
        with self._lock:
            recent = [(t, n) for t, n in self._calls if now - t <= window_s]
            ms = sorted(self._infer_ms)
        pct = (lambda q: round(ms[min(len(ms) - 1, int(q * len(ms)))], 2)) if ms else (lambda q: None)
        return {
            "detection_calls_per_s": round(len(recent) / window_s, 2),
            "detection_images_per_s": round(sum(n for _, n in recent) / window_s, 2),
            "batch_size_mean": round(sum(n for _, n in recent) / len(recent), 2) if recent else 0.0,
            "inference_ms_p50": pct(0.5),
            "inference_ms_p99": pct(0.99),
            "queue_depth": self.depth,
            "calls_total": self.total_calls,
            "images_total": self.total_images,
        }
