"""One detector process per host: batches crops from every camera of every video worker into one model call.

Why a process of its own: the model is the biggest single cost of the video path (~15 ms per 320 px crop on a
CPU core) and batches better the more cameras feed it; run inside each video worker it would be loaded N times
and batch over N times fewer cameras. Here the model is loaded once, ``InferenceWorker`` does the dynamic
batching exactly as in the single-process build, and workers reach it over a local socket
(``multiprocessing.connection``, authenticated): a request is only (request id, ring, slot, generation, model),
the crop itself lies in the camera's shared-memory crop ring (``ingest.video.shm``), and the answer is the
detection rows (n×6 float32, a few hundred bytes).

Worker side, ``DetectorClient`` has the ``InferenceWorker`` shape the pipeline already calls
(``submit(model, image, callback)``, ``start``, ``stop``, ``stats``), so ``VideoPipeline`` runs unchanged in a
worker process. If the detector process dies, pending requests are answered ``None`` (no detection this pass;
motion, tracks and rules go on) and the client reconnects with back-off once the engine has restarted it.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any, Callable

import numpy as np

from detectors.config import DetectionConfig
from detectors.inference import InferenceWorker
from detectors.model import ObjectModel, default_cache_dir
from ingest.backoff import Backoff
from ingest.video.shm import Ring, RingCache, SlotRef

log = logging.getLogger(__name__)

ResultCallback = Callable[[np.ndarray | None], None]


@dataclass(frozen=True)
class ModelInfo:
    """What a worker needs to know of a model it does not hold: class names, input size, whether it loaded."""

    name: str
    loaded: bool
    names: dict[int, str]
    imgsz: int
    status: str
    file: str | None = None

    @classmethod
    def of(cls, model: ObjectModel) -> "ModelInfo":
        return cls(model.name, model.loaded, dict(model.names), model.imgsz, model.status, model.file)


class RemoteModel:
    """Stands in for ``ObjectModel`` inside a worker: the attributes the pipeline and analyzers read."""

    def __init__(self, info: ModelInfo):
        self.name, self.loaded, self.names = info.name, info.loaded, dict(info.names)
        self.imgsz, self.status, self.file = info.imgsz, info.status, info.file

    def predict(self, images: list[np.ndarray]) -> list[np.ndarray]:  # never called: crops go to the detector
        raise RuntimeError("a RemoteModel predicts through the detector process")


@dataclass(frozen=True)
class DetectorSpec:
    """Everything the detector process is started with (picklable for the spawn start method)."""

    detection: DetectionConfig
    base_dir: Path
    address: str
    authkey: bytes
    log_level: int = logging.INFO


def crop_size(detection: DetectionConfig) -> int:
    """Bytes of the largest crop any model of this config takes (the crop rings' slot size)."""
    side = max(detection.model.imgsz, detection.fall_model.imgsz if detection.fall_model.path else 0,
               detection.fire_model.imgsz if detection.fire_model.path else 0)
    return side * side * 3


def load_models(detection: DetectionConfig, base_dir: Path) -> dict[str, ObjectModel]:
    """The object model and the configured auxiliary (fall / fire) models, as the single-process pipeline loads them."""
    m = detection.model
    cache = Path(m.cache_dir).expanduser() if m.cache_dir else default_cache_dir()
    if m.cache_dir and not cache.is_absolute():
        cache = (Path(base_dir) / cache).resolve()
    models = {"objects": ObjectModel(m.path, base_dir, m.imgsz, m.confidence, None, m.device, m.max_batch,
                                     m.prepare_onnx, cache, "objects")}
    for name, cfg in (("fall", detection.fall_model), ("fire", detection.fire_model)):
        if cfg.path:
            models[name] = ObjectModel(cfg.path, base_dir, cfg.imgsz, cfg.confidence, None, m.device, m.max_batch,
                                       m.prepare_onnx, cache, name)
    return models


# -------------------------------------------------------------------------------------------------------------
# the detector process
# -------------------------------------------------------------------------------------------------------------
def run_detector(spec: DetectorSpec, control: Connection) -> None:
    """Process entry point: load the models, serve workers until the engine says stop (or goes away)."""
    logging.basicConfig(level=spec.log_level, format="%(asctime)s %(levelname)s detector %(name)s: %(message)s")
    models = load_models(spec.detection, spec.base_dir)
    loaded = {k: v for k, v in models.items() if v.loaded}
    worker = InferenceWorker(loaded, spec.detection.model.max_batch, spec.detection.model.max_wait_ms)
    worker.start()
    try:
        os.unlink(spec.address)  # a previous detector's socket (it was killed)
    except OSError:
        pass
    listener = Listener(spec.address, family="AF_UNIX", authkey=spec.authkey)
    rings = RingCache()
    clients: list[Connection] = []
    threading.Thread(target=_accept, args=(listener, worker, rings, clients), name="gw-detector-accept",
                     daemon=True).start()
    control.send(("ready", {k: ModelInfo.of(v) for k, v in models.items()}, os.getpid()))
    try:
        while True:
            if control.poll(1.0):
                msg = control.recv()
                if msg[0] == "stop":
                    break
            control.send(("stats", {**worker.stats(), "workers_connected": len(clients)}))
    except (EOFError, OSError):
        pass  # the engine is gone: so are we
    finally:
        listener.close()
        worker.stop()
        rings.close()
        try:
            os.unlink(spec.address)
        except OSError:
            pass


def _accept(listener: Listener, worker: InferenceWorker, rings: RingCache, clients: list[Connection]) -> None:
    while True:
        try:
            conn = listener.accept()
        except (OSError, EOFError):
            return
        except Exception:  # noqa: BLE001 - a client with the wrong key must not stop the others
            log.warning("refused a detector client", exc_info=True)
            continue
        clients.append(conn)
        threading.Thread(target=_serve, args=(conn, worker, rings, clients), name="gw-detector-client",
                         daemon=True).start()


def _serve(conn: Connection, worker: InferenceWorker, rings: RingCache, clients: list[Connection]) -> None:
    """One worker's requests: copy the crop out of its ring, queue it for the batcher, answer on this socket."""
    lock = threading.Lock()

    def answer(req_id: int, rows: np.ndarray | None) -> None:
        try:
            with lock:
                conn.send(("result", req_id, rows))
        except (OSError, EOFError, ValueError):
            pass  # the worker died; its requests die with it

    try:
        while True:
            msg = conn.recv()
            if msg[0] == "detect":
                _, req_id, ref, model = msg
                got = rings.read(ref)
                if got is None or model not in worker.models:
                    answer(req_id, None)
                    continue
                worker.submit(model, got[0], lambda rows, r=req_id: answer(r, rows))
            elif msg[0] == "forget":
                rings.forget(msg[1])
    except (EOFError, OSError):
        pass
    finally:
        try:
            clients.remove(conn)
        except ValueError:
            pass
        conn.close()


# -------------------------------------------------------------------------------------------------------------
# the worker's side
# -------------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Pending:
    ring: Ring
    ref: SlotRef
    callback: ResultCallback
    at: float = field(default_factory=time.monotonic)


class DetectorClient:
    """``InferenceWorker``'s shape for a video worker: crops go into the camera's ring, rows come back."""

    def __init__(self, address: str, authkey: bytes, connect_timeout_s: float = 60.0):
        self.address, self.authkey = address, authkey
        self.connect_timeout_s = connect_timeout_s
        self.models: dict[str, Any] = {}  # the pipeline's interface; models live in the detector process
        self._rings: dict[str, Ring] = {}
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._conn: Connection | None = None
        self._next_id = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.total_calls = self.total_images = 0
        self.failed = 0  # requests answered None: detector gone, crop overwritten, unknown camera
        self.dropped = 0  # requests whose slot a newer crop took (a full ring)
        self.reconnects = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._connect(self.connect_timeout_s)
            self._thread = threading.Thread(target=self._run, name="gw-detector-client", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._fail_all()

    def _connect(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        backoff = Backoff(0.05, 1.0)
        while not self._stop.is_set():
            try:
                self._conn = Client(self.address, family="AF_UNIX", authkey=self.authkey)
                return True
            except (OSError, EOFError):
                if time.monotonic() >= deadline:
                    return False
                self._stop.wait(backoff.next_delay())
        return False

    # -- rings -------------------------------------------------------------------------------------------------
    def attach(self, camera_id: str, ring: Ring) -> None:
        with self._lock:
            self._rings[camera_id] = ring

    def detach(self, camera_id: str) -> Ring | None:
        with self._lock:
            ring = self._rings.pop(camera_id, None)
        if ring is not None:
            self._send(("forget", ring.name))
        return ring

    # -- requests ------------------------------------------------------------------------------------------------
    def submit(self, model: str, image: np.ndarray, callback: ResultCallback, camera_id: str | None = None) -> None:
        ring = self._rings.get(camera_id) if camera_id is not None else None
        if ring is None or self._conn is None:
            self.failed += 1
            callback(None)
            return
        ref, dropped = ring.put(image, hold=True)
        if ref is None:  # larger than a slot: cannot be, the slots are sized for the largest model input
            self.failed += 1
            callback(None)
            return
        with self._lock:
            if dropped is not None:
                victim = next((k for k, p in self._pending.items() if p.ref == dropped), None)
                lost = self._pending.pop(victim) if victim is not None else None
            else:
                lost = None
            self._next_id += 1
            req_id = self._next_id
            self._pending[req_id] = _Pending(ring, ref, callback)
        if lost is not None:
            self.dropped += 1
            lost.callback(None)
        if not self._send(("detect", req_id, ref, model)):
            self._answer(req_id, None)

    def _send(self, msg: tuple) -> bool:
        conn = self._conn
        if conn is None:
            return False
        try:
            with self._send_lock:
                conn.send(msg)
            return True
        except (OSError, EOFError, ValueError):
            return False

    def _answer(self, req_id: int, rows: np.ndarray | None) -> None:
        with self._lock:
            pending = self._pending.pop(req_id, None)
        if pending is None:
            return
        pending.ring.release(pending.ref)
        if rows is None:
            self.failed += 1
        else:
            self.total_images += 1
        try:
            pending.callback(rows)
        except Exception:  # noqa: BLE001
            log.exception("detection callback failed")

    def _fail_all(self) -> None:
        with self._lock:
            ids = list(self._pending)
        for req_id in ids:
            self._answer(req_id, None)

    def _run(self) -> None:
        while not self._stop.is_set():
            conn = self._conn
            if conn is None:
                if self._connect(3600.0):
                    self.reconnects += 1
                    log.info("reconnected to the detector process")
                continue
            try:
                msg = conn.recv()
            except (EOFError, OSError, TypeError):
                if self._stop.is_set():
                    return
                log.warning("detector process connection lost; detections pause until it is back")
                self._conn = None
                conn.close()
                self._fail_all()
                continue
            if msg[0] == "result":
                self._answer(msg[1], msg[2])

    # -- numbers -----------------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self._pending)

    def stats(self) -> dict:
        return {"detector_connected": self._conn is not None, "detect_pending": len(self._pending),
                "detect_failed": self.failed, "detect_ring_dropped": self.dropped,
                "detector_reconnects": self.reconnects, "images_total": self.total_images}
