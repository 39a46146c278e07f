"""Accuracy of the video rules on EVERY clip in ../shared/footage, one configuration, truth from its MANIFEST.

    .venv/bin/python benchmarks/accuracy.py                 # the full form: every clip (a few minutes on 2 cores)
    .venv/bin/python benchmarks/accuracy.py --short         # the CI form: four short clips
    .venv/bin/python benchmarks/accuracy.py --clips fall,fire --rules fire_smoke --json out.json --markdown out.md

One configuration: the detection section of the deployment file (config/demo.yaml: model, imgsz, motion, tracker,
detect rate) for every clip, evidence off. Every camera runs the deployment-wide incident rules (``EVERY_CAMERA``);
a clip adds only the zones and zone rules a user would draw on that camera (a no-parking zone over a parking row,
the bank by the river). Nothing is tuned per clip: no detector or tracker thresholds, no detect rate. A per-camera
choice a user would make in the camera editor is listed per clip in ``settings`` and printed with the results.

Truth is frame ranges from ../shared/footage/MANIFEST.md (``Event``: first frame, last frame, and the frame time to
alert is counted from — a fall from hitting the floor, a fire from the first smoke or flame). An alert of a rule is
true when its frame lies in one of that rule's event ranges on the clip, else a false alarm; an event is detected
when at least one alert lies in it. Per rule: events, detected, recall, alerts, true, false, precision (both with
95 % Wilson intervals — the counts are small), time to alert, minutes of video free of that rule's events, and
false alarms per camera-hour of that video.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO / "run" / "ultralytics"))

SHARED = REPO.parent / "shared"
FOOTAGE = SHARED / "footage"
DEPLOYMENT = REPO / "config" / "demo.yaml"

# The incident rules every camera of the deployment runs (as the demo's cameras; no zone needed).
EVERY_CAMERA: list[dict] = [
    {"kind": "fire_smoke"}, {"kind": "fall"}, {"kind": "tamper"}, {"kind": "crowd", "min_count": 3, "dwell_s": 5},
]
# Zones a user would draw on the camera whose clip it is.
PARKING_ROW = {"name": "no_parking", "polygon": [[0.3, 0.0], [1.0, 0.0], [1.0, 0.4], [0.3, 0.4]]}  # row + lanes below
RIVER_BANK = {"name": "bank", "polygon": [[0.0, 0.3], [0.55, 0.3], [0.55, 1.0], [0.0, 1.0]]}


@dataclass(frozen=True)
class Event:
    """One incident of one rule on a clip: frames ``first``..``last`` (0-based decoded frames), timed from ``t0``."""

    first: int
    last: int
    t0: int | None = None

    @property
    def start(self) -> int:
        return self.first if self.t0 is None else self.t0


@dataclass
class Clip:
    name: str
    fps: float
    frames: int
    events: dict[str, list[Event]] = field(default_factory=dict)  # rule key (kind or kind@zone) -> incidents
    zones: list[dict] = field(default_factory=list)
    rules: list[dict] = field(default_factory=list)  # zone rules a user would add on this camera
    skip: list[str] = field(default_factory=list)  # deployment rules a user would leave off this camera
    settings: dict[str, Any] = field(default_factory=dict)  # per-camera choices a user would make, listed
    note: str = ""


# Truth from ../shared/footage/MANIFEST.md (ranges ±3-5 frames there).
CLIPS: list[Clip] = [
    Clip("plaza_pedestrians_720p.avi", 25, 341, {"crowd": [Event(0, 340)]},
         note="a group of ~4 stands still at left-centre the whole clip (人员聚集 ≥ 3)"),
    Clip("town_centre_pedestrians_1080p.mp4", 25, 96, note="25-35 pedestrians, no incident"),
    Clip("campus_pedestrians_pets2009.avi", 10, 795, note="3-8 walkers, no incident"),
    Clip("intersection_traffic_cctv.mp4", 30, 909, {"illegal_parking@no_parking": [Event(0, 908)]},
         zones=[PARKING_ROW], rules=[{"kind": "illegal_parking", "zone": "no_parking", "dwell_s": 15}],
         note="a parked row at the top for the whole clip; moving traffic through the zone's lower part"),
    Clip("building_fire_smoke_hoodcam.mp4", 29.97, 906, {"fire_smoke": [Event(86, 905)]},
         note="time-lapse (~3 s per frame): 0-83 no fire, smoke from ~86, flames ~98"),
    Clip("house_fire_black_smoke_phone.mp4", 29.97, 212, {"fire_smoke": [Event(0, 211)]}, skip=["tamper"],
         settings={"tamper": "off: a handheld phone, not a fixed camera"}, note="fire and smoke in every frame"),
    Clip("fall_indoor_office_urfd.mp4", 30, 160, {"fall": [Event(93, 159, t0=113)]},
         note="falls 93-118 (floor ~108-118), lies 120-159"),
    Clip("fire_ev_scooter_street_cctv_ganzhou_news.mp4", 29.97, 1267,
         {"fire_smoke": [Event(15, 1175)], "tamper": [Event(420, 431 + 300), Event(1176, 1266)]},
         note="smoke from ~15, flame ~115, burning to ~420, time-lapse to 1175; dissolve 420-431 and a white end "
              "card at 1176 are scene changes (tamper)"),
    Clip("fire_room_burn_test_multicam_montage.mp4", 24, 2394,
         {"fire_smoke": [Event(119, 2393)],
          "tamper": [Event(c, c + 240) for c in (140, 305, 438, 1423, 1542, 1970, 2046)]},
         note="first flame ~119-121; scene cuts at 140, 305, 438, 1423, 1542, 1970, 2046 (tamper). A hard cut at 678 "
              "(OSD 'Camera #101' -> 'Camera #104' between frames 677 and 678) is not in the MANIFEST and not counted "
              "here: truth stays the MANIFEST's, so a tamper alert after it scores as false (docs/DETECTION.md)"),
    Clip("smoke_fire_field_distant_fixed_stock.mp4", 29.97, 351, {"fire_smoke": [Event(0, 350)]},
         note="distant smoke column and flame line in every frame"),
    Clip("neg_night_intersection_red_signals_headlights.mp4", 60, 508, {"tamper": [Event(365, 365 + 600)]},
         note="night: red signals, headlights, tail lights; hard cut to day at 365 (tamper); no fire"),
    Clip("neg_red_cars_dual_carriageway_day.mp4", 25, 199, note="bright red cars 0-130, an orange post; no fire"),
    Clip("fall_kitchen_cctv_slip.mp4", 24, 187, {"fall": [Event(92, 186, t0=106)]},
         note="slips 92-103, hits the floor 104-108, lies to 186; a stove in view"),
    Clip("fall_staged_empty_room.mp4", 30, 143, {"fall": [Event(66, 142, t0=100)]},
         note="enters ~40, staged forward fall 66-100, lies 100-142"),
    Clip("nonfall_sit_on_sofa_indoor_cam_red_jacket.mp4", 5, 300,
         note="a person in a red jacket sits down, stands, sits again; no fall, no fire"),
    Clip("nonfall_bend_place_bag_sidewalk_elevated.mp4", 30, 742,
         note="a man bends to put a bag down, walks away; no fall (abandoned bag ~500-680 is not measured: "
              "6 s, below any dwell a user would set)"),
    Clip("vehicles_parking_lot_elevated_parked_and_moving.mp4", 15, 152,
         note="a parking lot (several red cars), cars and a pedestrian moving; no incident"),
    Clip("asia_china_mobile_cctv_riverbank_rain_worker.mp4", 15, 652,
         {"intrusion@bank": [Event(94, 530)], "loitering@bank": [Event(104, 480)]}, zones=[RIVER_BANK],
         rules=[{"kind": "intrusion", "zone": "bank"}, {"kind": "loitering", "zone": "bank", "dwell_s": 20}],
         note="heavy rain; a worker enters the bank ~94, stands 104-470, leaves 480-527"),
]
SHORT = ["fall_staged_empty_room.mp4", "house_fire_black_smoke_phone.mp4", "neg_red_cars_dual_carriageway_day.mp4",
         "town_centre_pedestrians_1080p.mp4"]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion k/n (None when n = 0)."""
    if n == 0:
        return None
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)


