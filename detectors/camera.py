"""Everything one camera's analysis keeps between frames: motion, tracks, rules, cooldowns, evidence, geolocation.

The pipeline calls ``begin`` on every analysed frame (motion, and whether the frame *wants* a detection pass: which
regions, how many crops, how urgent). Only when the pipeline admits it (``model.detect_fps`` per camera, one pass
in flight per camera, fair turns when the inference worker is full) does ``admit`` cut the crops for the shared
inference worker; ``finish`` then merges, tracks, evaluates the rules and makes Anomalies. Every other frame goes
straight from ``begin`` to ``finish``: the rules run on it with the latest tracks, held where they were last seen
(stationary-object semantics, as between Frigate's detect frames), so motion, dwell times, tamper and fire cues
keep the analysis rate while the detector runs at the detect rate.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import supervision as sv

from ingest.anomaly import Anomaly
from detectors.cause import describe
from detectors.config import CameraAnalytics, DetectionConfig
from detectors.detection import from_rows, merge_crops
from detectors.evidence import EvidenceRecorder
from detectors.geolocate import Geolocator
from detectors.motion import MotionDetector, MotionResult
from detectors.regions import crop_for_model, full_frame_regions, plan_regions
from detectors.rules import Event, View, build_rules
from detectors.rules.base import BAGGAGE, PERSON, VEHICLES
from detectors.tracking import ObjectTracker
from ingest.config import GeoPose
from ingest.frame import Frame

log = logging.getLogger(__name__)

# Rules that read a track's box shape from pass to pass need more than model.detect_fps: a fall takes ~1 s, so at
# 1 pass/s the box-shape cues see only "upright" and then "lying", not the drop (measured on the office clip).
MIN_DETECT_FPS = {"fall": 5.0}
SMALL_PERSON = 0.15  # fraction of the picture's height below which people count as small (see _small_people)

TITLES = {
    "motion": "画面异常活动", "intrusion": "区域入侵", "line_crossing": "越线", "loitering": "人员徘徊",
    "crowd": "人员聚集", "illegal_parking": "违章停车", "abandoned_object": "遗留物品", "fall": "人员摔倒",
    "fire_smoke": "火情烟雾", "tamper": "摄像机遮挡/移位",
}


@dataclass
class Plan:
    """One frame's detection work: crops for the object model and for auxiliary models."""

    frame: Frame
    motion: MotionResult
    regions: list[tuple[int, int, int, int]] = field(default_factory=list)
    full: bool = False
    requests: list[tuple[str, np.ndarray, float, tuple[int, int, int, int]]] = field(default_factory=list)
    results: dict[int, np.ndarray | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # set by ``begin``: what a detection pass of this frame would need (the pipeline decides whether it gets one)
    want_objects: bool = False
    want_aux: list[str] = field(default_factory=list)
    refresh: bool = False  # the periodic full-frame pass
    active: bool = False  # fresh motion or tracked objects: ranks before idle (refresh-only) cameras
    crops: int = 0  # model inputs the pass would take

    @property
    def wanted(self) -> bool:
        return self.want_objects or bool(self.want_aux)


class CameraAnalyzer:
    def __init__(self, camera_id: str, pose: GeoPose, analytics: CameraAnalytics, detection: DetectionConfig,
                 names: dict[int, str], model_loaded: bool, aux: dict[str, tuple[float, dict[int, str]]],
                 evidence: EvidenceRecorder | None, imgsz: int):
        self.camera_id = camera_id
        self.pose = pose
        self.detection = detection
        self.imgsz = imgsz
        self.zones, self.rules = build_rules(analytics)
        self.geo = Geolocator(pose)
        self.motion = MotionDetector(detection.motion, analytics.motion.masks)
        self.names = names
        self.model_loaded = model_loaded
        self.wants_objects = model_loaded and any(r.needs_objects for r in self.rules)
        labels = set(c.lower() for c in detection.model.classes)
        for r in self.rules:
            labels |= r.classes
        self.labels = labels or set(c for c in PERSON + VEHICLES + BAGGAGE)
        self.label_ids = np.array(sorted(i for i, n in names.items() if n.lower() in self.labels), dtype=np.float32)
        self.detect_fps = analytics.detect.fps or max(
            [detection.model.detect_fps] + [MIN_DETECT_FPS.get(r.cfg.kind, 0.0) for r in self.rules])
        # the tracker is updated once per detection pass, so its lost-track buffer counts passes at detect_fps
        rate = min(5.0, self.detect_fps)
        self.tracker = ObjectTracker(detection.tracking, names, rate_hz=rate) if self.wants_objects else None
        kinds = {r.cfg.kind for r in self.rules}
        self.aux = {k: v for k, v in aux.items() if (k == "fall" and "fall" in kinds) or (k == "fire" and "fire_smoke" in kinds)}
        self._aux_last: dict[str, float] = {}
        self.evidence = evidence
        self._last_full = -1e18  # last periodic (tiled) full-frame pass
        self._next_detect = -1e18  # capture clock: the next object pass is allowed from here (detect_fps)
        self._now = -1e18  # latest rule clock (frames can finish out of order around a detection in flight)
        self.passes = 0  # detection passes admitted
        self._fired: OrderedDict[str, float] = OrderedDict()
        self.detections = 0
        self.objects_now = 0

    # -- stage 1: motion and what a detection pass would need -------------------------------------------------
    def begin(self, frame: Frame) -> Plan:
        """Motion on every frame; decide (cheaply, no crops yet) whether this frame wants a detection pass."""
        motion = self.motion.update(frame.image)
        plan = Plan(frame, motion)
        now, w, h = frame.captured_at, frame.width, frame.height
        m = self.detection.model
        if self.wants_objects and self.tracker is not None:
            plan.active = bool(motion.boxes) or bool(self.tracker.objects)
            if now + 1e-3 >= self._next_detect:  # detect_fps, on the capture clock (replays behave like cameras)
                boxes = [(b[0] * w, b[1] * h, b[2] * w, b[3] * h) for b in motion.boxes]
                boxes += [o.box for o in self.tracker.objects.values() if o.still_for(now) < 2.0]
                if now - self._last_full >= m.refresh_s:
                    # the periodic pass keeps tiles: it is for small still objects (parked cars) and is rare
                    plan.regions, plan.full, plan.refresh = full_frame_regions(w, h, self.imgsz, tiles=True), True, True
                elif boxes:
                    plan.regions, plan.full = plan_regions(boxes, w, h, self.imgsz, m.max_regions,
                                                           m.full_frame_fraction, tiles=m.full_frame_tiles or self._small_people(h))
                plan.want_objects = bool(plan.regions)
                plan.crops += len(plan.regions)
        for name, (interval, _names) in self.aux.items():
            if now - self._aux_last.get(name, -1e18) >= interval and (motion.boxes or self._people()):
                plan.want_aux.append(name)
                plan.crops += len(full_frame_regions(w, h, self._aux_size(name)))
                plan.active = True
        return plan

    def admit(self, plan: Plan) -> None:
        """The pipeline gave this frame a detection pass: cut the crops and advance the rate clocks."""
        frame = plan.frame
        now, w, h = frame.captured_at, frame.width, frame.height
        if plan.want_objects:
            period = 1.0 / self.detect_fps
            # on schedule when frames come on time; never closer than half a period after a late one
            self._next_detect = max(self._next_detect + period, now + period / 2)
            if plan.refresh:
                self._last_full = now
            for region in plan.regions:
                crop, scale = crop_for_model(frame.image, region, self.imgsz)
                plan.requests.append(("objects", crop, scale, region))
        for name in plan.want_aux:
            size = self._aux_size(name)
            self._aux_last[name] = now
            for region in full_frame_regions(w, h, size):
                crop, scale = crop_for_model(frame.image, region, size)
                plan.requests.append((name, crop, scale, region))
        self.passes += 1

    def _aux_size(self, name: str) -> int:
        cfg = self.detection.fall_model if name == "fall" else self.detection.fire_model
        return cfg.imgsz

    def _small_people(self, h: int) -> bool:
        """Small, distant people (median tracked person under ``SMALL_PERSON`` of the picture's height): a letterboxed
        pass would halve them below what the model finds, so motion passes use native-scale tiles — the product
        decides from what it sees, not a per-camera setting."""
        heights = [o.box[3] - o.box[1] for o in self.tracker.objects.values() if o.label == "person"] if self.tracker else []
        return len(heights) >= 3 and float(np.median(heights)) < SMALL_PERSON * h

    def _people(self) -> bool:
        return self.tracker is not None and any(o.label == "person" for o in self.tracker.objects.values())

    # -- stage 2: merge, track, rules --------------------------------------------------------------------------
    def finish(self, plan: Plan) -> list[Anomaly]:
        frame = plan.frame
        w, h = frame.width, frame.height
        now = self._now = max(frame.captured_at, self._now)
        per_model: dict[str, list[sv.Detections]] = {}
        for i, (name, _crop, scale, region) in enumerate(plan.requests):
            per_model.setdefault(name, []).append(from_rows(plan.results.get(i), scale, region[:2], (w, h)))
        merged = {name: sv.Detections.merge(found) for name, found in per_model.items()}
        objects = list(self.tracker.objects.values()) if self.tracker is not None else []
        if self.tracker is not None and "objects" in merged:
            dets = merged["objects"]
            dets = merge_crops(dets[np.isin(dets.class_id, self.label_ids)])
            self.detections += len(dets)
            objects = self.tracker.update(dets, now, None if plan.full else plan.regions)
        self.objects_now = len(objects)
        self.zones.update(objects, now, w, h)
        aux = {k: v for k, v in merged.items() if k != "objects"}
        view = View(now, w, h, objects, plan.motion, "objects" in per_model, frame.image, aux,
                    {k: v[1] for k, v in self.aux.items()})
        if self.evidence is not None:
            # an older frame back from the detector is not re-added
            self.evidence.record(frame.image, frame.captured_at, frame.packets)
        out: list[Anomaly] = []
        for rule in self.rules:
            try:
                events = rule.evaluate(view)
            except Exception:
                log.exception("camera %s rule %s failed", self.camera_id, rule.name)
                continue
            for ev in events:
                if self._allow(rule, ev, now):
                    out.append(self._anomaly(rule, ev, frame))
        return out

    def _allow(self, rule, ev: Event, now: float) -> bool:
        key = f"{rule.name}|{ev.key}"
        last = self._fired.get(key)
        if ev.once:
            if last is not None:
                return False
        else:
            cooldown = rule.cfg.cooldown_s
            if rule.cfg.kind == "motion" and "cooldown_s" not in rule.cfg.model_fields_set:
                cooldown = self.detection.motion.cooldown_s
            if last is not None and now - last < cooldown:
                return False
        self._fired[key] = now
        self._fired.move_to_end(key)
        while len(self._fired) > 5000:
            self._fired.popitem(last=False)
        return True

    def _anomaly(self, rule, ev: Event, frame: Frame) -> Anomaly:
        fx, fy = ev.foot if ev.foot is not None else (None, None)
        anomaly = Anomaly(
            kind=ev.kind, source="camera", source_id=self.camera_id, zone=ev.zone,
            location=self.geo.locate(fx, fy, frame.width, frame.height),
            occurred_at=datetime.fromtimestamp(frame.captured_at, timezone.utc), observed_at=frame.captured_at,
            score=round(float(ev.score), 3), category=rule.cfg.category, title=TITLES.get(ev.kind, ev.kind),
            tier=rule.cfg.tier,
            details={
                "track_id": ev.track_id, **ev.details, "rule": rule.name, "frame_seq": frame.seq,
                "pts": round(frame.pts, 3),
                "boxes": [{"label": lb, "box": [round(b[0] / frame.width, 4), round(b[1] / frame.height, 4),
                                                round(b[2] / frame.width, 4), round(b[3] / frame.height, 4)]}
                          for b, lb in ev.boxes],
                "geolocated": "homography" if (self.geo.has_homography and ev.foot is not None) else "camera",
            },
        )
        anomaly.details["cause"] = cause = describe(ev, anomaly.score)
        anomaly.details.setdefault("description", cause["text"])  # the ticket says which object and why
        if self.evidence is not None:
            try:
                anomaly.evidence = self.evidence.capture(anomaly.id, frame.image, frame.captured_at, ev.boxes,
                                                         self.zones.outline(ev.zone))
            except Exception:
                log.exception("camera %s: evidence for %s failed", self.camera_id, ev.kind)
        return anomaly
