"""Accuracy of every video rule on the shared clips, against ground truth from ../shared/footage/MANIFEST.md.

    .venv/bin/python benchmarks/accuracy.py [--rate 5] [--imgsz 320] [--json out.json] [--clips plaza,fall]
                                            [--rules crowd,fall]

Each clip is replayed once (PyAV, scaled to 640 wide, ``--rate`` frames/s, every frame analysed — see
detectors/replay.py) through a real VideoPipeline with the real model and all rules that have a ground truth
on it. An alert is a true positive when it falls in the clip's event window (and, for zone/object rules, on the
right object), else a false alarm. Printed per rule: events, detected (recall), alerts, precision, time to first
alert (video seconds after the event starts), and false alarms per camera-hour of incident-free video.
``--clips`` / ``--rules`` (comma-separated substrings of clip names / rule keys) run a subset to save time.

Crowd (人员聚集) cases: ``crowd`` (whole frame, >= 4 for 5 s, as the demo's cam-plaza) on every people clip — only
an alert on the standing group of the plaza counts as true; ``crowd@group`` (a zone around that group, >= 3) must
fire; ``crowd@walkway`` (a zone of the plaza that only passers-by cross, >= 3) must not.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO / ".yolo"))

from detectors.config import CameraAnalytics, DetectionConfig  # noqa: E402
from detectors.replay import replay  # noqa: E402
from detectors.video import VideoPipeline  # noqa: E402
from ingest.config import GeoPose  # noqa: E402

SHARED = REPO.parent / "shared"
GROUP = {"name": "group", "polygon": [[0.14, 0.38], [0.30, 0.38], [0.30, 0.64], [0.14, 0.64]]}
# a stretch of the plaza floor right of the group that 30-60 walkers cross and nobody stands in
WALKWAY = {"name": "walkway", "polygon": [[0.40, 0.25], [0.75, 0.25], [0.75, 0.75], [0.40, 0.75]]}
NO_PARKING = {"name": "no_parking", "polygon": [[0.3, 0.0], [1.0, 0.0], [1.0, 0.4], [0.3, 0.4]]}
PEOPLE_RULES = [{"kind": "fall"}, {"kind": "loitering", "dwell_s": 30}, {"kind": "crowd", "min_count": 4, "dwell_s": 5}]
CCTV_RULES = PEOPLE_RULES + [{"kind": "fire_smoke"}, {"kind": "tamper"}]


@dataclass
class Case:
    clip: str
    fps: float
    frames: int
    rules: list[dict]
    zones: list[dict] = field(default_factory=list)
    # rule kind -> (first frame, last frame) of the event, or a predicate on the anomaly for object-scoped truth
    events: dict[str, tuple[int, int]] = field(default_factory=dict)
    truth: dict[str, object] = field(default_factory=dict)
    detection: dict = field(default_factory=dict)  # DetectionConfig overrides for this clip's camera
    detect_fps: float | None = None  # CameraAnalytics.detect_fps


CASES = [
    Case("fall_indoor_office_urfd.mp4", 30, 160, CCTV_RULES, events={"fall": (93, 159)}),
    Case("building_fire_smoke_hoodcam.mp4", 29.97, 906, [{"kind": "fire_smoke"}], events={"fire_smoke": (86, 905)}),
    Case("house_fire_black_smoke_phone.mp4", 29.97, 212, [{"kind": "fire_smoke"}], events={"fire_smoke": (0, 211)}),
    # small, distant people half hidden by each other: native-scale tiles, 2 passes/s (as tests/detectors/
    # test_footage.py) and a lower detector/tracker threshold, without which yolov8n keeps 1-2 of the ~4 people in
    # the standing group tracked and no crowd rule can count them (docs/DETECTION.md)
    Case("plaza_pedestrians_720p.avi", 25, 341,
         CCTV_RULES + [{"kind": "loitering", "zone": "group", "dwell_s": 6},
                       {"kind": "crowd", "zone": "group", "min_count": 3, "dwell_s": 5},
                       {"kind": "crowd", "zone": "walkway", "min_count": 3, "dwell_s": 5}],
         zones=[GROUP, WALKWAY], events={"loitering@group": (0, 340), "crowd@group": (0, 340), "crowd": (0, 340)},
         truth={"crowd": lambda a: _centre_in(a, GROUP)},
         detection={"model": {"full_frame_tiles": True, "confidence": 0.2},
                    "tracking": {"new_track_thresh": 0.25, "track_high_thresh": 0.25}}, detect_fps=2),
    Case("intersection_traffic_cctv.mp4", 30, 909,
         CCTV_RULES + [{"kind": "illegal_parking", "zone": "no_parking", "dwell_s": 15}], zones=[NO_PARKING],
         events={"illegal_parking@no_parking": (0, 908)},
         truth={"illegal_parking@no_parking": lambda a: a.details["boxes"][0]["box"][3] < 0.2}),
    Case("campus_pedestrians_pets2009.avi", 10, 795, CCTV_RULES),
    Case("town_centre_pedestrians_1080p.mp4", 25, 96, CCTV_RULES),
]


def _centre_in(a, zone: dict) -> bool:
    """The alert's first box (normalised) has its centre inside ``zone``'s bounding box."""
    b = a.details["boxes"][0]["box"]
    xs, ys = [p[0] for p in zone["polygon"]], [p[1] for p in zone["polygon"]]
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    return min(xs) <= cx <= max(xs) and min(ys) <= cy <= max(ys)


def _deep(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def rule_key(a) -> str:
    return f"{a.kind}@{a.zone}" if a.zone else a.kind


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--fall-model", help="Normal/Fall model file (python -m detectors.fetch_models fall)")
    ap.add_argument("--clips", help="comma-separated substrings: only clips whose name contains one")
    ap.add_argument("--rules", help="comma-separated substrings: only rules whose key (kind@zone) contains one")
    args = ap.parse_args()
    base = {"model": {"path": str(SHARED / "models" / "yolov8n_int8.onnx"), "imgsz": args.imgsz},
            "evidence": {"enabled": False}, "fall_model": {"path": args.fall_model, "classes": ["Fall"]}}
    clip_filter = [c for c in (args.clips or "").split(",") if c]
    rule_filter = [r for r in (args.rules or "").split(",") if r]
    pose = GeoPose(position={"lon": 120.1, "lat": 30.2})
    stats: dict[str, dict] = {}
    per_clip = []
    t_start = time.time()
    for case in CASES:
        rules = [r for r in case.rules
                 if not rule_filter or any(f in (f"{r['kind']}@{r['zone']}" if r.get("zone") else r["kind"]) for f in rule_filter)]
        if (clip_filter and not any(f in case.clip for f in clip_filter)) or not rules:
            continue
        got: list = []
        det = DetectionConfig.model_validate(_deep(base, case.detection))
        pipe = VideoPipeline(det, REPO, Path(tempfile.mkdtemp(prefix="gw-acc-")), got.append)
        pipe.configure_camera("cam", pose, CameraAnalytics.model_validate(
            {"zones": case.zones, "rules": rules, "detect_fps": case.detect_fps}))
        pipe.start()
        t0 = time.time()
        replay(pipe, SHARED / "footage" / case.clip, "cam", case.fps, args.rate)
        wall = time.time() - t0
        pipe.stop()
        hours = case.frames / case.fps / 3600
        kinds = {(f"{r['kind']}@{r['zone']}" if r.get("zone") else r["kind"]) for r in rules}
        for key in kinds:
            s = stats.setdefault(key, {"events": 0, "detected": 0, "alerts": 0, "tp_alerts": 0, "false_alarms": 0,
                                       "negative_hours": 0.0, "time_to_alert_s": []})
            window = case.events.get(key)
            truth = case.truth.get(key)
            alerts = [a for a in got if rule_key(a) == key]
            s["alerts"] += len(alerts)
            first_tp = None
            for a in alerts:
                frame = round(a.details["pts"] * case.fps)
                ok = window is not None and window[0] <= frame <= window[1] and (truth is None or truth(a))
                if ok:
                    s["tp_alerts"] += 1
                    first_tp = frame if first_tp is None else min(first_tp, frame)
                else:
                    s["false_alarms"] += 1
            if window is not None:
                s["events"] += 1
                neg_frames = window[0]  # frames before the event are incident-free
                if first_tp is not None:
                    s["detected"] += 1
                    s["time_to_alert_s"].append(round((first_tp - window[0]) / case.fps, 2))
            else:
                neg_frames = case.frames
            s["negative_hours"] += neg_frames / case.fps / 3600
        per_clip.append({"clip": case.clip, "alert_frames": sorted((rule_key(a), round(a.details["pts"] * case.fps)) for a in got), "analysed_frames": pipe.stats()["cameras"]["cam"]["processed"],
                         "wall_s": round(wall, 1), "alerts": sorted(rule_key(a) for a in got)})
        print(f"{case.clip}: {len(got)} alerts in {wall:.0f} s", file=sys.stderr)
    rows = []
    for key, s in sorted(stats.items()):
        precision = s["tp_alerts"] / s["alerts"] if s["alerts"] else None
        recall = s["detected"] / s["events"] if s["events"] else None
        fa_h = s["false_alarms"] / s["negative_hours"] if s["negative_hours"] else None
        rows.append({"rule": key, **{k: v for k, v in s.items() if k != "negative_hours"},
                     "negative_minutes": round(s["negative_hours"] * 60, 2), "precision": precision, "recall": recall,
                     "false_alarms_per_camera_hour": round(fa_h, 1) if fa_h is not None else None})
    fmt = lambda v: "—" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
    print(f"\nrate {args.rate} fps, imgsz {args.imgsz}, fall model {args.fall_model or 'none (box-shape cues)'}, total {time.time() - t_start:.0f} s\n")
    print("| rule | events | detected | recall | alerts | precision | time to alert (s) | incident-free min | false alarms / camera-hour |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['rule']} | {r['events']} | {r['detected']} | {fmt(r['recall'])} | {r['alerts']} | {fmt(r['precision'])} | "
              f"{', '.join(map(str, r['time_to_alert_s'])) or '—'} | {r['negative_minutes']} | {fmt(r['false_alarms_per_camera_hour'])} |")
    if args.json:
        args.json.write_text(json.dumps({"rate": args.rate, "imgsz": args.imgsz, "fall_model": args.fall_model, "rules": rows, "clips": per_clip}, indent=2))


if __name__ == "__main__":
    main()
