"""The device registry: which sensors and set-top boxes exist, where they are, and whether they are alive.

Every message that arrives is checked against it (an unknown device is refused), the rules read a
device's type, profile and location from it, and the heartbeat rule reads ``last_seen``. It is
filled from the deployment file and changed at runtime through the REST API (``upsert``/``remove``);
``subscribe`` lets the runtime persist changes to the SQL store without this module knowing SQL.

A device's secret is wrapped in :class:`Secret`, so it never shows in a repr, a log line or a
JSON document; only :meth:`DeviceRegistry.secret_for` hands it out, to the signature check.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ingest.config import DeviceConfig
from ingest.geo import GeoPoint

DEFAULT_MISSED_HEARTBEATS = 3
log = logging.getLogger(__name__)


class Secret:
    """A credential that prints as ``'***'``; ``reveal()`` is the one explicit way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # pickling would copy the key into places nobody audits
        raise TypeError("a Secret cannot be pickled")


@dataclass(eq=False)
class Device:
    """One registered device: its configuration (location already in WGS-84) and its live state."""

    id: str
    type: str
    name: str
    household: str | None
    address: str
    location: GeoPoint
    profile: str | None
    heartbeat_s: float
    offline_after_s: float
    codec: str
    secret: Secret | None = field(default=None, repr=False)
    last_seen: float | None = None
    battery: float | None = None
    online: bool | None = None
    offline_after_set: bool = False  # the device's own offline_after_s (else its profile's missed heartbeats count)

    @classmethod
    def from_config(cls, cfg: DeviceConfig) -> "Device":
        offline_after = cfg.offline_after_s or cfg.heartbeat_s * DEFAULT_MISSED_HEARTBEATS
        return cls(
            id=cfg.id, type=cfg.type, name=cfg.name, household=cfg.household, address=cfg.address,
            location=cfg.location.wgs84(), profile=cfg.profile, heartbeat_s=cfg.heartbeat_s,
            offline_after_s=offline_after, codec=cfg.codec, offline_after_set=cfg.offline_after_s is not None,
            secret=Secret(cfg.secret) if cfg.secret else None,
        )

    def public(self) -> dict[str, Any]:
        """What an API or a log may show: everything but the secret (``has_secret`` says whether one is set)."""
        return {
            "id": self.id, "type": self.type, "name": self.name, "household": self.household,
            "address": self.address, "location": {"lon": self.location.lon, "lat": self.location.lat, "crs": "WGS84"},
            "profile": self.profile, "heartbeat_s": self.heartbeat_s, "offline_after_s": self.offline_after_s,
            "codec": self.codec, "has_secret": self.secret is not None,
            "last_seen": self.last_seen, "battery": self.battery, "online": self.online,
        }


Listener = Callable[[str, "Device | None"], None]


class DeviceRegistry:
    """Thread-safe map of device id → :class:`Device`; reads are lock-free dictionary look-ups."""

    def __init__(self, devices: Iterable[DeviceConfig] = ()) -> None:
        self._lock = threading.Lock()
        self._devices: dict[str, Device] = {}
        self._listeners: list[Listener] = []
        self.version = 0  # bumped on every upsert/remove, so caches (compiled rules) know to rebuild
        for cfg in devices:
            self.upsert(cfg)

    def get(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    def all(self) -> list[Device]:
        return list(self._devices.values())

    def __len__(self) -> int:
        return len(self._devices)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._devices

    def upsert(self, cfg: DeviceConfig) -> Device:
        """Add or replace a device; its live state (last_seen, battery, online) survives a replacement."""
        new = Device.from_config(cfg)
        with self._lock:
            old = self._devices.get(cfg.id)
            if old is not None:
                new.last_seen, new.battery, new.online = old.last_seen, old.battery, old.online
            self._devices[cfg.id] = new
            self.version += 1
        self._notify(cfg.id, new)
        return new

    def remove(self, device_id: str) -> bool:
        with self._lock:
            gone = self._devices.pop(device_id, None)
            if gone is not None:
                self.version += 1
        if gone is not None:
            self._notify(device_id, None)
        return gone is not None

    def touch(self, device_id: str, at: float, battery: float | None = None, online: bool | None = True) -> Device | None:
        """Record that the device was heard from at ``at`` (receive time); returns it, or None when unknown."""
        dev = self._devices.get(device_id)
        if dev is None:
            return None
        if dev.last_seen is None or at > dev.last_seen:
            dev.last_seen = at
        if battery is not None:
            dev.battery = battery
        if online is not None:
            dev.online = online
        return dev

    def secret_for(self, device_id: str) -> str | None:
        dev = self._devices.get(device_id)
        return dev.secret.reveal() if dev is not None and dev.secret is not None else None

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(device_id, device_or_None)`` after every upsert/remove (e.g. to persist it)."""
        self._listeners.append(listener)

    def _notify(self, device_id: str, device: Device | None) -> None:
        for listener in list(self._listeners):
            try:
                listener(device_id, device)
            except Exception:  # a broken listener must not stop registration
                log.exception("device registry listener failed for %s", device_id)
