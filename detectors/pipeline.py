"""VideoPipeline: frames from every camera in, Anomalies out — motion gating, batched detection, tracking, rules.

Threads: decoders call ``submit`` (a per-camera newest-frame slot; an older frame still waiting is dropped and
counted as skipped). One analysis thread runs motion, the tracks and the rules on **every** analysed frame; one
inference thread runs the model on batches of crops from all cameras; one writer thread writes evidence.

Why the detector is decoupled from the analysis rate (Frigate's separate detect fps): on a CPU the model, not
decoding, is the limit (~15 ms per 320 px crop, two cores), and running it on every moving frame made a camera
wait for its last detection and skip frames. Now a camera's frame goes to the detector only when

* its ``model.detect_fps`` clock allows (capture time, so replays behave like live cameras),
* no detection of that camera is in flight, and
* the inference worker has room: at most ``model.max_inflight`` crops (default 2 × ``max_batch``) are admitted at
  once. When it is full, cameras take turns — active ones (fresh motion or tracked objects) before idle ones,
  then least recently detected first — and a camera passed over is remembered so a later arrival cannot jump it.

Every other frame is analysed at once with the latest tracks, so no frame waits and none is skipped because of the
detector; an overloaded detector lowers every camera's detect rate a little instead of the analysis rate.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

import numpy as np

from ingest.anomaly import Anomaly
from detectors.camera import CameraAnalyzer, Plan
from detectors.config import CameraAnalytics, DetectionConfig
from detectors.evidence import ClipWriter, EvidenceRecorder
from detectors.inference import InferenceWorker
from detectors.model import ObjectModel, default_cache_dir
from ingest.blobs import BlobStore, as_blob_store
from ingest.config import GeoPose
from ingest.frame import Frame

log = logging.getLogger(__name__)


class _Rate:
    """Events per second over a sliding window (wall clock)."""

    def __init__(self, window_s: float = 10.0):
        self.window_s = window_s
        self._t: deque[float] = deque()

    def hit(self, n: int = 1) -> None:
        now = time.monotonic()
        self._t.extend([now] * n)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._t and now - self._t[0] > self.window_s:
            self._t.popleft()

    def rate(self) -> float:
        self._trim(time.monotonic())
        return round(len(self._t) / self.window_s, 2)


class _CameraSlot:
    def __init__(self, analyzer: CameraAnalyzer):
        self.analyzer = analyzer
        self.pending: Frame | None = None
        self.busy = False  # a detection of this camera is in flight (it no longer blocks its next frames)
        self.busy_crops = 0
        self.last_admit = 0.0  # monotonic time of the last admitted detection pass (fair turns)
        self.pass_rate = _Rate()
        self.received = 0
        self.processed = 0
        self.skipped = 0
        self.process_rate = _Rate()
        self.skip_rate = _Rate()
        self.detect_rate = _Rate()


class VideoPipeline:
    def __init__(self, detection: DetectionConfig, base_dir: Path, evidence_dir: BlobStore | Path,
                 publish: Callable[[Anomaly], None], *, model: ObjectModel | None = None,
                 worker: InferenceWorker | None = None, aux_models: dict[str, ObjectModel] | None = None):
        """``model``/``worker``/``aux_models`` replace the in-process model and batcher (a video worker process
        passes stand-ins whose crops go to the host's detector process: ``detectors.worker_pool``)."""
        self.detection = detection
        self.base_dir = Path(base_dir)
        self.evidence_store = as_blob_store(evidence_dir)  # a BlobStore, or a folder for the local one
        self.publish = publish
        m = detection.model
        cache = Path(m.cache_dir).expanduser() if m.cache_dir else default_cache_dir()
        if m.cache_dir and not cache.is_absolute():
            cache = (self.base_dir / cache).resolve()
        self._cache = cache
        self.model = model if model is not None else ObjectModel(
            m.path, self.base_dir, m.imgsz, m.confidence, None, m.device, m.max_batch, m.prepare_onnx, cache, "objects")
        self._aux_models: dict[str, ObjectModel] = {}
        self._given_aux = aux_models
        self.worker = worker if worker is not None else InferenceWorker({"objects": self.model}, m.max_batch, m.max_wait_ms)
        self._cameras: dict[str, _CameraSlot] = {}
        self._results: list[tuple[str, _CameraSlot, Plan]] = []
        self.max_inflight = m.max_inflight or 2 * m.max_batch
        self._working = False
        self._inflight = 0  # crops admitted and not yet answered
        self._waiting: dict[str, tuple[tuple[int, float], int, float]] = {}  # cid -> (rank, crops, seen at)
        self.denied = 0  # detection passes a camera wanted but had to wait for (worker full)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._writer: ClipWriter | None = None
        self.rejected = 0
        self.published = 0

    # -- status ------------------------------------------------------------------------------------------------
    @property
    def model_status(self) -> str:
        if self.model.loaded:
            return self.model.status
        return f"motion-only: {self.model.status}"

    def _aux(self, name: str) -> ObjectModel | None:
        """Load the fall / fire model on first use (only cameras with that rule pay for it)."""
        if self._given_aux is not None:
            given = self._given_aux.get(name)
            return given if given is not None and given.loaded else None
        if name in self._aux_models:
            model = self._aux_models[name]
            return model if model.loaded else None
        cfg = self.detection.fall_model if name == "fall" else self.detection.fire_model
        if not cfg.path:
            return None
        model = ObjectModel(cfg.path, self.base_dir, cfg.imgsz, cfg.confidence, None, self.detection.model.device,
                            self.detection.model.max_batch, self.detection.model.prepare_onnx, self._cache, name)
        self._aux_models[name] = model
        if model.loaded:
            self.worker.models[name] = model
            log.info("%s model: %s", name, model.status)
            return model
        log.warning("%s model unavailable (%s); using the classical fallback", name, model.status)
        return None

    # -- cameras -----------------------------------------------------------------------------------------------
    def configure_camera(self, camera_id: str, pose: GeoPose, analytics: CameraAnalytics) -> None:
        """Add or replace a camera's analytics (tracks and rule state start afresh). Raises ValueError on bad zones."""
        aux = {}
        kinds = {r.kind for r in analytics.rules}
        for name, kind, cfg in (("fall", "fall", self.detection.fall_model), ("fire", "fire_smoke", self.detection.fire_model)):
            if kind in kinds and (model := self._aux(name)) is not None:
                aux[name] = (cfg.interval_s, model.names)
        if self._writer is None:
            self._writer = ClipWriter()
        evidence = EvidenceRecorder(camera_id, self.evidence_store, self.detection.evidence, self._writer)
        analyzer = CameraAnalyzer(camera_id, pose, analytics, self.detection, self.model.names, self.model.loaded,
                                  aux, evidence, self.model.imgsz)
        with self._cond:
            old = self._cameras.get(camera_id)
            slot = _CameraSlot(analyzer)
            if old is not None:
                old.analyzer.evidence and old.analyzer.evidence.flush()
                slot.received, slot.processed, slot.skipped = old.received, old.processed, old.skipped
            self._cameras[camera_id] = slot

    def remove_camera(self, camera_id: str) -> None:
        with self._cond:
            slot = self._cameras.pop(camera_id, None)
        if slot is not None and slot.analyzer.evidence is not None:
            slot.analyzer.evidence.flush()

    # -- frames ------------------------------------------------------------------------------------------------
    def submit(self, frame: Frame) -> None:
        """Called from decoder threads; O(1). Unknown cameras and malformed images are counted and dropped."""
        img = getattr(frame, "image", None)
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or img.size == 0:
            self.rejected += 1
            if self.rejected in (1, 10, 100) or self.rejected % 1000 == 0:
                log.warning("rejected frame from %s: need HxWx3 uint8 BGR (rejected so far: %d)",
                            getattr(frame, "camera_id", "?"), self.rejected)
            return
        with self._cond:
            slot = self._cameras.get(frame.camera_id)
            if slot is None:
                self.rejected += 1
                return
            slot.received += 1
            if slot.pending is not None:
                slot.skipped += 1
                slot.skip_rate.hit()
            slot.pending = frame
            self._cond.notify()

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        if not self.model.loaded:
            log.warning("object detection DISABLED, running motion-only: %s", self.model.status)
        else:
            log.info("object model: %s", self.model.status)
        if self._writer is None:
            self._writer = ClipWriter()
        self._stop.clear()
        self.worker.start()
        self._thread = threading.Thread(target=self._run, name="gw-analysis", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self.worker.stop()
        for slot in list(self._cameras.values()):
            if slot.analyzer.evidence is not None:
                slot.analyzer.evidence.flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted frame has been analysed (tests, replays); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (any(s.pending is not None or s.busy for s in self._cameras.values()) or self._results
                   or self._working):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # -- the analysis thread -------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                work: list[tuple[str, _CameraSlot, Frame]] = []
                results = self._results
                self._results = []
                for cid, slot in self._cameras.items():
                    if slot.pending is not None:
                        work.append((cid, slot, slot.pending))
                        slot.pending = None
                if not work and not results:
                    self._cond.wait(0.1)
                    continue
                self._working = True  # taken from the slots, not yet analysed (drain must not pass now)
            for cid, slot, plan in results:
                self._finish(cid, slot, plan, detected=True)
            plans: list[tuple[str, _CameraSlot, Plan]] = []
            for cid, slot, frame in work:
                try:
                    plans.append((cid, slot, slot.analyzer.begin(frame)))
                except Exception:
                    log.exception("camera %s: analysis of frame %s failed", cid, frame.seq)
            admitted = self._admit(plans)
            for cid, slot, plan in plans:
                if cid in admitted:
                    try:
                        slot.analyzer.admit(plan)
                    except Exception:
                        log.exception("camera %s: cropping frame %s failed", cid, plan.frame.seq)
                        plan.requests = []
                    if plan.requests:
                        self._dispatch(cid, slot, plan)
                        continue
                self._finish(cid, slot, plan, detected=False)
            with self._cond:
                self._working = False
                self._cond.notify_all()

    def _admit(self, plans: list[tuple[str, _CameraSlot, Plan]]) -> set[str]:
        """Which of these frames get a detection pass now: in-flight cap, then fair turns (see the module doc)."""
        now = time.monotonic()
        here = {cid for cid, _, _ in plans}
        candidates = []
        for cid, slot, plan in plans:
            if plan.wanted and not slot.busy:
                candidates.append(((0 if plan.active else 1, slot.last_admit), plan.crops, cid, True))
            else:
                self._waiting.pop(cid, None)
        if not candidates:
            return set()
        with self._cond:
            # a waiting camera whose frames stopped coming (removed, offline) must not hold its place forever
            self._waiting = {c: w for c, w in self._waiting.items() if c in self._cameras and now - w[2] < 1.0}
            free = self.max_inflight - self._inflight
            idle = self._inflight == 0
        ranked = candidates + [(w[0], w[1], c, False) for c, w in self._waiting.items() if c not in here]
        ranked.sort(key=lambda r: r[0])
        admitted: set[str] = set()
        blocked = False
        for rank, crops, cid, present in ranked:
            if not blocked and (crops <= free or (idle and not admitted)):
                if present:
                    admitted.add(cid)
                    self._waiting.pop(cid, None)
                free -= crops  # an absent waiter's place is kept for its next frame (≤ one frame interval)
                if free <= 0:
                    blocked = True
                continue
            blocked = True  # strict turns: a smaller request may not jump a larger one that waited longer
            if present:
                self._waiting[cid] = (rank, crops, now)
                self.denied += 1
        return admitted

    def _dispatch(self, cid: str, slot: _CameraSlot, plan: Plan) -> None:
        left = [len(plan.requests)]
        with self._cond:
            slot.busy, slot.busy_crops = True, len(plan.requests)
            slot.last_admit = time.monotonic()
            self._inflight += len(plan.requests)
        slot.pass_rate.hit()

        def done(i: int):
            def callback(rows: np.ndarray | None) -> None:
                with plan.lock:
                    plan.results[i] = rows
                    left[0] -= 1
                    complete = left[0] == 0
                if complete:
                    with self._cond:
                        self._results.append((cid, slot, plan))
                        self._cond.notify_all()
            return callback

        for i, (name, crop, _scale, _region) in enumerate(plan.requests):
            self.worker.submit(name, crop, done(i), camera_id=cid)

    def _finish(self, cid: str, slot: _CameraSlot, plan: Plan, detected: bool) -> None:
        try:
            before = slot.analyzer.detections
            anomalies = slot.analyzer.finish(plan)
            slot.detect_rate.hit(slot.analyzer.detections - before)
        except Exception:
            log.exception("camera %s: rules on frame %s failed", cid, plan.frame.seq)
            anomalies = []
        if detected:  # a frame is counted once, when its rules ran; a detected frame's run only now
            self._release(slot)
        slot.processed += 1
        slot.process_rate.hit()
        for anomaly in anomalies:
            try:
                self.publish(anomaly)
                self.published += 1
            except Exception:
                log.exception("publishing %s from %s failed", anomaly.kind, cid)

    def _release(self, slot: _CameraSlot) -> None:
        with self._cond:
            self._inflight -= slot.busy_crops
            slot.busy, slot.busy_crops = False, 0
            self._cond.notify_all()

    # -- numbers -----------------------------------------------------------------------------------------------
    def stats(self) -> dict:
        with self._cond:
            cams = dict(self._cameras)
            pending = sum(1 for s in cams.values() if s.pending is not None)
            recorders = [s.analyzer.evidence for s in cams.values() if s.analyzer.evidence is not None]
        return {
            "model_status": self.model_status,
            "cameras": {
                cid: {
                    "process_fps": s.process_rate.rate(), "skipped_fps": s.skip_rate.rate(),
                    "detection_fps": s.detect_rate.rate(), "received": s.received, "processed": s.processed,
                    "skipped": s.skipped, "detections": s.analyzer.detections, "objects": s.analyzer.objects_now,
                    "detect_passes_fps": s.pass_rate.rate(), "detect_passes": s.analyzer.passes,
                }
                for cid, s in cams.items()
            },
            **self.worker.stats(),
            "pending_frames": pending,
            "detect_inflight_crops": self._inflight, "detect_max_inflight": self.max_inflight,
            "detect_waiting_cameras": len(self._waiting), "detect_denied": self.denied,
            "clips_pending": self._writer.pending if self._writer else 0,
            "clips_stored": self._writer.written if self._writer else 0,
            "clips_failed": self._writer.failed if self._writer else 0,
            "clips_remuxed": sum(e.remuxed for e in recorders),  # cut from the camera's packets, not encoded
            "evidence_failures": sum(e.failures for e in recorders),  # not stored, so not named by the anomaly
            "anomalies_published": self.published,
            "rejected_frames": self.rejected,
        }
