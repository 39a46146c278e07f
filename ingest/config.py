"""Schema of the deployment file's ingest sections: cameras (source, geo-pose, analysis rate) and devices."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest.geo import GeoPoint

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    """Where a camera's pictures come from.

    ``url`` schemes: ``rtsp://``, ``rtsps://``, ``http(s)://`` (MJPEG, snapshot or HLS), ``file:``/plain path
    (looped as live), ``footage:NAME`` (a clip of the shared footage folder), ``synthetic:SCENE``
    (a generated moving scene) and ``whip:`` (WebRTC ingest). ``fallback`` is used when the main
    source cannot exist on this machine (the demo's footage folder is absent).
    """

    url: str
    fallback: str | None = None
    substream_url: str | None = Field(None, description="low-resolution stream used for analysis")
    transport: Literal["tcp", "udp"] = "tcp"
    snapshot_interval_s: float = Field(1.0, gt=0, description="poll period for HTTP snapshot sources")


class AnalysisConfig(_Strict):
    fps: float = Field(5.0, gt=0, le=60, description="frames per second handed to the detectors")
    width: int = Field(640, ge=64, le=3840, description="analysis frames are scaled to this width")
    keyframes_only: bool = False


class HealthConfig(_Strict):
    stall_after_s: float = Field(5.0, gt=0)
    offline_after_s: float = Field(30.0, gt=0, description="raise a 设备离线 anomaly after this long without frames")
    frozen_after_s: float = Field(20.0, gt=0)


class GeoPose(_Strict):
    position: GeoPoint
    bearing_deg: float = Field(0.0, ge=0, lt=360, description="compass direction of the optical axis")
    height_m: float = Field(4.0, ge=0)
    fov_deg: float = Field(90.0, gt=0, le=360)
    homography_points: list[tuple[float, float, float, float]] | None = Field(
        None, description="pairs (x_px, y_px, lon, lat) mapping image to ground; at least 4"
    )


class CameraConfig(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str
    enabled: bool = True
    source: SourceConfig
    pose: GeoPose
    analysis: AnalysisConfig = AnalysisConfig()
    health: HealthConfig = HealthConfig()


class DeviceConfig(_Strict):
    """A sensor or set-top box in the registry."""

    id: str = Field(pattern=ID_PATTERN)
    type: Literal["set_top_box", "smoke", "gas", "water_level", "manhole_tilt", "door", "fence", "generic"]
    name: str = ""
    household: str | None = None
    address: str = ""
    location: GeoPoint
    secret: str | None = Field(None, description="HMAC key of the device; never logged")
    profile: str | None = None
    heartbeat_s: float = Field(300.0, gt=0)


class MqttConfig(_Strict):
    topic_prefix: str = "gridwatch/v1"
    client_id: str = "gridwatch-ingest"
    shared_group: str | None = "gridwatch"
    qos: int = Field(1, ge=0, le=2)
    max_payload_bytes: int = Field(64 * 1024, gt=0)


class IngestConfig(_Strict):
    footage_dir: str = Field("../../shared/footage", description="relative to the deployment file")
    allow_private_sources: bool = Field(
        False, description="let camera URLs point at loopback/private addresses (test rigs, on-prem NVRs)"
    )
    mqtt: MqttConfig = MqttConfig()
