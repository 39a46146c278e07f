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

from ingest.devices.mqtt_ingest import MqttIngest
from ingest.devices.topics import partition_filters

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


class DevicesRole:
    """Runs MQTT ingest (one partition of the devices) and the sensor-rule clock."""

    name = "devices"

    def __init__(self, mqtt_url: str, cfg: Any, registry: Any, *, file_alarms: Callable[[list[Any]], list[Any]],
                 on_reading: Callable[..., None], on_status: Callable[..., None], tick: Callable[[float], None],
                 on_reject: Callable[[str, str, bytes], None], nonce_store: Any, ledger: Any,
                 partition: Partition = Partition(), sources: bool = True):
        self.registry = registry
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
                                   nonce_store=nonce_store, ledger=ledger,
                                   client_suffix=f"p{partition.index}of{partition.count}" if partition.count > 1 else None,
                                   filters=filters)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _file_alarm(self, press: Any) -> str:
        result = self.file_alarms([press])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _ticks(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            self._tick(time.time())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._ticks, args=(self._stop,), name="sensor-ticks", daemon=True)
        self._thread.start()
        if self.mqtt is not None:
            self.mqtt.start()
            log.info("devices role: partition %s, MQTT client %s", self.partition, self.mqtt.client_id)

    def stop(self) -> None:
        self._stop.set()
        if self.mqtt is not None:
            self.mqtt.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def status(self) -> dict[str, Any]:
        return {"partition": str(self.partition), "mqtt": self.mqtt.stats() if self.mqtt else None}
