"""This process's cameras, devices and device profiles: the deployment file's, with the API's changes from SQL.

Why a part of its own: since API changes live in the SQL store (``alerts.config_store``) and reach every
process through a Redis stream (``ingest.changes``), each process must rebuild its lists from the same
truth — at start (a restart keeps the changes), after its own API call, and when another API node changed
something. The lists are always recomputed as *file seed + store rows* under one lock, so whichever
recomputation read the store last is the one left in place (two threads never leave an older list).
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from ingest.changes import ConfigChanges, apply_overrides

log = logging.getLogger(__name__)

# What a change through the API can meet: the store or Redis away. The API answers 503 (retry is safe: upserts).
HANDOVER_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, SQLAlchemyError)


class ConfigState:
    """Holds the file's seeds and keeps ``deployment.cameras`` / ``.devices`` / ``.device_profiles`` to the store."""

    def __init__(self, deployment: Any, cameras: ConfigChanges, devices: ConfigChanges, profiles: ConfigChanges):
        self.deployment = deployment
        self.cameras, self.devices, self.profiles = cameras, devices, profiles
        self._seed_cameras = list(deployment.cameras)
        self._seed_devices = list(deployment.devices)
        self._lock = threading.Lock()
        self._after: dict[str, str] = {}

    # -- the lists, recomputed from the truth --------------------------------------------------
    def camera_list(self) -> list[Any]:
        """The file's cameras with the API's additions, replacements and removals (read from the store now)."""
        from gateway.config import Camera

        return apply_overrides(list(self._seed_cameras), self.cameras.overrides(), Camera.model_validate)

    def reload_cameras(self) -> None:
        with self._lock:
            self.deployment.cameras = self.camera_list()

    def reload_devices(self) -> None:
        from ingest.config import DeviceConfig

        with self._lock:
            self.deployment.devices = apply_overrides(list(self._seed_devices), self.devices.overrides(),
                                                      DeviceConfig.model_validate)

    def load(self) -> None:
        """At start: the API's changes made before this process (re)started, by it or by another node.

        The streams' positions are taken first, so a change committed while the store is read is still followed."""
        for changes in (self.cameras, self.devices, self.profiles):
            try:
                self._after[changes.kind] = changes.last_id()
            except redis.RedisError as exc:  # Redis away at start: follow from whatever comes next
                log.warning("%s changes stream not read: %s", changes.kind, exc)
                self._after[changes.kind] = "$"
        self.reload_cameras()
        self.reload_devices()
        for name, doc in self.profiles.overrides().items():
            if doc is not None:
                self._put_profile(name, doc, book=None)

    # -- profiles ------------------------------------------------------------------------------
    def _put_profile(self, name: str, doc: dict[str, Any], book: Any) -> None:
        from detectors.device_profiles import DeviceProfile

        try:
            profile = DeviceProfile.model_validate({k: v for k, v in doc.items() if k != "id"})
        except Exception as exc:  # a bad entry costs that profile's change, never the role
            log.error("device profile %s from the API's changes ignored: %s", name, exc)
            return
        self.deployment.device_profiles[name] = profile
        if book is not None:
            book.put(name, profile)

    # -- following other nodes' changes -------------------------------------------------------
    def follow_cameras(self, stop: threading.Event) -> None:
        self.cameras.follow_forever(self._after.get("camera", "$"), lambda _op, _id: self.safely(self.reload_cameras), stop, "camera")

    def follow_devices(self, registry: Any, stop: threading.Event) -> None:
        """The API's registry (HTTPS presses are verified against it) and device list, as other nodes change them."""
        from ingest.config import DeviceConfig

        def apply(_op: str, device_id: str) -> None:
            def one() -> None:
                doc = self.devices.get(device_id)
                if doc is None:
                    registry.remove(device_id)
                else:
                    registry.upsert(DeviceConfig.model_validate(doc))
                self.reload_devices()
            self.safely(one)

        self.devices.follow_forever(self._after.get("device", "$"), apply, stop, "device")

    def follow_profiles(self, book: Any, stop: threading.Event) -> None:
        """Profile edits made through any API node, into this process's ``ProfileBook``."""
        def apply(_op: str, name: str) -> None:
            def one() -> None:
                doc = self.profiles.get(name)
                if doc is not None:
                    self._put_profile(name, doc, book)
            self.safely(one)

        self.profiles.follow_forever(self._after.get("profile", "$"), apply, stop, "device profile")

    @staticmethod
    def safely(fn: Any) -> None:
        """Run one apply/reload; an error is logged, never raised into a follower loop or an API answer."""
        try:
            fn()
        except Exception as exc:  # the store away or a bad row: this change waits for the next one or a restart
            log.error("configuration change not applied: %s", exc)