def poisson_rate_ci(k: int, hours: float, conf: float = 0.95) -> tuple[float, float] | None:
    """Exact (Garwood) 95 % interval of a Poisson rate: ``k`` false alarms in ``hours`` of video, per hour.

    Why it matters: with 0 false alarms in 8 minutes the upper bound is ~28 per hour — "none seen" does not show
    "< 1 per camera-hour"; that needs ~3.7 hours of incident-free video with none."""
    if hours <= 0:
        return None
    from scipy.stats import chi2

    a = 1 - conf
    lo = 0.0 if k == 0 else chi2.ppf(a / 2, 2 * k) / 2
    hi = chi2.ppf(1 - a / 2, 2 * k + 2) / 2
    return round(float(lo) / hours, 2), round(float(hi) / hours, 2)


def rule_key(a) -> str:
    return f"{a.kind}@{a.zone}" if a.zone else a.kind


def _key(rule: dict) -> str:
    return f"{rule['kind']}@{rule['zone']}" if rule.get("zone") else rule["kind"]


def deployment_detection() -> dict:
    """The deployment-wide detection settings (config/demo.yaml), evidence off, model path absolute."""
    from gateway.config import load_deployment

    dep = load_deployment(DEPLOYMENT)
    det = dep.detection.model_dump()
    det["evidence"]["enabled"] = False
    for part in ("model", "fall_model", "fire_model"):
        if det[part].get("path"):
            det[part]["path"] = str(dep.resolve(det[part]["path"]))
    return det


