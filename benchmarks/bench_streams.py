"""Throughput of the video path against N concurrent RTSP cameras: GridWatch, a naive baseline and the decode limit.

Why this exists: the design promises many cameras per small box (decode a sub-stream, gate by motion, batch the
detector across cameras). This measures how many real RTSP streams one GridWatch process sustains with its whole
chain — CameraManager → VideoPipeline (motion, batched detection with the real model, tracking, rules) → Redis
stream → Intake → ticket in SQLite — and compares it with what a naive script gets (baseline_naive.py) and with
what the machine can merely decode (PyAV, frames to null).

The cameras are a real GStreamer RTSP server (tests/fixtures/rtsp.py, the one the tests use) streaming real
footage from 127.0.0.1. It runs on the same cores, so its CPU is measured and reported separately.

    .venv/bin/python benchmarks/bench_streams.py --mode gridwatch --profile sub --n 1,4,8 --json out.json
    .venv/bin/python benchmarks/bench_streams.py --mode all --profile sub --n 1,4,16,32,64,100 --measure 20
    .venv/bin/python benchmarks/bench_streams.py --device cuda ...      # GPU machine (onnxruntime-gpu)
    .venv/bin/python benchmarks/bench_streams.py --mode side-by-side --video-workers 2 --n 8,16,24,32,40,48 ...

Modes: ``gridwatch`` (one process, CameraManager + VideoPipeline, as before), ``pool1`` / ``pool`` (the same
chain in ``detectors.worker_pool.WorkerPoolVideo`` with 1 / ``--video-workers`` worker processes and one detector
process), ``motiononly``, ``naive`` (the *fair* naive script: a thread per camera, cv2 + ultralytics predict at
GridWatch's detect_fps and imgsz with the same model file), ``naive5`` (the old naive row: predict on every
analysed frame, 5/s, at 640 — kept, labelled as such), ``ultralytics`` (ultralytics' own multi-stream predict over
a ``.streams`` list, vid_stride for detect_fps per stream, batched), ``decode`` (PyAV decode to null: the limit).
``side-by-side`` = decode, naive5, naive, ultralytics, pool1, pool in one run.

A step "sustains" N when skipped frames < 1 % of the frames due, the analysed rate is ≥ 97 % of N × 5 fps (less
one frame per camera over the window, for where its edges fall),
and (GridWatch only) p99 frame→ticket < 2 s. Sweeps stop at the first N that fails (``--no-stop`` to go on).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
MODEL = SHARED / "models" / "yolov8n_int8.onnx"
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO / "run" / "ultralytics"))

import psutil  # noqa: E402

log = logging.getLogger("bench_streams")

ANALYSIS_FPS = 5.0
SKIP_LIMIT = 0.01  # skipped / due
RATE_FLOOR = 0.97  # analysed / (N × 5 fps)
P99_LIMIT_S = 2.0
DECODE_FLOOR = 0.97  # decoded / (N × stream fps)
# Every camera: motion anomalies (at most one per detection.motion.cooldown_s, 20 s in config/demo.yaml) and an
# intrusion anomaly per new person track — so the detector, the tracker and the rules all work, and anomalies (each
# with its snapshot and clip) flow to tickets to be timed.
FULL_RULES = [{"kind": "motion"}, {"kind": "intrusion", "zone": "all"}]
# "motiononly" mode: the same chain without object rules, so the detector is never called — what the rest of the
# pipeline sustains (the ceiling if detection were free or decoupled from the frame rate).
MOTION_RULES = [{"kind": "motion"}]
MODES = ("gridwatch", "pool1", "pool", "motiononly", "naive", "naive5", "ultralytics", "decode")
SIDE_BY_SIDE = ("decode", "naive5", "naive", "ultralytics", "pool1", "pool")
LABELS = {
    "gridwatch": "GridWatch, one process", "pool1": "GridWatch, 1 video worker + detector process",
    "pool": "GridWatch, N video workers + detector process", "motiononly": "GridWatch without object rules",
    "naive": "naive (fair): thread per camera, cv2 + predict at GridWatch's detect_fps and imgsz",
    "naive5": "naive, 5 detects/s per camera at 640 (old row)",
    "ultralytics": "ultralytics multi-stream predict (.streams, vid_stride, batched; detection only)",
    "decode": "decode limit (PyAV, frames to null)",
}

# Stream profiles: mounts cycled over the N cameras; (footage, width, height, fps).
PROFILES: dict[str, dict[str, tuple[str, int, int, int]]] = {
    "sub": {  # the sub-stream a camera offers for analysis
        "campus": ("campus_pedestrians_pets2009.avi", 640, 360, 15),
        "traffic": ("intersection_traffic_cctv.mp4", 640, 360, 15),
    },
    "720p": {  # a main stream
        "plaza720": ("plaza_pedestrians_720p.avi", 1280, 720, 15),
        "town720": ("town_centre_pedestrians_1080p.mp4", 1280, 720, 15),
    },
}


# ---------------------------------------------------------------------------------------------------------------
# shared plumbing
# ---------------------------------------------------------------------------------------------------------------
class Unavailable(RuntimeError):
    """A prerequisite (footage, ffmpeg, GStreamer, Redis, the model) is missing; the message says which."""


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None for no samples."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


def _finish_step(rig: Any, ids: list[str], step: Any) -> Any:
    """Wait until intake has filed every anomaly of the step, then record its latencies and judge it."""
    wait_until(lambda: _intake_idle(rig), 30)
    f2a, a2t, f2t, tickets = rig.latencies(ids)
    step.anomalies, step.tickets = len(f2t), tickets
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    step.frame_to_anomaly_p50_ms, step.frame_to_anomaly_p99_ms = ms(percentile(f2a, 0.5)), ms(percentile(f2a, 0.99))
    step.anomaly_to_ticket_p50_ms, step.anomaly_to_ticket_p99_ms = ms(percentile(a2t, 0.5)), ms(percentile(a2t, 0.99))
    step.frame_to_ticket_p99_ms = ms(percentile(f2t, 0.99))
    judge(step, need_latency=True)
    return step


def wait_until(predicate: Callable[[], Any], timeout_s: float, interval_s: float = 0.1) -> Any:
    """Poll until predicate() is truthy; returns its value, or the last falsy one at the deadline."""
    deadline = time.monotonic() + timeout_s
    value = predicate()
    while not value and time.monotonic() < deadline:
        threading.Event().wait(interval_s)
        value = predicate()
    return value


class CpuMeter:
    """CPU seconds of this process, of the RTSP server, and of everything else under us, between two marks."""

    def __init__(self, server_pid: int | None):
        self.me = psutil.Process()
        self.server = psutil.Process(server_pid) if server_pid else None
        self._t0 = 0.0
        self._c0: dict[str, float] = {}

    def _cpu(self) -> dict[str, float]:
        def secs(p: psutil.Process) -> float:
            try:
                t = p.cpu_times()
                return t.user + t.system
            except psutil.Error:
                return 0.0

        own = secs(self.me)
        kids = self.me.children(recursive=True)
        server = secs(self.server) if self.server else 0.0
        other = sum(secs(k) for k in kids if not self.server or k.pid != self.server.pid)
        return {"gw": own, "server": server, "children": other}

    def start(self) -> None:
        self._t0, self._c0 = time.monotonic(), self._cpu()

    def stop(self) -> dict[str, float]:
        dt = max(time.monotonic() - self._t0, 1e-6)
        c1 = self._cpu()
        out = {f"cpu_{k}_pct": round(100 * (c1[k] - self._c0.get(k, 0.0)) / dt, 1) for k in c1}
        out["cpu_total_pct"] = round(sum(out.values()), 1)
        rss = self.me.memory_info().rss
        for k in self.me.children(recursive=True):
            if not self.server or k.pid != self.server.pid:
                try:
                    rss += k.memory_info().rss
                except psutil.Error:
                    pass
        out["rss_mb"] = round(rss / 2**20, 1)
        out["server_rss_mb"] = round(self.server.memory_info().rss / 2**20, 1) if self.server else 0.0
        return out


def start_server(profile: str):
    """The project's test RTSP server (tests/fixtures/rtsp.py) with this profile's mounts; raises Unavailable."""
    try:
        from tests.fixtures.rtsp import RtspServer, rtsp_available
        from tests.fixtures.media import transcoded
    except ImportError as exc:  # pragma: no cover - the fixture is part of the repo
        raise Unavailable(f"RTSP fixture not importable: {exc}") from None
    why = rtsp_available()
    if why:
        raise Unavailable(why)
    clips = {}
    for mount, (name, w, h, fps) in PROFILES[profile].items():
        if not (SHARED / "footage" / name).is_file():
            raise Unavailable(f"footage {name} is absent from {SHARED / 'footage'}")
        clips[mount] = transcoded(name, w, h, fps)
    server = RtspServer(clips)
    server.start()
    return server


def stream_urls(server, n: int) -> list[str]:
    mounts = sorted(server.clips)
    return [server.url(mounts[i % len(mounts)]) for i in range(n)]


def machine() -> dict[str, Any]:
    """What the figures were taken on, including how busy the machine was (load average)."""
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
        ort_version = ort.__version__
    except Exception:  # noqa: BLE001
        providers, ort_version = [], None
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": psutil.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "onnxruntime": ort_version, "ort_providers": providers,
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


@dataclass
class Step:
    """One measured N of one mode."""

    mode: str
    profile: str
    n: int
    device: str
    seconds: float = 0.0
    camera_fps: float = 0.0  # decoded pictures per second, all cameras
    process_fps: float = 0.0  # analysed frames per second, all cameras
    skipped_fps: float = 0.0
    due_fps: float = 0.0  # N × 5
    skipped_pct: float = 0.0
    detect_calls_per_s: float = 0.0
    detect_images_per_s: float = 0.0
    batch_mean: float = 0.0
    cameras_online: int = 0
    anomalies: int = 0
    tickets: int = 0
    frame_to_anomaly_p50_ms: float | None = None
    frame_to_anomaly_p99_ms: float | None = None
    anomaly_to_ticket_p50_ms: float | None = None
    anomaly_to_ticket_p99_ms: float | None = None
    frame_to_ticket_p99_ms: float | None = None
    analysis_lag_p99_ms: float | None = None  # naive: capture → result of a frame
    loadavg_1m: float = 0.0
    sustained: bool = False
    why_not: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)


T = TypeVar("T")


def measure_window(step: "Step", cpu: CpuMeter, counters: Callable[[], T], measure_s: float) -> tuple[T, T, float]:
    """The one measurement window every row is taken over: counters, CPU from the first mark to the second,
    the window's length and the load average into ``step``. One function, so GridWatch and the baselines it is
    compared with are measured alike (the rows differ in what they run, never in how they are timed).

    Returns the counters before and after and the window's seconds."""
    before = counters()
    t0 = time.monotonic()
    cpu.start()
    threading.Event().wait(measure_s)  # the measurement window itself (a measured interval, not a sync)
    step.cpu = cpu.stop()
    after = counters()
    dt = time.monotonic() - t0
    step.seconds = round(dt, 2)
    step.loadavg_1m = round(os.getloadavg()[0], 2)
    return before, after, dt


