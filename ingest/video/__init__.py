"""Video ingest: cameras of every kind decoded, paced to the analysis rate, and watched for health.

Sources: RTSP/RTSPS (TCP/UDP), RTMP, HTTP MJPEG and snapshots, HLS, local files looped as live,
``footage:`` clips, ``synthetic:`` scenes, WebRTC/WHIP, and plugins (entry-point group
``gridwatch.sources``). See docs/INTEGRATORS-video.md.
"""
from ingest.video.errors import (
    CameraExistsError,
    InvalidSourceError,
    ProbeError,
    SourceError,
    SourceUnavailableError,
    UnknownCameraError,
    UnsupportedSourceError,
)
from ingest.video.health import CameraStatus, HealthEvent
from ingest.video.manager import CameraManager
from ingest.video.picture import Picture
from ingest.video.probe import ProbeResult, probe
from ingest.video.registry import ENTRY_POINT_GROUP, register_source, reload_plugins, unregister_source
from ingest.video.source import Source, SourceContext, StreamInfo
from ingest.video.synthetic import SCENES
from ingest.video.urls import redact_url, validate_source_url
from ingest.video.whip import WhipIngest

__all__ = [
    "CameraExistsError", "CameraManager", "CameraStatus", "ENTRY_POINT_GROUP", "HealthEvent", "InvalidSourceError",
    "Picture", "ProbeError", "ProbeResult", "SCENES", "Source", "SourceContext", "SourceError",
    "SourceUnavailableError", "StreamInfo", "UnknownCameraError", "UnsupportedSourceError", "WhipIngest", "probe",
    "redact_url", "register_source", "reload_plugins", "unregister_source", "validate_source_url",
]
