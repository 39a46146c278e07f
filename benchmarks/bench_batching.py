"""Batched vs one-call-per-frame inference for 8 cameras, in the same run, through the pipeline's ObjectModel.

    .venv/bin/python benchmarks/bench_batching.py [--imgsz 320 640] [--rounds 10] [--cameras 8]

For each imgsz: one crop from each of 8 cameras (frames of the shared clips), then alternately (to share any
machine noise) one model call with all 8 and 8 calls of one. Prints ms per frame for both, the speed-up, and
the largest difference between a crop's batched and single results (0 = identical). Also times the *original*
static-batch file through ultralytics, which splits a batch into batch-1 runs by itself.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO / ".yolo"))

import numpy as np  # noqa: E402

from detectors.model import ObjectModel  # noqa: E402
from detectors.regions import crop_for_model, full_frame_regions  # noqa: E402
from detectors.replay import read_clip  # noqa: E402

SHARED = REPO.parent / "shared"
CLIPS = [("plaza_pedestrians_720p.avi", 25), ("intersection_traffic_cctv.mp4", 30), ("campus_pedestrians_pets2009.avi", 10),
         ("town_centre_pedestrians_1080p.mp4", 25), ("fall_indoor_office_urfd.mp4", 30),
         ("building_fire_smoke_hoodcam.mp4", 29.97), ("house_fire_black_smoke_phone.mp4", 29.97), ("plaza_pedestrians_720p.avi", 25)]


def camera_crops(n: int, imgsz: int) -> list[np.ndarray]:
    crops = []
    for i in range(n):
        name, fps = CLIPS[i % len(CLIPS)]
        rf = list(read_clip(SHARED / "footage" / name, f"cam{i}", fps, fps, max_frames=20 + 10 * i))[-1]
        region = full_frame_regions(rf.frame.width, rf.frame.height, imgsz)[0]
        crops.append(crop_for_model(rf.frame.image, region, imgsz)[0])
    return crops


def bench(model: ObjectModel, crops: list[np.ndarray], rounds: int) -> dict:
    model.predict(crops), model.predict(crops[:1])  # warm-up
    batched, single, diff = [], [], 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        rb = model.predict(crops)
        batched.append((time.perf_counter() - t) * 1000 / len(crops))
        t = time.perf_counter()
        rs = [model.predict([c])[0] for c in crops]
        single.append((time.perf_counter() - t) * 1000 / len(crops))
        for a, b in zip(rb, rs):
            if a.shape != b.shape:
                diff = float("inf")
            elif len(a):
                diff = max(diff, float(np.abs(a - b).max()))
    mb, ms = statistics.median(batched), statistics.median(single)
    return {"batched_ms_per_frame": round(mb, 2), "single_ms_per_frame": round(ms, 2),
            "speedup": round(ms / mb, 3), "max_abs_diff": diff, "status": model.status}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imgsz", type=int, nargs="+", default=[320, 640])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--model", default=str(SHARED / "models" / "yolov8n_int8.onnx"))
    args = ap.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    out = {"model": args.model, "cameras": args.cameras, "rounds": args.rounds, "cpu_count": os.cpu_count(), "runs": {}}
    for imgsz in args.imgsz:
        crops = camera_crops(args.cameras, imgsz)
        prepared = ObjectModel(args.model, REPO, imgsz, 0.25, None, "cpu", args.cameras, True, cache, "prepared")
        out["runs"][f"prepared_{imgsz}"] = bench(prepared, crops, args.rounds)
        if imgsz == 640:  # the original file only runs at its export size
            original = ObjectModel(args.model, REPO, imgsz, 0.25, None, "cpu", args.cameras, False, cache, "original")
            out["runs"][f"original_static_{imgsz}"] = bench(original, crops, max(3, args.rounds // 3))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
