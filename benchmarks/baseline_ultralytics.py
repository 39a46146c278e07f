"""The strongest low-effort peer: ultralytics' own multi-stream predict over the same RTSP URLs.

What a user would write instead of GridWatch: a ``.streams`` file listing the cameras as the source,
``vid_stride`` so each stream yields one frame per second (GridWatch's ``model.detect_fps``), and the model
batched over all streams in one call (ultralytics' LoadStreams: one capture thread per stream, the newest frame
of each). It does detection only — no motion, tracking, rules, evidence or tickets — with the same prepared model
file GridWatch runs, at the same input size, ``rect=False`` (letterbox to a square, as GridWatch's crops).

    .venv/bin/python benchmarks/bench_streams.py --mode ultralytics --n 8,16,32
"""
from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from benchmarks.bench_streams import PROFILES, RATE_FLOOR, CpuMeter, Step, Unavailable, measure_window, wait_until


def run_ultralytics_step(urls: list[str], n: int, profile: str, device: str, warmup_s: float, measure_s: float,
                         cpu: CpuMeter, model_path: Path, imgsz: int, detect_fps: float) -> Step:
    """N streams through one ``YOLO.predict(source=*.streams, stream=True)`` loop; images/s over the window."""
    if not Path(model_path).is_file():
        raise Unavailable(f"model {model_path} is absent")
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    from ultralytics import YOLO

    stream_fps = next(iter(PROFILES[profile].values()))[3]
    vid_stride = max(1, round(stream_fps / detect_fps))
    rate = stream_fps / vid_stride
    step = Step("ultralytics", profile, n, device, due_fps=n * rate)
    model = YOLO(str(model_path), task="detect")
    stop = threading.Event()
    counts = {"batches": 0, "images": 0, "infer_ms": 0.0}
    errors: list[str] = []
    with tempfile.NamedTemporaryFile("w", suffix=".streams", delete=False) as f:
        f.write("\n".join(urls) + "\n")
        streams_file = f.name

    def loop() -> None:
        try:
            for result in model.predict(source=streams_file, stream=True, vid_stride=vid_stride, imgsz=imgsz,
                                        rect=False, conf=0.35, device=device, verbose=False):
                counts["images"] += 1
                counts["infer_ms"] += float(result.speed.get("inference", 0.0) or 0.0)
                if stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - reported in the step
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            dataset = getattr(getattr(model, "predictor", None), "dataset", None)
            if dataset is not None and hasattr(dataset, "close"):
                try:
                    dataset.close()
                except Exception:  # noqa: BLE001
                    pass

    thread = threading.Thread(target=loop, name="ultralytics-streams", daemon=True)
    thread.start()
    try:
        wait_until(lambda: counts["images"] >= n or errors, 60 + 2 * n, 0.2)
        threading.Event().wait(warmup_s)
        (i0, ms0), (i1, ms1), dt = measure_window(step, cpu, lambda: (counts["images"], counts["infer_ms"]), measure_s)
    finally:
        stop.set()
        thread.join(30)
        os.unlink(streams_file)
    images = i1 - i0
    step.process_fps = step.detect_images_per_s = round(images / dt, 1)
    step.cameras_online = n if images > 0 and not errors else 0
    step.batch_mean = float(n)
    step.extra = {"vid_stride": vid_stride, "imgsz": imgsz, "rect": False, "model_file": str(model_path),
                  "errors": errors[:3],
                  "inference_ms_per_image": round((ms1 - ms0) / images, 1) if images else None,
                  "detector_busy_pct": round((ms1 - ms0) / 10 / dt, 1)}
    floor = RATE_FLOOR * step.due_fps - n / max(dt, 1.0)
    step.sustained = not errors and step.process_fps >= floor
    if not step.sustained:
        step.why_not = (f"detected {step.process_fps:.1f} images/s < 97% of {step.due_fps:.0f}/s" if not errors
                        else f"errors: {errors[:1]}")
    return step
