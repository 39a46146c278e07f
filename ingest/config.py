"""Schema of the deployment file's ingest sections: cameras (source, geo-pose, analysis rate) and devices."""
from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from ingest.geo import GeoPoint

if TYPE_CHECKING:
    from ingest.video.urls import SourcePolicy

log = logging.getLogger(__name__)

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
    open_timeout_s: float = Field(5.0, gt=0, le=120, description="give up connecting/probing a source after this long")
    read_timeout_s: float = Field(10.0, gt=0, le=600, description="a connected source that sends nothing this long is reconnected")


class AnalysisConfig(_Strict):
    fps: float = Field(5.0, gt=0, le=60, description="frames per second handed to the detectors")
    width: int = Field(640, ge=64, le=3840, description="analysis frames are scaled to this width")
    keyframes_only: bool = False


class HealthConfig(_Strict):
    stall_after_s: float = Field(5.0, gt=0)
    offline_after_s: float = Field(30.0, gt=0, description="raise a 设备离线 anomaly after this long without frames")
    frozen_after_s: float = Field(20.0, gt=0)
    reconnect_initial_s: float = Field(0.5, gt=0, description="first reconnect delay; doubles per failure, with jitter")
    reconnect_max_s: float = Field(30.0, gt=0, description="ceiling of the reconnect delay")


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
    secret: str | None = Field(None, repr=False, description="HMAC key of the device; never logged")
    profile: str | None = Field(None, description="sensor profile name (detectors.sensor_profiles); defaults to the type")
    heartbeat_s: float = Field(300.0, gt=0, description="how often the device reports when nothing happens")
    offline_after_s: float | None = Field(None, gt=0, description="silence that counts as offline; 3 × heartbeat_s when unset")
    codec: str = Field("json", description="payload codec name (built-in json/kv or a gridwatch.codecs entry point)")


class MqttConfig(_Strict):
    topic_prefix: str = "gridwatch/v1"
    client_id: str = "gridwatch-ingest"
    shared_group: str | None = Field(None, description="split devices across several ingest processes with $share/{group}/…; off by default: Mosquitto 2.0 does not restore a shared subscription after a broker restart (docs/RELIABILITY.md F-MQTT-1)")
    qos: int = Field(1, ge=0, le=2)
    max_payload_bytes: int = Field(64 * 1024, gt=0)
    username: str | None = Field(None, description="the ingest service's own broker account")
    password: str | None = Field(None, repr=False, description="never logged")
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(7 * 86400, ge=0, description="broker keeps the subscription and queued messages this long while ingest is down")
    receive_maximum: int = Field(1000, ge=1, le=65535, description="QoS 1 messages the broker may have in flight to ingest")
    max_inflight: int = Field(1000, ge=1, le=65000, description="unacknowledged QoS 1 publishes (acks, notifications); under 65k message ids")
    replay_window_s: float = Field(60.0, gt=0, description="signed alarms must carry a timestamp within ± this of now")
    press_dedup_s: float = Field(86400.0, gt=0, description="how long a press id is remembered so repeats get the same case")
    alarm_workers: int = Field(4, ge=1, le=64, description="threads that file alarms, so a slow intake never blocks telemetry")
    press_ack_wait_s: float = Field(1.0, ge=0, le=30, description="how long an HTTPS press's answer waits for its case number; past it the box is told 'pending' (queued durably) and its retry gets the case (MQTT boxes are told 'queued' at once and sent the case when it is filed)")
    press_lease_s: float = Field(3.0, gt=0, le=300, description="a filer's claim on a queued press; a press whose filer died is filed by another filer (or after restart) once this has passed")


class IngestConfig(_Strict):
    footage_dir: str = Field("../../shared/footage", description="relative to the deployment file")
    camera_networks: list[str] = Field(
        default_factory=list,
        description="private networks (CIDRs, e.g. 10.20.0.0/16) where cameras and NVRs live; camera URLs may point "
                    "there. Loopback, link-local, cloud metadata and GridWatch's own services stay refused whatever "
                    "this says")
    allow_local_files: bool = Field(False, description="let camera sources be local files (file: or a path)")
    allow_private_sources: bool = Field(
        False, description="DEPRECATED: use camera_networks and allow_local_files. true stands for every private "
                           "range (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) plus local files; it no longer "
                           "opens loopback"
    )
    mqtt: MqttConfig = MqttConfig()

    # GridWatch's own endpoints ((address, port)); set by the gateway from the services and gateway sections.
    _own_services: frozenset = PrivateAttr(default_factory=frozenset)

    @field_validator("camera_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not a network in CIDR form (e.g. 10.20.0.0/16)") from None
        return value

    @model_validator(mode="after")
    def _deprecated_flag(self) -> "IngestConfig":
        if self.allow_private_sources:
            log.warning("ingest.allow_private_sources is deprecated: list the camera networks in "
                        "ingest.camera_networks (and set ingest.allow_local_files for file sources); it now stands "
                        "for every private range and no longer allows loopback")
        return self

    def set_own_services(self, endpoints: frozenset) -> None:
        """The gateway tells ingest where GridWatch's own services listen, so camera URLs can never reach them."""
        self._own_services = frozenset(endpoints)

    def source_policy(self) -> "SourcePolicy":
        """The camera-URL policy of this deployment (computed on each call: the API may change the fields)."""
        from ingest.video.urls import PRIVATE_NETWORKS, SourcePolicy

        networks = tuple(ipaddress.ip_network(n, strict=False) for n in self.camera_networks)
        if self.allow_private_sources:
            networks += PRIVATE_NETWORKS
        return SourcePolicy(networks, self.allow_local_files or self.allow_private_sources, self._own_services)