def judge(step: Step, need_latency: bool) -> None:
    reasons = []
    if step.cameras_online < step.n:
        reasons.append(f"only {step.cameras_online}/{step.n} streams delivered frames")
    if step.skipped_pct >= SKIP_LIMIT * 100:
        reasons.append(f"skipped {step.skipped_pct:.1f}% ≥ 1%")
    # one frame per camera of slack for where the window's edges fall between two analysis frames
    if step.process_fps < RATE_FLOOR * step.due_fps - step.n / max(step.seconds, 1.0):
        reasons.append(f"analysed {step.process_fps:.1f}/s < 97% of {step.due_fps:.0f}/s")
    if need_latency:
        p99 = step.frame_to_ticket_p99_ms
        if p99 is None:
            reasons.append("no anomaly reached a ticket")
        elif p99 >= P99_LIMIT_S * 1000:
            reasons.append(f"p99 frame→ticket {p99:.0f} ms ≥ 2 s")
    step.sustained = not reasons
    step.why_not = "; ".join(reasons)


# ---------------------------------------------------------------------------------------------------------------
# GridWatch: the real chain
# ---------------------------------------------------------------------------------------------------------------
class GridWatchRig:
    """One VideoPipeline + Intake for the whole sweep; each step attaches a fresh CameraManager with N cameras."""

    def __init__(self, device: str, workdir: Path, redis_url: str, max_batch: int | None = None,
                 imgsz: int | None = None, evidence: bool = True, in_process: bool = True):
        import redis

        from alerts.intake import Intake
        from alerts.store import open_store
        from alerts.streams import StreamKeys, publish_anomaly
        from alerts.grids import load_grid_file
        from detectors.pipeline import VideoPipeline
        from gateway.config import load_deployment

        if not MODEL.is_file():
            raise Unavailable(f"model {MODEL} is absent (see ../shared/models/MANIFEST.md)")
        dep = load_deployment(REPO / "config" / "demo.yaml")
        model = dep.detection.model.model_copy(update={
            "path": str(MODEL), "device": device,
            **({"max_batch": max_batch} if max_batch else {}), **({"imgsz": imgsz} if imgsz else {}),
        })
        update: dict[str, Any] = {"model": model}
        if not evidence:
            update["evidence"] = dep.detection.evidence.model_copy(update={"enabled": False})
        self.detection = dep.detection.model_copy(update=update)
        self.ingest = dep.ingest.model_copy(update={"allow_private_sources": True})
        self.base_dir = dep.base_dir
        self.workdir = workdir
        self.redis_url = redis_url
        self.redis = redis.Redis.from_url(redis_url)
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise Unavailable(f"Redis at {redis_url} is not reachable: {exc}") from None
        self.keys = StreamKeys(f"gwbench-{uuid.uuid4().hex[:10]}")
        grids = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
        self.store = open_store(f"sqlite:///{workdir / 'bench.db'}")
        self.store.sync_grids(grids)
        self.intake = Intake(self.store, grids, dep.alerts, self.redis, self.keys, consumer="bench")
        self.published: dict[str, float] = {}  # anomaly id -> wall clock when it was put on the stream
        self._pub_lock = threading.Lock()

        def publish(anomaly) -> None:
            publish_anomaly(self.redis, self.keys, anomaly)
            with self._pub_lock:
                self.published[anomaly.id] = time.time()

        self.pipeline = None
        self.infer_s = 0.0
        self.model_load_s = 0.0
        self.providers: list[str] = []
        self._stop = threading.Event()
        self._intake_thread = threading.Thread(target=self.intake.run_forever, args=(self._stop, 200),
                                               name="bench-intake", daemon=True)
        if not in_process:  # the worker pool publishes from its own processes; only intake runs here
            self._intake_thread.start()
            return
        t0 = time.monotonic()
        self.pipeline = VideoPipeline(self.detection, self.base_dir, workdir / "evidence", publish=publish)
        self.model_load_s = round(time.monotonic() - t0, 2)
        if not self.pipeline.model.loaded:
            raise Unavailable(f"detector did not load: {self.pipeline.model_status}")
        self.providers = _session_providers(self.pipeline.model)
        # Time every model call (the worker calls model.predict): inference seconds per measurement window.
        self.infer_s = 0.0
        model, predict = self.pipeline.model, self.pipeline.model.predict

        def timed_predict(images):
            t = time.perf_counter()
            try:
                return predict(images)
            finally:
                self.infer_s += time.perf_counter() - t

        model.predict = timed_predict
        self.pipeline.start()
        self._intake_thread.start()

    def close(self) -> None:
        self._stop.set()
        self._intake_thread.join(10)
        if self.pipeline is not None:
            self.pipeline.stop()
        self.store.close()
        for key in self.redis.scan_iter("\\{" + self.keys.prefix + "\\}:*", count=1000):
            self.redis.delete(key)
        self.redis.close()

    def cameras(self, urls: list[str], tag: str, rules: list[dict] | None = None):
        from gateway.config import Camera

        cams = []
        for i, url in enumerate(urls):
            cam = Camera.model_validate({
                "id": f"{tag}-{i:03d}", "name": f"bench {i}",
                "source": {"url": url, "open_timeout_s": 20, "read_timeout_s": 20},
                "pose": {"position": {"lon": 120.105 + 0.0004 * (i % 50), "lat": 30.262 + 0.0003 * (i // 50)}},
                "analysis": {"fps": ANALYSIS_FPS, "width": 640},
                "health": {"stall_after_s": 30, "offline_after_s": 120},
                "zones": [{"name": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}],
                "rules": rules or FULL_RULES,
            })
            if self.pipeline is not None:
                self.pipeline.configure_camera(cam.id, cam.pose, cam)
            cams.append(cam)
        return cams

    def committed_at(self) -> dict[str, float]:
        """anomaly id -> when its ticket was committed and published (the ``keys.events`` entry intake writes after the
        SQL commit, in the same MULTI as the duty-queue entry and the XACK; its id is Redis's clock in ms)."""
        out: dict[str, float] = {}
        last = "-"
        while True:
            entries = self.redis.xrange(self.keys.events, min=last, count=5000)
            if last != "-":
                entries = entries[1:]
            if not entries:
                return out
            for eid, fields in entries:
                try:
                    body = json.loads(fields[b"event"])
                except (KeyError, ValueError):
                    continue
                if body.get("anomaly_id"):
                    out[body["anomaly_id"]] = int(eid.split(b"-")[0]) / 1000.0
            last = entries[-1][0].decode()

    def stream_times(self) -> dict[str, float]:
        """anomaly id -> when Redis appended it to the anomaly stream (entry id, ms)."""
        from ingest.anomaly import Anomaly

        out: dict[str, float] = {}
        for eid, fields in self.redis.xrange(self.keys.anomalies):
            try:
                out[Anomaly.from_stream(fields).id] = int(eid.split(b"-")[0]) / 1000.0
            except ValueError:
                continue
        return out

    def latencies(self, ids: set[str]) -> tuple[list[float], list[float], list[float], int]:
        """(frame→anomaly, anomaly→ticket, frame→ticket) in seconds for the occurrences of these cameras.

        frame = Anomaly.observed_at (the frame's capture time), anomaly = when the pipeline put it on the stream,
        ticket = when the committed ticket was published (see ``committed_at``; Occurrence.received_at, which the
        store holds, is taken just before the commit and is the fallback)."""
        from sqlalchemy import select

        from alerts.models import Occurrence

        with self.store.read() as s:
            rows = s.execute(select(Occurrence.anomaly_id, Occurrence.observed_at, Occurrence.received_at,
                                    Occurrence.ticket_id).where(Occurrence.source_id.in_(ids))).all()
        committed = self.committed_at()
        f2a, a2t, f2t = [], [], []
        tickets = set()
        with self._pub_lock:
            pub = dict(self.published)
        if not pub:  # published from other processes: the stream entry's id is when Redis took it
            pub = self.stream_times()
        for aid, observed, received, ticket in rows:
            tickets.add(ticket)
            obs = observed.timestamp()
            done = committed.get(aid, received.timestamp())
            f2t.append(done - obs)
            if aid in pub:
                f2a.append(pub[aid] - obs)
                a2t.append(done - pub[aid])
        return f2a, a2t, f2t, len(tickets)


def _session_providers(model: Any) -> list[str]:
    """The onnxruntime execution providers the loaded detector really uses (CUDA or CPU), best effort."""
    try:
        backend = model._model.predictor.model  # ultralytics AutoBackend
        for obj in (backend, getattr(backend, "backend", None)):
            session = getattr(obj, "session", None)
            if session is not None:
                return list(session.get_providers())
    except Exception:  # noqa: BLE001 - ultralytics internals move between versions
        pass
    return []


def run_gridwatch_step(rig: GridWatchRig, server, n: int, profile: str, device: str, warmup_s: float,
                       measure_s: float, cpu: CpuMeter, mode: str = "gridwatch") -> Step:
    from ingest.video import CameraManager

    tag = f"{profile}-n{n}-{uuid.uuid4().hex[:4]}"
    cams = rig.cameras(stream_urls(server, n), tag, MOTION_RULES if mode == "motiononly" else FULL_RULES)
    ids = {c.id for c in cams}
    manager = CameraManager(rig.ingest, rig.base_dir, sink=rig.pipeline.submit)
    step = Step(mode, profile, n, device, due_fps=n * ANALYSIS_FPS)
    try:
        manager.start(cams)

        def online() -> int:
            return sum(1 for cid, st in manager.status().items() if cid in ids and st.decoded > 0)

        wait_until(lambda: online() == n, 30 + n * 0.5)
        threading.Event().wait(warmup_s)  # let tracks, background models and batching settle (a warm-up, not a sync)

        def counters():
            ws = {cid: manager.status()[cid] for cid in ids}
            ps = rig.pipeline.stats()
            pc = ps["cameras"]
            return {
                "decoded": sum(w.decoded for w in ws.values()),
                "worker_skipped": sum(w.skipped for w in ws.values()),
                "processed": sum(pc[c]["processed"] for c in ids if c in pc),
                "pipe_skipped": sum(pc[c]["skipped"] for c in ids if c in pc),
                "calls": ps["calls_total"], "images": ps["images_total"], "infer_s": rig.infer_s,
                "online": sum(1 for w in ws.values() if w.state == "online"),
            }

        first_pub = len(rig.published)
        c0, c1, dt = measure_window(step, cpu, counters, measure_s)
        d = {k: c1[k] - c0[k] for k in c0}
        step.cameras_online = c1["online"]
        step.camera_fps = round(d["decoded"] / dt, 1)
        step.process_fps = round(d["processed"] / dt, 1)
        skipped = d["worker_skipped"] + d["pipe_skipped"]
        step.skipped_fps = round(skipped / dt, 2)
        step.skipped_pct = round(100 * skipped / max(d["processed"] + skipped, 1), 2)
        step.detect_calls_per_s = round(d["calls"] / dt, 1)
        step.detect_images_per_s = round(d["images"] / dt, 1)
        step.batch_mean = round(d["images"] / d["calls"], 2) if d["calls"] else 0.0
        step.extra = {"worker_skipped": d["worker_skipped"], "pipeline_skipped": d["pipe_skipped"],
                      "anomalies_in_window": len(rig.published) - first_pub,
                      "inference_ms_per_call": round(1000 * d["infer_s"] / d["calls"], 1) if d["calls"] else None,
                      "inference_ms_per_image": round(1000 * d["infer_s"] / d["images"], 1) if d["images"] else None,
                      # share of the window the one inference thread spent in model calls (≈100: detector-bound)
                      "detector_busy_pct": round(100 * d["infer_s"] / dt, 1),
                      "model": rig.pipeline.model_status, "model_load_s": rig.model_load_s,
                      "providers": rig.providers, "clips_pending": rig.pipeline.stats().get("clips_pending")}
    finally:
        manager.stop()
        for cid in ids:
            rig.pipeline.remove_camera(cid)
    # every anomaly of this step filed? (poll the stream's pending count with a deadline)
    return _finish_step(rig, ids, step)


def _proc_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of these processes, those that still exist."""
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def run_pool_step(rig: GridWatchRig, server, n: int, profile: str, device: str, warmup_s: float, measure_s: float,
                  cpu: CpuMeter, workers: int, mode: str = "pool") -> Step:
    """The full chain in WorkerPoolVideo: ``workers`` video worker processes + one detector process per step."""
    from alerts.publishing import OutboxFactory
    from detectors.worker_pool import VideoParts, WorkerPoolVideo

    tag = f"{profile}-w{workers}-n{n}-{uuid.uuid4().hex[:4]}"
    cams = rig.cameras(stream_urls(server, n), tag, FULL_RULES)
    ids = {c.id for c in cams}
    parts = VideoParts(rig.ingest, rig.detection, rig.base_dir, rig.workdir / "evidence")
    engine = WorkerPoolVideo(parts, workers, OutboxFactory(rig.redis_url, rig.keys.prefix))
    step = Step(mode, profile, n, device, due_fps=n * ANALYSIS_FPS)
    t_load = time.monotonic()
    try:
        engine.start(cams)
        load_s = round(time.monotonic() - t_load, 2)

        def online() -> int:
            return sum(1 for cid, st in engine.camera_status().items() if cid in ids and st.get("decoded", 0) > 0)

        wait_until(lambda: online() == n, 60 + n * 0.5)
        threading.Event().wait(warmup_s)  # let tracks, background models and batching settle (a warm-up, not a sync)

        def counters():
            st = engine.camera_status()
            stats = engine.stats()
            per_worker: dict[int, dict[str, float]] = {}
            for cid in ids:
                e = st.get(cid, {})
                w = per_worker.setdefault(e.get("worker", -1), {"decoded": 0, "worker_skipped": 0, "processed": 0,
                                                                 "pipe_skipped": 0})
                a = e.get("analysis", {})
                w["decoded"] += e.get("decoded", 0)
                w["worker_skipped"] += e.get("skipped", 0)
                w["processed"] += a.get("processed", 0)
                w["pipe_skipped"] += a.get("skipped", 0)
            for w in stats["workers"]:
                if w["index"] in per_worker:
                    per_worker[w["index"]]["at"] = w.get("reported_at", time.time())
            det = stats["detector"]
            return {"workers": per_worker, "calls": det.get("calls_total", 0), "images": det.get("images_total", 0),
                    "online": sum(1 for c in ids if st.get(c, {}).get("state") == "online"), "at": time.time()}

        pids = engine.pids()
        det_pid = [pids["detector"]] if pids.get("detector") else []
        worker_pids = [p for k, p in pids.items() if k != "detector" and p]
        c0 = counters()
        d0, w0 = _proc_cpu(det_pid), _proc_cpu(worker_pids)
        t0 = time.monotonic()
        cpu.start()
        threading.Event().wait(measure_s)  # the measurement window itself
        step.cpu = cpu.stop()
        dt = time.monotonic() - t0
        d1, w1 = _proc_cpu(det_pid), _proc_cpu(worker_pids)
        wait_until(lambda: all(w.get("reported_at", 0) > c0["at"] + measure_s - 0.01 for w in engine.stats()["workers"]),
                   5.0, 0.05)  # a report from after the window's end (each worker reports twice a second)
        c1 = counters()
        step.seconds = round(dt, 2)
        step.loadavg_1m = round(os.getloadavg()[0], 2)
        rates = {k: 0.0 for k in ("decoded", "worker_skipped", "processed", "pipe_skipped")}
        totals = dict.fromkeys(rates, 0)
        for w, a in c1["workers"].items():
            b = c0["workers"].get(w)
            if b is None:
                continue
            span = max(a.get("at", 0) - b.get("at", 0), 1e-3)
            for k in rates:
                rates[k] += (a[k] - b[k]) / span
                totals[k] += a[k] - b[k]
        step.cameras_online = c1["online"]
        step.camera_fps = round(rates["decoded"], 1)
        step.process_fps = round(rates["processed"], 1)
        skipped = rates["worker_skipped"] + rates["pipe_skipped"]
        step.skipped_fps = round(skipped, 2)
        step.skipped_pct = round(100 * skipped / max(rates["processed"] + skipped, 1e-9), 2)
        span = max(c1["at"] - c0["at"], 1e-3)
        step.detect_calls_per_s = round((c1["calls"] - c0["calls"]) / span, 1)
        step.detect_images_per_s = round((c1["images"] - c0["images"]) / span, 1)
        step.batch_mean = round((c1["images"] - c0["images"]) / (c1["calls"] - c0["calls"]), 2) if c1["calls"] > c0["calls"] else 0.0
        stats = engine.stats()
        step.extra = {"video_workers": workers, "worker_skipped": totals["worker_skipped"],
                      "pipeline_skipped": totals["pipe_skipped"], "ring_skipped": stats["ring_skipped"],
                      "cpu_detector_pct": round(100 * (d1 - d0) / dt, 1),
                      "cpu_workers_pct": round(100 * (w1 - w0) / dt, 1),
                      "inference_ms_p50": stats["detector"].get("inference_ms_p50"),
                      "model": engine.model_status, "engine_start_s": load_s,
                      "worker_restarts": sum(w["restarts"] for w in stats["workers"])}
    finally:
        engine.stop()
    return _finish_step(rig, ids, step)


def _intake_idle(rig: GridWatchRig) -> bool:
    try:
        info = rig.redis.xinfo_groups(rig.keys.anomalies)
    except Exception:  # noqa: BLE001 - no stream yet: nothing was published
        return True
    return all(int(g.get("pending", 0)) == 0 and int(g.get("lag", 0) or 0) == 0 for g in info)


# ---------------------------------------------------------------------------------------------------------------
# decode limit: PyAV decoding the same streams, frames to null
# ---------------------------------------------------------------------------------------------------------------
def run_decode_step(server, n: int, profile: str, warmup_s: float, measure_s: float, cpu: CpuMeter) -> Step:
    """N threads, each demuxing and decoding one RTSP stream with PyAV (the GIL is released while decoding)."""
    import av

    stop = threading.Event()
    counts = [0] * n
    errors: list[str] = []

    def worker(i: int, url: str) -> None:
        try:
            with av.open(url, options={"rtsp_transport": "tcp", "probesize": "32768", "analyzeduration": "500000"},
                         timeout=(20, 20)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "SLICE"  # as GridWatch decodes
                for packet in container.demux(stream):
                    if stop.is_set():
                        return
                    for _frame in packet.decode():
                        counts[i] += 1
        except Exception as exc:  # noqa: BLE001 - reported in the step
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(i, u), daemon=True) for i, u in enumerate(stream_urls(server, n))]
    for t in threads:
        t.start()
    step = Step("decode", profile, n, "cpu")
    fps = next(iter(PROFILES[profile].values()))[3]
    try:
        wait_until(lambda: all(c > 0 for c in counts) or errors, 30 + n * 0.5)
        threading.Event().wait(warmup_s)
        c0, c1, dt = measure_window(step, cpu, lambda: list(counts), measure_s)
    finally:
        stop.set()
        for t in threads:
            t.join(5)
    per = [(b - a) / dt for a, b in zip(c0, c1)]
    step.camera_fps = round(sum(per), 1)
    step.process_fps = step.camera_fps
    step.due_fps = n * fps
    step.cameras_online = sum(1 for p in per if p > 0)
    step.extra = {"slowest_stream_fps": round(min(per), 2) if per else 0.0, "errors": errors[:3]}
    step.sustained = step.cameras_online == n and min(per, default=0) >= DECODE_FLOOR * fps and not errors
    if not step.sustained:
        step.why_not = f"slowest stream {min(per, default=0):.1f} fps < {DECODE_FLOOR * fps:.1f}" + (
            f"; errors: {errors[:1]}" if errors else "")
    return step


# ---------------------------------------------------------------------------------------------------------------
# sweeps
# ---------------------------------------------------------------------------------------------------------------
def sweep(mode: str, ns: Iterable[int], runner: Callable[[int], Step], stop_on_fail: bool = True) -> list[Step]:
    steps: list[Step] = []
    fails = 0
    for n in ns:
        step = runner(n)
        steps.append(step)
        log.info("%s n=%d: %s", mode, n, "sustained" if step.sustained else f"NOT sustained ({step.why_not})")
        print(f"  {mode:9} {step.profile:5} N={n:<4} cam {step.camera_fps:7.1f}/s  proc {step.process_fps:6.1f}/s  "
              f"skip {step.skipped_pct:5.2f}%  cpu {step.cpu.get('cpu_total_pct', 0):5.0f}%  "
              f"{'OK' if step.sustained else 'FAIL: ' + step.why_not}", flush=True)
        if not step.sustained:
            fails += 1
            if stop_on_fail:
                break
    return steps


def largest_sustained(steps: list[Step]) -> int:
    """The largest N sustained before the first failure (a sweep is monotone in load)."""
    best = 0
    for s in sorted(steps, key=lambda s: s.n):
        if not s.sustained:
            break
        best = s.n
    return best


def _git_revision() -> str:
    import subprocess

    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def detection_settings(device: str, imgsz: int | None) -> dict[str, Any]:
    """What GridWatch's config runs (config/demo.yaml, --imgsz over it): the baselines are given the same."""
    from detectors.model import default_cache_dir
    from detectors.onnx_prepare import prepare_onnx
    from gateway.config import load_deployment

    m = load_deployment(REPO / "config" / "demo.yaml").detection.model
    size = imgsz or m.imgsz
    cache = Path(m.cache_dir).expanduser() if m.cache_dir else default_cache_dir()
    try:  # the copy GridWatch really loads (dynamic batch, float weights), so every contender runs the same file
        prepared = str(prepare_onnx(MODEL, cache, size, m.max_batch)) if MODEL.is_file() else None
    except Exception as exc:  # noqa: BLE001 - recorded; the baselines then use the shared file as is
        log.warning("cannot prepare %s: %s", MODEL, exc)
        prepared = None
    return {"imgsz": size, "detect_fps": m.detect_fps, "max_batch": m.max_batch, "model_file": str(MODEL),
            "prepared_model_file": prepared, "device": device}


def cpu_split(steps: list[Step], by_mode: dict[str, int]) -> dict[str, Any]:
    """Per-stream CPU (% of one core) at each mode's largest sustained N: decode / detector / the rest.

    decode: the decode mode's own process CPU per stream at its largest sustained N (PyAV decoding alone);
    detector: the detector process (pool modes) or the inference thread's busy share (gridwatch, an estimate);
    rest: everything else GridWatch's processes used (delivery, motion, tracking, rules, evidence, intake)."""
    at = {m: next((s for s in steps if s.mode == m and s.n == n), None) for m, n in by_mode.items() if n}
    dec = at.get("decode")
    decode_per = round(dec.cpu.get("cpu_gw_pct", 0.0) / dec.n, 2) if dec else None
    out: dict[str, Any] = {"decode_only_per_stream_pct": decode_per}
    for mode, step in at.items():
        if step is None or mode == "decode":
            continue
        total = step.cpu.get("cpu_total_pct", 0.0) - step.cpu.get("cpu_server_pct", 0.0)
        row: dict[str, Any] = {"n": step.n, "total_per_stream_pct": round(total / step.n, 2)}
        if mode in ("pool", "pool1"):
            row["detector_per_stream_pct"] = round(step.extra.get("cpu_detector_pct", 0.0) / step.n, 2)
            row["detector_basis"] = "CPU of the detector process"
        elif mode in ("gridwatch", "ultralytics", "naive", "naive5"):
            row["detector_per_stream_pct"] = round(step.extra.get("detector_busy_pct", 0.0)
                                                   * (step.n if mode.startswith("naive") else 1) / step.n, 2)
            # wall time inside model calls: on a busy machine it exceeds their CPU (rest may then come out < 0)
            row["detector_basis"] = "wall time in model calls (estimate; exceeds CPU on a loaded machine)"
        if decode_per is not None:
            row["decode_per_stream_pct"] = decode_per
            row["rest_per_stream_pct"] = round(row["total_per_stream_pct"] - decode_per
                                               - row.get("detector_per_stream_pct", 0.0), 2)
        out[mode] = row
    return out


def run(modes: list[str], profile: str, ns: list[int], device: str, warmup_s: float, measure_s: float,
        redis_url: str, stop_on_fail: bool = True, naive_ns: list[int] | None = None,
        decode_ns: list[int] | None = None, imgsz: int | None = None,
        motion_ns: list[int] | None = None, evidence: bool = True, video_workers: int | None = None,
        ultra_ns: list[int] | None = None) -> dict[str, Any]:
    """Run the chosen modes against one RTSP server; returns a JSON-able result (machine, steps, summary)."""
    workers = video_workers or os.cpu_count() or 1
    settings = detection_settings(device, imgsz)
    result: dict[str, Any] = {"profile": profile, "device": device, "imgsz": settings["imgsz"],
                              "detect_fps": settings["detect_fps"], "model_file": settings["model_file"],
                              "prepared_model_file": settings["prepared_model_file"], "video_workers": workers,
                              "git_revision": _git_revision(), "evidence": evidence, "labels": LABELS,
                              "machine": machine(), "steps": [],
                              "warmup_s": warmup_s, "measure_s": measure_s, "started": time.time()}
    baseline_model = Path(settings["prepared_model_file"] or MODEL)
    server = start_server(profile)
    steps: list[Step] = []
    try:
        cpu = CpuMeter(server.proc.pid if server.proc else None)
        cpu.start()
        threading.Event().wait(1.0)
        result["server_idle"] = cpu.stop()
        if "decode" in modes:
            steps += sweep("decode", decode_ns or ns,
                           lambda n: run_decode_step(server, n, profile, warmup_s * 0.5, measure_s * 0.6, cpu),
                           stop_on_fail)
        if "naive5" in modes:
            from benchmarks.baseline_naive import run_naive_step

            steps += sweep("naive5", naive_ns or ns,
                           lambda n: run_naive_step(stream_urls(server, n), n, profile, device, warmup_s, measure_s,
                                                    cpu, rate=ANALYSIS_FPS, imgsz=640, model_path=MODEL,
                                                    mode="naive5"),
                           stop_on_fail)
        if "naive" in modes:
            from benchmarks.baseline_naive import run_naive_step

            steps += sweep("naive", naive_ns or ns,
                           lambda n: run_naive_step(stream_urls(server, n), n, profile, device, warmup_s, measure_s,
                                                    cpu, rate=settings["detect_fps"], imgsz=settings["imgsz"],
                                                    model_path=baseline_model, mode="naive"),
                           stop_on_fail)
        if "ultralytics" in modes:
            from benchmarks.baseline_ultralytics import run_ultralytics_step

            steps += sweep("ultralytics", ultra_ns or ns,
                           lambda n: run_ultralytics_step(stream_urls(server, n), n, profile, device, warmup_s,
                                                          measure_s, cpu, baseline_model, settings["imgsz"],
                                                          settings["detect_fps"]),
                           stop_on_fail)
        if "gridwatch" in modes or "motiononly" in modes:
            with tempfile.TemporaryDirectory(prefix="gwbench-") as tmp:
                rig = GridWatchRig(device, Path(tmp), redis_url, imgsz=imgsz, evidence=evidence)
                try:
                    for mode in ("gridwatch", "motiononly"):
                        if mode in modes:
                            steps += sweep(mode, motion_ns or ns if mode == "motiononly" else ns,
                                           lambda n, m=mode: run_gridwatch_step(rig, server, n, profile, device,
                                                                                warmup_s, measure_s, cpu, m),
                                           stop_on_fail)
                finally:
                    rig.close()
        if "pool1" in modes or "pool" in modes:
            with tempfile.TemporaryDirectory(prefix="gwbench-") as tmp:
                rig = GridWatchRig(device, Path(tmp), redis_url, imgsz=imgsz, evidence=evidence, in_process=False)
                try:
                    for mode, w in (("pool1", 1), ("pool", workers)):
                        if mode in modes:
                            steps += sweep(mode, ns,
                                           lambda n, m=mode, w=w: run_pool_step(rig, server, n, profile, device,
                                                                                warmup_s, measure_s, cpu, w, m),
                                           stop_on_fail)
                finally:
                    rig.close()
        result["steps"] = [asdict(s) for s in steps]
    finally:
        server.stop()
    by_mode = {m: largest_sustained([s for s in steps if s.mode == m]) for m in MODES}
    summary: dict[str, Any] = {f"{m}_sustained": v for m, v in by_mode.items() if m in modes}
    tested = {m: max((s.n for s in steps if s.mode == m), default=0) for m in by_mode}
    summary.update({f"{m}_max_tested": v for m, v in tested.items() if m in modes})
    for top in ("gridwatch", "pool"):
        if not by_mode[top]:
            continue
        for other in ("naive", "naive5", "ultralytics", "decode", "pool1", "gridwatch"):
            if other != top and by_mode[other] and other in modes:
                summary[f"{top}_over_{other}"] = round(by_mode[top] / by_mode[other], 2)
    summary["cpu_split"] = cpu_split(steps, {m: v for m, v in by_mode.items() if m in modes})
    summary["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    result["summary"] = summary
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["finished"] = time.time()
    return result


def parse_ns(text: str) -> list[int]:
    try:
        ns = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--n wants comma-separated integers, not {text!r}") from None
    if not ns or ns[0] < 1:
        raise argparse.ArgumentTypeError("--n wants positive integers")
    return ns


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="all", help=f"{', '.join(MODES)}; all (gridwatch, motiononly, naive, decode) or "
                    "side-by-side (decode, naive5, naive, ultralytics, pool1, pool); comma-separated")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="sub")
    ap.add_argument("--n", type=parse_ns, default=parse_ns("1,4,8"), help="stream counts, e.g. 1,4,16,32,64,100")
    ap.add_argument("--naive-n", type=parse_ns, default=None, help="stream counts for the baseline (default: --n)")
    ap.add_argument("--motion-n", type=parse_ns, default=None, help="stream counts for motiononly (default: --n)")
    ap.add_argument("--ultralytics-n", type=parse_ns, default=None, help="stream counts for ultralytics (default: --n)")
    ap.add_argument("--video-workers", type=int, default=None,
                    help="worker processes of the pool mode (default: the number of cores)")
    ap.add_argument("--decode-n", type=parse_ns, default=None, help="stream counts for the decode limit (default: --n)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:0 (GPU: onnxruntime-gpu + a CUDA torch)")
    ap.add_argument("--imgsz", type=int, default=None, help="detector input size (default: config/demo.yaml's, 320)")
    ap.add_argument("--no-evidence", action="store_true", help="no snapshots/clips per anomaly (to measure their cost)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds after every stream delivers, before measuring")
    ap.add_argument("--measure", type=float, default=6.0, help="seconds of the measurement window")
    ap.add_argument("--redis", default=os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--no-stop", action="store_true", help="go on after the first N that is not sustained")
    ap.add_argument("--json", type=Path, help="write the result here")
    # The streams come from this benchmark's own RTSP server on loopback, which a deployment never may use.
    os.environ.setdefault("GRIDWATCH_TEST_ONLY_LOOPBACK_CAMERAS", "1")
    args = ap.parse_args(argv)
    if args.mode == "all":
        modes = ["gridwatch", "motiononly", "naive", "decode"]
    elif args.mode == "side-by-side":
        modes = list(SIDE_BY_SIDE)
    else:
        modes = [m.strip() for m in args.mode.split(",")]
    bad = set(modes) - set(MODES)
    if bad:
        ap.error(f"unknown mode(s) {sorted(bad)}")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = run(modes, args.profile, args.n, args.device, args.warmup, args.measure, args.redis,
                     stop_on_fail=not args.no_stop, naive_ns=args.naive_n, decode_ns=args.decode_n,
                     imgsz=args.imgsz, motion_ns=args.motion_n, evidence=not args.no_evidence,
                     video_workers=args.video_workers, ultra_ns=args.ultralytics_n)
    except Unavailable as exc:
        print(f"bench_streams: cannot run: {exc}", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps({"unavailable": str(exc), "profile": args.profile}), encoding="utf-8")
        return 3
    print(json.dumps(result["summary"], indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Decoder/ORT threads of the last step may still be unwinding; a normal interpreter teardown then aborts in
    # native code ("terminate called without an active exception"). The results are written: leave at once.
    os._exit(code)
