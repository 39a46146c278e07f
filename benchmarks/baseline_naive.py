"""The naive baseline GridWatch is compared with: one thread per camera, ``cv2.VideoCapture(rtsp)`` and an
ultralytics ``YOLO(model).predict`` every 1/rate s, no motion gating, no batching.

Two rows: ``naive`` is the *fair* one — the same model file GridWatch runs (the prepared copy), the same input
size and the same per-camera detection rate as GridWatch's config (``model.detect_fps``, 1/s); ``naive5`` is the
old row, a predict on every analysed frame (5/s) at 640, kept for comparison with older results and labelled so.

Why: "≥ 10× the naive script" only means something if the naive script is the one people actually write first —
this is it (each thread loads its own model, as copy-pasted examples do). It grabs every picture so the stream does
not back up, retrieves (converts) only the frames due at 5 fps, and predicts on them in the same thread.

    .venv/bin/python benchmarks/bench_streams.py --mode naive --n 1,2,4,8
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from benchmarks.bench_streams import (
    ANALYSIS_FPS,
    MODEL,
    PROFILES,
    RATE_FLOOR,
    CpuMeter,
    Step,
    Unavailable,
    judge,
    measure_window,
    percentile,
    wait_until,
)

# OpenCV's FFmpeg backend reads its RTSP options from the environment; TCP like GridWatch's cameras.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


class NaiveCamera(threading.Thread):
    """One camera of the naive script: capture, and predict in the capture thread every 1/5 s."""

    def __init__(self, url: str, model_path: Path, device: str, stop: threading.Event, rate: float = ANALYSIS_FPS,
                 imgsz: int = 640):
        super().__init__(daemon=True, name=f"naive-{url.rsplit('/', 1)[-1]}")
        self.url, self.model_path, self.device, self.stop = url, model_path, device, stop
        self.rate, self.imgsz = rate, imgsz
        self.grabbed = 0
        self.analysed = 0
        self.missed = 0  # periods of 1/5 s that passed with no analysis (the thread was busy predicting)
        self.lags: list[float] = []  # picture retrieved → result, seconds
        self.error: str | None = None
        self.ready = threading.Event()

    def run(self) -> None:
        import cv2
        from ultralytics import YOLO

        try:
            model = YOLO(str(self.model_path), task="detect")
            cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG)
            if not cap.isOpened():
                self.error = f"cv2.VideoCapture could not open {self.url}"
                return
        except Exception as exc:  # noqa: BLE001 - reported in the step
            self.error = f"{type(exc).__name__}: {exc}"
            return
        period = 1.0 / self.rate
        next_due = 0.0
        try:
            while not self.stop.is_set():
                if not cap.grab():
                    self.error = "stream ended"
                    return
                self.grabbed += 1
                now = time.monotonic()
                if now < next_due:
                    continue
                if next_due:
                    self.missed += max(0, int((now - next_due) / period))
                next_due = (next_due + period if next_due else now + period)
                next_due = max(next_due, now + period / 2)
                ok, image = cap.retrieve()
                if not ok:
                    continue
                t0 = time.time()
                # rect=False: letterbox to a square, which the prepared fixed-size ONNX needs (and what GridWatch's crops are)
                model.predict(image, imgsz=self.imgsz, rect=False, conf=0.35, verbose=False, device=self.device)
                self.lags.append(time.time() - t0)
                self.analysed += 1
                self.ready.set()
        except Exception as exc:  # noqa: BLE001
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            cap.release()


def run_naive_step(urls: list[str], n: int, profile: str, device: str, warmup_s: float, measure_s: float,
                   cpu: CpuMeter, rate: float = ANALYSIS_FPS, imgsz: int = 640, model_path: Path | None = None,
                   mode: str = "naive5") -> Step:
    """Start N naive cameras, wait until each has analysed a frame, then measure for ``measure_s``.

    ``rate`` predicts per camera per second, at ``imgsz``, with ``model_path`` (default: the shared model file)."""
    model_path = model_path or MODEL
    if not Path(model_path).is_file():
        raise Unavailable(f"model {model_path} is absent")
    import ultralytics  # noqa: F401 - import once here, not N times concurrently in the threads

    stop = threading.Event()
    cams = [NaiveCamera(u, Path(model_path), device, stop, rate, imgsz) for u in urls]
    for c in cams:
        c.start()
    step = Step(mode, profile, n, device, due_fps=n * rate)
    stream_fps = next(iter(PROFILES[profile].values()))[3]
    try:
        wait_until(lambda: all(c.ready.is_set() or c.error for c in cams), 60 + 3 * n, 0.2)
        threading.Event().wait(warmup_s)

        def snap():
            return [(c.grabbed, c.analysed, c.missed, len(c.lags)) for c in cams]

        s0, s1, dt = measure_window(step, cpu, snap, measure_s)
    finally:
        stop.set()
        for c in cams:
            c.join(15)
    grabbed = sum(b[0] - a[0] for a, b in zip(s0, s1))
    analysed = sum(b[1] - a[1] for a, b in zip(s0, s1))
    missed = sum(b[2] - a[2] for a, b in zip(s0, s1))
    lags = [lag for c, a, b in zip(cams, s0, s1) for lag in c.lags[a[3]:b[3]]]
    step.camera_fps = round(grabbed / dt, 1)
    step.process_fps = round(analysed / dt, 1)
    step.skipped_fps = round(missed / dt, 2)
    step.skipped_pct = round(100 * missed / max(analysed + missed, 1), 2)
    step.detect_calls_per_s = step.detect_images_per_s = step.process_fps
    step.batch_mean = 1.0 if analysed else 0.0
    step.cameras_online = sum(1 for a, b in zip(s0, s1) if b[0] > a[0])
    p99 = percentile(lags, 0.99)
    step.analysis_lag_p99_ms = None if p99 is None else round(p99 * 1000, 1)
    errors = [c.error for c in cams if c.error]
    step.extra = {"errors": errors[:3],
                  "inference_ms_per_image": round(sum(lags) / len(lags) * 1000, 1) if lags else None,
                  "detector_busy_pct": round(100 * sum(lags) / dt / max(n, 1), 1),
                  "predicts_per_camera_per_s": rate, "imgsz": imgsz, "model_file": str(model_path)}
    judge(step, need_latency=False)
    if step.camera_fps < RATE_FLOOR * n * stream_fps:  # the capture fell behind the live stream: latency grows
        step.sustained = False
        behind = f"capture {step.camera_fps:.0f}/s < 97% of {n * stream_fps}/s (stream backing up)"
        step.why_not = "; ".join(x for x in (step.why_not, behind) if x)
    return step
