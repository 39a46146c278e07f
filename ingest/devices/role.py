"""The devices role: MQTT ingest of sensors and set-top boxes, sensor-rule ticks, and alarm filing.

Presses are filed here, in this role's process, by the callable the composer injects
(``file_alarms``: today ``alerts.roles.AlarmFiler.file_alarms``); ingest never imports alerts.
Sensor readings go to the injected rule callbacks (``detectors.sensor_rules``), anomalies leave through
the composer's outbox.

Several devices processes split the devices by partition (``--devices-partition i/n``): each
subscribes to its own devices' topics by name under its own persistent MQTT session, so a broker
restart loses nothing (shared subscriptions would be dropped by Mosquitto 2.0).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from ingest.changes import ConfigChanges, ConfigStore
from ingest.devices.mqtt_ingest import MqttIngest
from ingest.devices.topics import UPLINK, device_topic, partition_filters, partition_of
from ingest.redis_connect import hash_tag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Partition:
    """Partition ``index`` of ``count`` (``count == 1``: every device, one process)."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Partition":
        """``"i/n"`` as the CLI takes it; a clear error for anything else."""
        try:
            index, count = (int(p) for p in text.split("/", 1))
        except ValueError:
            raise ValueError(f"--devices-partition {text!r}: expected i/n, e.g. 0/2") from None
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"--devices-partition {text!r}: need 0 <= i < n")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def device_changes(client: redis.Redis, prefix: str, store: ConfigStore) -> ConfigChanges:
    """Devices added, replaced or removed through the API: SQL rows (kind ``device``) + ``{prefix}:devices:control``."""
    return ConfigChanges(client, store, "device", f"{hash_tag(prefix)}:devices:control")


def profile_changes(client: redis.Redis, prefix: str, store: ConfigStore) -> ConfigChanges:
    """Device profiles edited through the API: SQL rows (kind ``profile``) + ``{prefix}:profiles:control``."""
    return ConfigChanges(client, store, "profile", f"{hash_tag(prefix)}:profiles:control")


STATS_EVERY_S = 5.0
STATS_STALE_S = 20.0


class IngestBoard:
    """Each devices process's MQTT ingest counters in Redis (``{prefix}:devices:ingest``, field = client id),
    so ``/api/v1/status`` shows them wherever the API runs."""

    def __init__(self, client: redis.Redis, prefix: str):
        self.client, self.key = client, "{" + prefix + "}:devices:ingest"

    def write(self, stats: dict[str, Any]) -> None:
        import json

        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.key, stats["client_id"], json.dumps({**stats, "published_at": time.time()}, default=str))
        pipe.expire(self.key, int(4 * STATS_STALE_S))
        pipe.execute()

    def read(self) -> dict[str, Any]:
        import json

        try:
            raw = self.client.hgetall(self.key)
        except redis.RedisError:
            return {}
        rows = {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}
        return {k: v for k, v in rows.items() if time.time() - float(v.get("published_at", 0)) <= STATS_STALE_S}


class DevicesRole:
    """Runs MQTT ingest (one partition of the devices) and the sensor-rule clock."""

    name = "devices"

    def __init__(self, mqtt_url: str, cfg: Any, registry: Any, *, file_alarms: Callable[[list[Any]], list[Any]],
                 on_reading: Callable[..., None], on_status: Callable[..., None], tick: Callable[[float], None],
                 on_reject: Callable[[str, str, bytes], None], nonce_store: Any, ledger: Any,
                 partition: Partition = Partition(), sources: bool = True, changes: ConfigChanges | None = None,
                 alarm_sink: Any = None, loops: list[tuple[str, Callable[[threading.Event], None]]] = (),
                 board: IngestBoard | None = None):
        """``changes``: follow the API's device changes into ``registry`` (where the API runs in another process).
        ``alarm_sink``: the durable press queue (``PressQueue``) verified MQTT presses go to.
        ``loops``: more ``fn(stop_event)`` loops of this role — the durable press stream's filer consumer
        (verified press → stream → ``file_alarms`` → ack) among them."""
        self._loops = list(loops)
        self.board = board
        self.registry = registry
        self.changes = changes
        self._topic_prefix = cfg.topic_prefix
        self.partition = partition
        self.file_alarms = file_alarms
        self._tick = tick
        self.mqtt: MqttIngest | None = None
        if sources:
            filters = None
            if partition.count > 1:
                filters = partition_filters(cfg.topic_prefix, [d.id for d in registry.all()], partition.index, partition.count)
            self.mqtt = MqttIngest(mqtt_url, cfg, registry, on_reading=on_reading, on_alarm=self._file_alarm,
                                   on_alarms=file_alarms, on_reject=on_reject, on_status=on_status,
                                   nonce_store=nonce_store, ledger=ledger, alarm_sink=alarm_sink,
                                   client_suffix=f"p{partition.index}of{partition.count}" if partition.count > 1 else None,
                                   filters=filters)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._after = "0-0"

    def _file_alarm(self, press: Any) -> str:
        result = self.file_alarms([press])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def apply(self, op: str, device_id: str) -> None:
        """Bring one device to what the API's change (its row in the store) says now."""
        from ingest.config import DeviceConfig

        try:
            doc = self.changes.get(device_id) if self.changes is not None else None
            if op == "remove" or doc is None:
                self.registry.remove(device_id)
                log.info("device %s removed", device_id)
                return
            self.registry.upsert(DeviceConfig.model_validate(doc))
            if self.mqtt is not None and self.partition.count > 1 and partition_of(device_id, self.partition.count) == self.partition.index:
                self.mqtt.add_filters([device_topic(self._topic_prefix, device_id, ch) for ch in UPLINK])
            log.info("device %s %s", device_id, op)
        except Exception as exc:  # one bad change must not stop ingest
            log.error("device change %s %s not applied: %s", op, device_id, exc)

    def _follow(self, stop: threading.Event) -> None:
        self.changes.follow_forever(self._after, self.apply, stop, "device")

    def _ticks(self, stop: threading.Event) -> None:
        """The sensor rules' clock (offline, stuck readings) every second; the ingest counters every 5 s."""
        next_stats = 0.0
        while not stop.wait(1.0):
            self._tick(time.time())
            if self.board is not None and self.mqtt is not None and time.monotonic() >= next_stats:
                next_stats = time.monotonic() + STATS_EVERY_S
                try:
                    self.board.write({**self.mqtt.stats(), "partition": str(self.partition)})
                except redis.RedisError as exc:
                    log.debug("ingest counters not published: %s", exc)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._ticks, args=(self._stop,), name="sensor-ticks", daemon=True)]
        if self.changes is not None:
            self._after = self.changes.last_id()
            self._threads.append(threading.Thread(target=self._follow, args=(self._stop,), name="device-changes", daemon=True))
        self._threads += [threading.Thread(target=fn, args=(self._stop,), name=name, daemon=True) for name, fn in self._loops]
        for thread in self._threads:
            thread.start()
        if self.mqtt is not None:
            self.mqtt.start()
            log.info("devices role: partition %s, MQTT client %s", self.partition, self.mqtt.client_id)

    def stop(self) -> None:
        self._stop.set()
        if self.mqtt is not None:
            self.mqtt.stop()
        for thread in self._threads:
            thread.join(timeout=5)

    def alive(self) -> bool:
        """The sensor clock, change follower and press filer still run (the liveness probe)."""
        return all(t.is_alive() for t in self._threads)

    def status(self) -> dict[str, Any]:
        return {"partition": str(self.partition), "mqtt": self.mqtt.stats() if self.mqtt else None}
