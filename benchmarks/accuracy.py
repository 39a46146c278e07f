"""Accuracy of every video rule on the shared clips, against ground truth from ../shared/footage/MANIFEST.md.

    .venv/bin/python benchmarks/accuracy.py [--rate 5] [--imgsz 320] [--json out.json]

Each clip is replayed once (PyAV, scaled to 640 wide, ``--rate`` frames/s, every frame analysed — see
detectors/replay.py) through a real VideoPipeline with the real model and all rules that have a ground truth
on it. An alert is a true positive when it falls in the clip's event window (and, for zone/object rules, on the
right object), else a false alarm. Printed per rule: events, detected (recall), alerts, precision, time to first
alert (video seconds after the event starts), and false alarms per camera-hour of incident-free video.
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
NO_PARKING = {"name": "no_parking", "polygon": [[0.3, 0.0], [1.0, 0.0], [1.0, 0.4], [0.3, 0.4]]}
PEOPLE_RULES = [{"kind": "fall"}, {"kind": "loitering", "dwell_s": 30}]
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


CASES = [
    Case("fall_indoor_office_urfd.mp4", 30, 160, CCTV_RULES, events={"fall": (93, 159)}),
    Case("building_fire_smoke_hoodcam.mp4", 29.97, 906, [{"kind": "fire_smoke"}], events={"fire_smoke": (86, 905)}),
    Case("house_fire_black_smoke_phone.mp4", 29.97, 212, [{"kind": "fire_smoke"}], events={"fire_smoke": (0, 211)}),
    Case("plaza_pedestrians_720p.avi", 25, 341,
         CCTV_RULES + [{"kind": "loitering", "zone": "group", "dwell_s": 6},
                       {"kind": "crowd", "zone": "group", "min_count": 3, "dwell_s": 5}],
         zones=[GROUP], events={"loitering@group": (0, 340), "crowd@group": (0, 340)}),
    Case("intersection_traffic_cctv.mp4", 30, 909,
         CCTV_RULES + [{"kind": "illegal_parking", "zone": "no_parking", "dwell_s": 15}], zones=[NO_PARKING],
         events={"illegal_parking@no_parking": (0, 908)},
         truth={"illegal_parking@no_parking": lambda a: a.details["boxes"][0]["box"][3] < 0.2}),
    Case("campus_pedestrians_pets2009.avi", 10, 795, CCTV_RULES),
    Case("town_centre_pedestrians_1080p.mp4", 25, 96, CCTV_RULES),
]


def rule_key(a) -> str:
    return f"{a.kind}@{a.zone}" if a.zone else a.kind


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--fall-model", help="Normal/Fall model file (python -m detectors.fetch_models fall)")
    args = ap.parse_args()
    det = DetectionConfig.model_validate({"model": {"path": str(SHARED / "models" / "yolov8n_int8.onnx"),
                                                    "imgsz": args.imgsz}, "evidence": {"enabled": False},
                                         "fall_model": {"path": args.fall_model, "classes": ["Fall"]}})
    pose = GeoPose(position={"lon": 120.1, "lat": 30.2})
    stats: dict[str, dict] = {}
    per_clip = []
    t_start = time.time()
    for case in CASES:
        got: list = []
        pipe = VideoPipeline(det, REPO, Path(tempfile.mkdtemp(prefix="gw-acc-")), got.append)
        pipe.configure_camera("cam", pose, CameraAnalytics.model_validate({"zones": case.zones, "rules": case.rules}))
        pipe.start()
        t0 = time.time()
        replay(pipe, SHARED / "footage" / case.clip, "cam", case.fps, args.rate)
        wall = time.time() - t0
        pipe.stop()
        hours = case.frames / case.fps / 3600
        kinds = {(f"{r['kind']}@{r['zone']}" if r.get("zone") else r["kind"]) for r in case.rules}
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
        per_clip.append({"clip": case.clip, "analysed_frames": pipe.stats()["cameras"]["cam"]["processed"],
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
