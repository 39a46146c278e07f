"""Schema of the deployment file's detection section and of each camera's zones and rules."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Point = tuple[float, float]


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


class DetectionConfig(_Strict):
    motion: MotionConfig = MotionConfig()
    model: ModelConfig = ModelConfig()


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


class CameraAnalytics(_Strict):
    zones: list[Zone] = Field(default_factory=list)
    lines: list[Line] = Field(default_factory=list)
    masks: list[list[Point]] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=lambda: [RuleConfig(kind="motion")])
