"""What the web app reads from the runtime: one typed interface instead of ``getattr`` on whatever was built.

``gateway.runtime.Runtime`` satisfies it; the routers and ``create_app`` are typed against it, so an attribute the
API needs and the runtime no longer has is a type error (mypy) and an AttributeError at start-up, not a 500 on the
first request that touches it. Parts a process without the alerts roles does not build are ``Optional``.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis

    from alerts.channels.build import Channels
    from alerts.grids import GridIndex
    from alerts.intake import Intake
    from alerts.service import CaseService
    from alerts.store import Store
    from alerts.streams import StreamKeys
    from detectors.camera_state import CameraControl, CameraStateReader
    from detectors.device_profiles import ProfileBook
    from gateway.config import Deployment
    from gateway.config_state import ConfigState
    from ingest.changes import ConfigChanges
    from ingest.blobs import BlobStore
    from ingest.devices import DeviceRegistry


class ApiRuntime(Protocol):
    """The parts of one GridWatch process that the API serves from."""

    deployment: Deployment
    grids: GridIndex
    redis: redis.Redis
    keys: StreamKeys
    evidence_dir: Path
    evidence_store: BlobStore
    # the SQL store and the case core (None only in a process built without the alerts roles)
    store: Store | None
    intake: Intake | None
    cases: CaseService | None
    channels: Channels | None
    # cameras and devices wherever they run: state read from Redis, changes announced there
    camera_state: CameraStateReader
    camera_control: CameraControl
    devices: DeviceRegistry
    device_changes: ConfigChanges
    profiles: ProfileBook
    profile_changes: ConfigChanges
    # this node's cameras/devices lists (file seed + SQL rows), rebuilt after each change the API hands over
    config: ConfigState

    @property
    def model_status(self) -> str: ...

    def status(self) -> dict[str, Any]: ...

    def press_alarm(self, device_id: str, body: bytes, headers: Mapping[str, str]) -> Any: ...