def camera_rules(clip: Clip, rule_filter: list[str]) -> list[dict]:
    rules = [r for r in EVERY_CAMERA if r["kind"] not in clip.skip] + clip.rules
    return [r for r in rules if not rule_filter or any(f in _key(r) for f in rule_filter)]


def run_clip(clip: Clip, det: dict, rules: list[dict], rate: float) -> tuple[list, dict]:
    """Replay one clip through a real VideoPipeline; returns its anomalies and the camera's stats."""
    from detectors.config import CameraAnalytics, DetectionConfig
    from detectors.replay import replay
    from detectors.pipeline import VideoPipeline
    from ingest.config import GeoPose

    got: list = []
    pipe = VideoPipeline(DetectionConfig.model_validate(det), REPO, Path(tempfile.mkdtemp(prefix="gw-acc-")), got.append)
    pipe.configure_camera("cam", GeoPose(position={"lon": 120.1, "lat": 30.2}),
                          CameraAnalytics.model_validate({"zones": clip.zones, "rules": rules}))
    pipe.start()
    try:
        replay(pipe, FOOTAGE / clip.name, "cam", clip.fps, rate)
        stats = pipe.stats()["cameras"]["cam"]
    finally:
        pipe.stop()
    return [a for a in got if a.kind != "motion"], stats


def score(clip: Clip, keys: set[str], alerts: list) -> dict[str, dict]:
    """Per rule key on one clip: alerts true/false, events detected, time to alert, incident-free seconds."""
    frames = {key: [round(a.details["pts"] * clip.fps) for a in alerts if rule_key(a) == key] for key in keys}
    return score_frames(clip, frames)


def score_frames(clip: Clip, frames: dict[str, list[int]]) -> dict[str, dict]:
    """``score`` from the alerts' frame numbers. An alert credits one event: the latest that started before it and
    has not ended (event ranges may overlap — scene cuts a few seconds apart — and one alert is not two detections)."""
    out: dict[str, dict] = {}
    for key, alert_frames in frames.items():
        events = clip.events.get(key, [])
        mine = sorted(alert_frames)
        credited: dict[int, list[int]] = {}
        for f in mine:
            inside = [i for i, e in enumerate(events) if e.first <= f <= e.last]
            if inside:
                credited.setdefault(max(inside, key=lambda i: events[i].first), []).append(f)
        covered = set()
        for e in events:
            covered |= set(range(e.first, min(e.last, clip.frames - 1) + 1))
        tta = [round((credited[i][0] - events[i].start) / clip.fps, 2) for i in sorted(credited)]
        true = sum(len(v) for v in credited.values())
        out[key] = {"events": len(events), "detected": len(credited), "alerts": len(mine), "true": true,
                    "false": len(mine) - true, "time_to_alert_s": tta,
                    "free_s": (clip.frames - len(covered)) / clip.fps, "alert_frames": mine}
    return out


def rescore(saved: dict) -> dict:
    """Score the alert frames of a saved run (``--json``) again against the truth in ``CLIPS`` (no replay)."""
    by_name = {c.name: c for c in CLIPS}
    per_clip = [{**c, "rules": score_frames(by_name[c["clip"]], {k: s["alert_frames"] for k, s in c["rules"].items()})}
                for c in saved["clips"]]
    return {"rules": summarise(per_clip), "clips": per_clip, "meta": saved["meta"]}


def summarise(per_clip: list[dict]) -> list[dict]:
    total: dict[str, dict] = {}
    for c in per_clip:
        for key, s in c["rules"].items():
            t = total.setdefault(key, {"events": 0, "detected": 0, "alerts": 0, "true": 0, "false": 0,
                                       "time_to_alert_s": [], "free_s": 0.0, "false_on": []})
            for k in ("events", "detected", "alerts", "true", "false", "free_s"):
                t[k] += s[k]
            t["time_to_alert_s"] += s["time_to_alert_s"]
            if s["false"]:
                t["false_on"].append(f"{c['clip']} ({s['false']})")
    rows = []
    for key, t in sorted(total.items()):
        hours = t["free_s"] / 3600
        rows.append({"rule": key, **t, "free_min": round(t["free_s"] / 60, 1),
                     "recall": round(t["detected"] / t["events"], 3) if t["events"] else None,
                     "recall_ci": wilson(t["detected"], t["events"]),
                     "precision": round(t["true"] / t["alerts"], 3) if t["alerts"] else None,
                     "precision_ci": wilson(t["true"], t["alerts"]),
                     "false_per_camera_hour": round(t["false"] / hours, 1) if hours else None,
                     "false_per_camera_hour_ci": poisson_rate_ci(t["false"], hours)})
    return rows


