"""Schema of the deployment file's detection section and of each camera's zones and rules."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Point = tuple[float, float]
Tier = Literal["alert", "activity"]

# What a rule's anomaly becomes when the rule does not say: motion alone is only activity (recorded for the
# camera's timeline, never a ticket); every incident-like rule is an alert a person should look at.
DEFAULT_TIERS: dict[str, Tier] = {"motion": "activity"}


def default_tier(kind: str) -> Tier:
    """The review tier of a rule kind whose configuration names none."""
    return DEFAULT_TIERS.get(kind, "alert")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MotionConfig(_Strict):
    enabled: bool = True
    width: int = Field(160, ge=32, le=640, description="motion runs on a greyscale copy this wide")
    threshold: int = Field(25, ge=1, le=255, description="per-pixel difference that counts as change")
    min_area: float = Field(0.002, gt=0, lt=1, description="fraction of the picture that must change")
    cooldown_s: float = Field(30.0, ge=0, description="motion-only anomalies per camera at most this often")


class ModelConfig(_Strict):
    path: str | None = Field(None, description=".pt, .onnx, .tflite, OpenVINO dir or Triton URL; relative to the deployment file")
    imgsz: int = Field(640, ge=32)
    confidence: float = Field(0.35, gt=0, lt=1)
    classes: list[str] = Field(default_factory=lambda: ["person", "bicycle", "car", "motorcycle", "bus", "truck"])
    max_batch: int = Field(8, ge=1)
    max_wait_ms: float = Field(20.0, ge=0, description="latency cap of dynamic batching")
    device: str = "cpu"
    # Added by the detectors part (defaults keep older deployment files valid):
    prepare_onnx: bool = Field(
        True,
        description="for .onnx files: give a static-batch model a dynamic batch axis, turn dynamic-int8 weights back "
        "into float and re-anchor the head for imgsz, in cache_dir (see detectors/onnx_prepare.py)",
    )
    cache_dir: str | None = Field(None, description="where prepared model copies go; default ~/.cache/gridwatch/models")
    refresh_s: float = Field(10.0, gt=0, description="a camera with no motion is still detected this often (parked cars, "
                             "objects already there at start)")
    max_regions: int = Field(4, ge=1, description="more motion regions than this become one full-frame pass")
    full_frame_fraction: float = Field(0.6, gt=0, le=1, description="regions covering this much of the picture become a full-frame pass")
    full_frame_tiles: bool = Field(
        False, description="when motion covers most of the frame: overlapping square tiles at native scale (2 crops "
        "for 16:9 at imgsz 320) instead of one letterboxed pass (1 crop, objects at half scale). Turn on for views of "
        "small, distant people; the periodic refresh pass always uses tiles")
    detect_fps: float = Field(
        1.0, gt=0, le=30,
        description="object-model passes per camera per second at most (motion, tracks and rules still run on every "
        "analysed frame with the latest tracks). 1.0 because the detector, not decoding, is what limits a CPU box: "
        "N moving cameras cost N x detect_fps crops/s (~15 ms each at 320), so 1/s serves tens of cameras on 2 cores, "
        "while people and parked cars still get a track within a second; raise it on a GPU or for fast traffic",
    )
    max_inflight: int | None = Field(
        None, ge=1, description="crops admitted to the inference worker at once (default 2 x max_batch: one batch "
        "running, one collecting); when full, cameras take turns (least recently detected first)")


class AuxModelConfig(_Strict):
    """A second, special-purpose model (fall, fire/smoke) run only for cameras that have the matching rule."""

    path: str | None = Field(None, description="model file (ultralytics formats); relative to the deployment file")
    imgsz: int = Field(320, ge=32)
    confidence: float = Field(0.5, gt=0, lt=1)
    classes: list[str] = Field(default_factory=list, description="class names that count as the event (e.g. Fall, fire, smoke)")
    interval_s: float = Field(0.5, ge=0, description="run it at most this often per camera")


class TrackingConfig(_Strict):
    tracker: Literal["bytetrack"] = "bytetrack"
    track_high_thresh: float = Field(0.3, gt=0, lt=1)
    track_low_thresh: float = Field(0.1, ge=0, lt=1)
    new_track_thresh: float = Field(0.35, gt=0, lt=1)
    track_buffer_s: float = Field(3.0, gt=0, description="a lost track is kept this long (seconds of detection calls)")
    match_thresh: float = Field(0.8, gt=0, le=1)
    stationary_fraction: float = Field(0.15, gt=0, description="an object whose foot point stays within this fraction "
                                        "of its box height is stationary")
    keep_stationary_s: float = Field(600.0, gt=0, description="a stationary object not re-seen is forgotten after this")


class EvidenceConfig(_Strict):
    enabled: bool = True
    pre_s: float = Field(5.0, ge=0, description="seconds of video before the event in the clip")
    post_s: float = Field(10.0, ge=0, description="seconds after")
    fps: float = Field(5.0, gt=0, le=30, description="frame rate of the clip's ring buffer")
    max_width: int = Field(640, ge=64, description="clip and ring-buffer frames are scaled down to this width")
    jpeg_quality: int = Field(85, ge=10, le=100)
    max_clip_s: float = Field(60.0, gt=0, description="a clip that later anomalies of the same camera share and extend "
                              "is closed after this many seconds of video (pre_s included)")


class PoolConfig(_Strict):
    """The video pool across hosts (docs/ARCHITECTURE.md, "The video pool"): off = this video role analyses every camera."""

    enabled: bool = Field(False, description="video roles join a pool in Redis and each analyses only the cameras whose "
                                             "lease it holds (rendezvous hashing over the live members)")
    member_ttl_s: float = Field(6.0, ge=1, description="a member whose heartbeat is this old is gone")
    lease_ttl_s: float = Field(8.0, ge=3, description="a camera's lease lapses this long after its owner's last refresh; "
                                                      "failover takes about this plus the camera's first frame")
    tick_s: float = Field(1.0, gt=0, le=5, description="heartbeat, refresh and rebalance period")


class DetectionConfig(_Strict):
    motion: MotionConfig = MotionConfig()
    model: ModelConfig = ModelConfig()
    fall_model: AuxModelConfig = AuxModelConfig(classes=["Fall"], confidence=0.5)
    fire_model: AuxModelConfig = AuxModelConfig(classes=["fire", "smoke", "Fire", "Smoke"], confidence=0.4)
    tracking: TrackingConfig = TrackingConfig()
    evidence: EvidenceConfig = EvidenceConfig()
    pool: PoolConfig = PoolConfig()


class Zone(_Strict):
    name: str
    polygon: list[Point] = Field(min_length=3, description="image coordinates normalised to 0..1")


class Line(_Strict):
    name: str
    a: Point
    b: Point


class RuleConfig(_Strict):
    """One analytic on one camera. ``kind`` picks the rule; the other fields are its parameters."""

    kind: Literal[
        "motion", "intrusion", "line_crossing", "loitering", "crowd", "illegal_parking",
        "abandoned_object", "fall", "fire_smoke", "tamper",
    ]
    zone: str | None = None
    line: str | None = None
    classes: list[str] = Field(default_factory=list)
    min_count: int = Field(1, ge=1)
    dwell_s: float = Field(0.0, ge=0)
    direction: Literal["a_to_b", "b_to_a", "any"] = "any"
    category: str | None = Field(None, description="category code the anomaly suggests")
    # Added by the detectors part (all defaulted):
    cooldown_s: float = Field(60.0, ge=0, description="the same rule/zone/object fires at most this often")
    min_score: float | None = Field(None, gt=0, lt=1, description="a detection must score this much to count")
    min_median_score: float | None = Field(None, gt=0, lt=1, description="median score over the track's life "
                                           "must reach this (Frigate's 'threshold'); filters flickering false objects")
    sensitivity: float = Field(1.0, gt=0, le=10, description="rule-specific scale of the classical detectors "
                               "(fire/smoke, tamper): >1 fires more easily")
    view: Literal["auto", "side", "top_down"] = Field(
        "auto", description="fall: a top-down camera cannot see a person's shape change, so its shape cues are off; "
        "auto decides from the person boxes' median height/width")
    hold_s: float = Field(5.0, ge=0, description="crowd: a member hidden inside the group still counts this long")
    min_frames: int = Field(2, ge=1, description="fall: the lying shape must be seen in this many detections")
    tier: Tier | None = Field(
        None, description="alert: the anomaly becomes a ticket (the wall, the duty queue); activity: it is only "
        "recorded for the camera's review timeline with its evidence. Default: activity for motion, alert otherwise")

    @model_validator(mode="after")
    def _resolve_tier(self) -> "RuleConfig":
        if self.tier is None:
            self.tier = default_tier(self.kind)
        return self


class CameraDetect(_Strict):
    """How the object model runs on this camera (Frigate's per-camera ``detect``)."""

    fps: float | None = Field(None, gt=0, le=30, description="this camera's object-model passes per second "
                              "(default: model.detect_fps, raised to 5 for a camera with a fall rule)")
    min_score: float | None = Field(None, gt=0, lt=1, description="camera-wide minimum detection score")


class CameraMotion(_Strict):
    """What this camera's motion gate ignores (Frigate's per-camera ``motion``)."""

    masks: list[list[Point]] = Field(default_factory=list, description="polygons (0..1 image coordinates) where "
                                     "movement never counts: a clock, a flag, tree tops")


# The flat camera fields of the first schema and where they live now. Accepted for one release, moved into their
# section on load and reported by ``gridwatch check`` (gateway.config.deprecations).
FLAT_CAMERA_FIELDS: dict[str, tuple[str, str]] = {
    "detect_fps": ("detect", "fps"),
    "min_score": ("detect", "min_score"),
    "masks": ("motion", "masks"),
}


class CameraAnalytics(_Strict):
    """A camera's analytics, one section per concern: detect, motion, zones and lines, rules."""

    detect: CameraDetect = CameraDetect()
    motion: CameraMotion = CameraMotion()
    zones: list[Zone] = Field(default_factory=list)
    lines: list[Line] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=lambda: [RuleConfig(kind="motion")])

    @model_validator(mode="before")
    @classmethod
    def _flat_fields_into_sections(cls, data: Any) -> Any:
        """Move the deprecated flat fields into their sections; a value in the section itself wins."""
        if not isinstance(data, dict) or not FLAT_CAMERA_FIELDS.keys() & data.keys():
            return data
        data = dict(data)
        for flat, (section, name) in FLAT_CAMERA_FIELDS.items():
            nested = data.get(section, {})
            if flat in data and isinstance(nested, dict):  # a malformed section is left for validation to name
                data[section] = {name: data.pop(flat), **nested}
        return data