def markdown(rows: list[dict], per_clip: list[dict], meta: dict) -> str:
    fmt = lambda v: "—" if v is None else str(v)  # noqa: E731
    ci = lambda v: "" if v is None else f" [{v[0]:.2f}–{v[1]:.2f}]"  # noqa: E731
    fci = lambda v: "" if v is None else f" [{v[0]:g}–{v[1]:g}]"  # noqa: E731
    lines = [f"`{meta['command']}` — git {meta['git']}, load average before/after {meta['load_before']} / "
             f"{meta['load_after']}, {meta['wall_s']:.0f} s, {len(per_clip)} clips, rate {meta['rate']} frames/s", "",
             "| rule | events | detected | recall [95 % CI] | alerts | true | false | precision [95 % CI] | "
             "time to alert (s) | incident-free min | false / camera-hour [95 % CI] |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['rule']} | {r['events']} | {r['detected']} | {fmt(r['recall'])}{ci(r['recall_ci'])} | "
                     f"{r['alerts']} | {r['true']} | {r['false']} | {fmt(r['precision'])}{ci(r['precision_ci'])} | "
                     f"{', '.join(map(str, r['time_to_alert_s'])) or '—'} | {r['free_min']} | "
                     f"{fmt(r['false_per_camera_hour'])}{fci(r['false_per_camera_hour_ci'])} |")
    lines += ["", "| clip | rules | per-camera settings | alerts (rule: frames) | analysed frames | s |", "|---|---|---|---|---|---|"]
    for c in per_clip:
        hits = "; ".join(f"{k}: {', '.join(map(str, s['alert_frames']))}" for k, s in sorted(c["rules"].items())
                         if s["alert_frames"]) or "none"
        lines.append(f"| {c['clip']} | {', '.join(sorted(c['rules']))} | {c['settings'] or 'none'} | {hits} | "
                     f"{c['analysed']} | {c['wall_s']} |")
    return "\n".join(lines) + "\n"


def _git() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "detectors", "benchmarks", "config"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def run(clips: list[Clip], rate: float = 5.0, rule_filter: list[str] | None = None) -> dict:
    """Run the clips; returns {"rules": summary rows, "clips": per-clip results}."""
    det = deployment_detection()
    per_clip = []
    for clip in clips:
        rules = camera_rules(clip, rule_filter or [])
        if not rules:
            continue
        t0 = time.time()
        alerts, stats = run_clip(clip, det, rules, rate)
        per_clip.append({"clip": clip.name, "settings": clip.settings, "rules": score(clip, {_key(r) for r in rules}, alerts),
                         "analysed": stats["processed"], "wall_s": round(time.time() - t0, 1)})
        print(f"{clip.name}: {len(alerts)} alerts in {per_clip[-1]['wall_s']} s", file=sys.stderr)
    return {"rules": summarise(per_clip), "clips": per_clip}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="the CI form: " + ", ".join(SHORT))
    ap.add_argument("--rate", type=float, default=5.0, help="analysed frames per second of video (a camera's analysis rate)")
    ap.add_argument("--clips", help="comma-separated substrings: only clips whose name contains one")
    ap.add_argument("--rules", help="comma-separated substrings: only rules whose key (kind@zone) contains one")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--rescore", type=Path, help="score the alerts of a saved --json run again (truth changed; no replay)")
    args = ap.parse_args(argv)
    if args.rescore:
        result = rescore(json.loads(args.rescore.read_text()))
        text = markdown(result["rules"], result["clips"], result["meta"])
        print(text)
        if args.markdown:
            args.markdown.write_text(text)
        return result
    clips = [c for c in CLIPS if (FOOTAGE / c.name).exists()]
    if args.short:
        clips = [c for c in clips if c.name in SHORT]
    if args.clips:
        clips = [c for c in clips if any(f in c.name for f in args.clips.split(",") if f)]
    meta = {"command": "benchmarks/accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "git": _git(), "load_before": _load(), "rate": args.rate}
    started = time.time()
    result = run(clips, args.rate, [r for r in (args.rules or "").split(",") if r])
    meta.update(wall_s=time.time() - started, load_after=_load())
    result["meta"] = meta
    text = markdown(result["rules"], result["clips"], meta)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    if args.markdown:
        args.markdown.write_text(text)
    return result


if __name__ == "__main__":
    main()
