"""One GridWatch process: every role of the flow wired together, started and stopped as one.

``Runtime`` only composes; each part keeps its own logic:
camera → ``ingest.video.CameraManager`` → ``detectors.VideoPipeline`` → Anomaly → Redis stream →
``alerts.Intake`` → Ticket (SQL) + the grid's duty queue; MQTT → ``ingest.devices.MqttIngest`` →
``detectors.sensor_rules`` → Anomaly; one-key alarms are filed synchronously so the box gets its
case number at once. The same parts can run as separate processes: each reads only the deployment
file and the Redis streams.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis

from alerts.grids import GridIndex, load_grid_file
from alerts.streams import AnomalyOutbox, StreamKeys, dead_letter
from detectors.anomaly import Anomaly, Evidence
from gateway.auth import load_secret
from gateway.config import Deployment
from gateway.services import LocalServices, ensure_services
from ingest.geo import GeoPoint

log = logging.getLogger("gridwatch")


class Runtime:
    """Everything one GridWatch process holds. The web app reads it; it never builds parts itself."""

    def __init__(self, deployment: Deployment, *, sources: bool = True, consumer: str | None = None):
        from alerts.channels.build import build_channels
        from alerts.notify import Notifier
        from alerts.sla import Escalator
        from alerts.store import open_store
        from detectors.video import VideoPipeline
        from detectors.device_profiles import ProfileBook
        from detectors.sensor_rules import SensorRuleEngine
        from ingest.devices import DeviceRegistry, PressFiler, PressLedger, PressQueue, RedisNonceStore

        dep = self.deployment = deployment
        self.keys = StreamKeys(dep.services.stream_prefix)
        self.grids: GridIndex = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
        dep.run_dir.mkdir(parents=True, exist_ok=True)
        self.evidence_dir: Path = dep.run_dir / "evidence"
        self.evidence_dir.mkdir(parents=True, exist_ok=True)
        self.redis = redis.Redis.from_url(dep.services.redis_url)
        self.outbox = AnomalyOutbox(self.redis, self.keys)
        self.store = open_store(dep.sql_url)
        self.store.sync_grids(self.grids)
        consumer = consumer or f"{os.uname().nodename}-{os.getpid()}"
        # The human channels add local report categories (with keywords) to the deployment's; every
        # part that files or times tickets must see the same set, so it is computed once, here.
        # The channels build the intake and case service over that set; the whole process shares them.
        self.channels = build_channels(dep, store=self.store, grids=self.grids, redis_client=self.redis, keys=self.keys,
                                       evidence_dir=self.evidence_dir, secret=load_secret(dep), consumer=consumer)
        alerts_cfg = self.alerts_cfg = self.channels.alerts_cfg
        self.intake = self.channels.service.intake
        self.cases = self.channels.service.cases
        self.escalator = Escalator(self.store, self.grids, alerts_cfg, self.redis, self.keys)
        # Ticket events go to webhooks and, where this process talks to the broker, to MQTT
        # ({alerts.mqtt_topic_prefix}/{grid}/{event}, …/users/{user}): workers' apps subscribe to their grids.
        self.events_mqtt = _mqtt_publisher(dep.services.mqtt_url, f"{dep.ingest.mqtt.client_id}-events") if sources else None
        self.notifier = Notifier(alerts_cfg, self.redis, self.keys, consumer=consumer, mqtt=self.events_mqtt)

        self.pipeline = VideoPipeline(dep.detection, dep.base_dir, self.evidence_dir, publish=self.publish)
        self.cameras = None
        if sources:
            from ingest.video import CameraManager

            self.cameras = CameraManager(dep.ingest, dep.base_dir, sink=self.pipeline.submit, on_health=self._on_camera_health)
        for cam in dep.cameras:
            self.pipeline.configure_camera(cam.id, cam.pose, cam)

        self.devices = DeviceRegistry(dep.devices)
        self.nonces = RedisNonceStore(self.redis, self.keys.prefix)
        self.press_ledger = PressLedger(self.redis, self.keys.prefix, dep.ingest.mqtt.press_dedup_s)
        # Presses are queued durably (Redis stream) before anything else; the filer files them. The two
        # sides only share Redis, so the filer may run in another process (the devices role).
        mq = dep.ingest.mqtt
        self.press_queue = PressQueue(self.redis, self.keys.prefix, dedup_s=mq.press_dedup_s, wait_s=mq.press_ack_wait_s)
        self.press_filer: PressFiler | None = PressFiler(self.redis, self.keys.prefix, self._file_alarms, consumer=consumer,
                                                         lease_s=mq.press_lease_s, dedup_s=mq.press_dedup_s,
                                                         on_dead=self._reject)
        self.profiles = ProfileBook(dep.device_profiles)  # device profiles: editable at run time (API)
        self.sensor_rules = SensorRuleEngine(self.devices, publish=self.publish, profiles=self.profiles)
        self.mqtt = None
        if sources:
            from ingest.devices import MqttIngest

            self.mqtt = MqttIngest(dep.services.mqtt_url, dep.ingest.mqtt, self.devices, on_reading=self.sensor_rules.on_reading,
                                   on_alarm=self._file_alarm, on_alarms=self._file_alarms, on_reject=self._reject,
                                   on_status=self.sensor_rules.on_status,
                                   nonce_store=self.nonces,
                                   ledger=self.press_ledger, alarm_sink=self.press_queue)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = time.time()

    # -- the flow ------------------------------------------------------------------------------
    def publish(self, anomaly: Anomaly) -> None:
        self.outbox.publish(anomaly)

    def _reject(self, source: str, reason: str, payload: bytes) -> None:
        dead_letter(self.redis, self.keys, source, reason, payload)

    def _on_camera_health(self, event: Any) -> None:
        from detectors.video import health_anomaly

        cam = self.camera_config(event.camera_id)
        if cam is None:
            return
        anomaly = health_anomaly(event.camera_id, cam.pose, event.kind, event.reason, event.at)
        if anomaly is not None:
            self.publish(anomaly)

    def camera_config(self, camera_id: str):
        return next((c for c in self.deployment.cameras if c.id == camera_id), None)

    def snapshots_near(self, points: list[GeoPoint], limit: int = 3) -> list[list[Evidence]]:
        """For each point, snapshots taken now by the cameras best placed to see it (facing it, then nearest).

        A burst of presses from one estate sees the same few cameras: each camera is photographed
        once per call and its snapshot shared by every point it serves.
        """
        from detectors.nearby import cameras_seeing, write_snapshot

        if self.cameras is None:
            return [[] for _ in points]
        poses = [(c.id, c.pose) for c in self.deployment.cameras]
        chosen = [cameras_seeing(poses, point, limit=limit) for point in points]
        taken: dict[str, Evidence] = {}
        for camera_id in dict.fromkeys(cid for ids in chosen for cid in ids):
            frame = self.cameras.latest(camera_id)
            if frame is None:
                continue
            try:
                taken[camera_id] = write_snapshot(frame, self.evidence_dir)
            except (OSError, ValueError) as exc:  # a full disk costs the picture, never the alarm
                log.error("snapshot of %s for an alarm not written: %s", camera_id, exc)
        return [[taken[cid] for cid in ids if cid in taken] for ids in chosen]

    def _file_alarms(self, presses: list[Any]) -> list[str | BaseException]:
        """File verified presses in one transaction; each gets its case number (the box's acknowledgement)."""
        from detectors.sensor_rules import alarm_anomaly

        numbers: list[str | BaseException | None] = [None] * len(presses)
        new = [i for i, p in enumerate(presses) if not (p.kind == "cancel" and p.case)]
        for i in set(range(len(presses))) - set(new):
            numbers[i] = self._cancel_alarm(presses[i])
        devices = [self.devices.get(presses[i].device_id) for i in new]
        snapshots = self.snapshots_near([d.location for d in devices])
        anomalies = [alarm_anomaly(presses[i], d, snaps) for i, d, snaps in zip(new, devices, snapshots)]
        for i, ref in zip(new, self.intake.file_many(anomalies, return_exceptions=True)):
            numbers[i] = ref if isinstance(ref, BaseException) else ref.number
        return numbers

    def _file_alarm(self, press: Any) -> str:
        result = self._file_alarms([press])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _cancel_alarm(self, press: Any) -> str:
        """误按: the resident cancels; the case is voided with the reason, unless someone already acted on it."""
        from alerts.lifecycle import TransitionError

        try:
            self.cases.transition(press.case, "void", f"device:{press.device_id}", note=f"误按 (resident cancelled): {press.reason or ''}".strip(),
                                  role="system")
        except TransitionError as exc:
            log.info("cancel of %s by %s not applied: %s", press.case, press.device_id, exc)
        return press.case

    def press_alarm(self, device_id: str, body: bytes, headers: Mapping[str, str]):
        """The HTTPS one-key alarm: verify the box's signature, queue it durably, answer its case number."""
        from ingest.devices import handle_press

        if self.press_filer is not None:
            self.press_filer.start()  # idempotent; a runtime used without start() still files its presses
        return handle_press(self.devices, body, headers, nonce_store=self.nonces, ledger=self.press_ledger,
                            on_alarm=self._file_alarm, on_reject=self._reject, batcher=self.press_queue)

    # -- lifecycle -----------------------------------------------------------------------------
    def _loop(self, name: str, fn, stop: threading.Event) -> None:
        thread = threading.Thread(target=fn, args=(stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def start(self) -> None:
        self._loop("intake", self.intake.run_forever, self._stop)
        self._loop("escalation", self.escalator.run_forever, self._stop)
        self._loop("notify", self.notifier.run_forever, self._stop)
        self._loop("notify-reporters", self.channels.notifier.run_forever, self._stop)
        self._loop("sensor-ticks", self._tick_sensors, self._stop)
        self._loop("outbox", self._flush_outbox, self._stop)
        if self.press_filer is not None:
            self.press_filer.start()
        self.press_queue.start()
        self.pipeline.start()
        if self.cameras is not None:
            self.cameras.start([c for c in self.deployment.cameras if c.enabled])
        if self.mqtt is not None:
            self.mqtt.start()
        log.info("GridWatch running: %d cameras, %d devices, %d grids; detector: %s", len(self.deployment.cameras),
                 len(self.deployment.devices), len(self.grids.level("grid")), self.pipeline.model_status)

    def _tick_sensors(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            self.sensor_rules.tick(time.time())

    def _flush_outbox(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            if len(self.outbox):
                self.outbox.flush()

    def stop(self) -> None:
        self._stop.set()
        if self.mqtt is not None:
            self.mqtt.stop()
        if self.press_filer is not None:
            self.press_filer.stop()
        self.press_queue.stop()
        if self.cameras is not None:
            self.cameras.stop()
        self.pipeline.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.events_mqtt is not None:
            self.events_mqtt.disconnect()
            self.events_mqtt.loop_stop()
        self.redis.close()

    def status(self) -> dict:
        model = self.pipeline.model_status
        return {
            "name": self.deployment.name,
            "uptime_s": round(time.time() - self.started_at, 1),
            "detector": model,
            "motion_only": model.startswith("motion-only"),
            "cameras": {cid: s.to_dict() for cid, s in (self.cameras.status().items() if self.cameras else [])},
            "pipeline": self.pipeline.stats(),
            "mqtt": self.mqtt.stats() if self.mqtt else None,
        }


def _mqtt_publisher(url: str, client_id: str):
    """A paho client that keeps itself connected in a background loop, for publishing only."""
    import paho.mqtt.client as mqtt

    from ingest.devices import parse_mqtt_url

    params = parse_mqtt_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if params["username"]:
        client.username_pw_set(params["username"], params["password"])
    if params["tls"]:
        client.tls_set()
    client.connect_async(params["host"], params["port"])
    client.loop_start()
    return client


def build_runtime(deployment: Deployment, *, sources: bool = True) -> Runtime:
    return Runtime(deployment, sources=sources)


def serve(deployment: Deployment) -> int:
    """``gridwatch run``: services up, every role started, the web app served until Ctrl-C."""
    import uvicorn

    from gateway.app import create_app

    services: LocalServices = ensure_services(deployment.services.redis_url, deployment.services.mqtt_url,
                                              deployment.run_dir, autostart=deployment.services.autostart)
    runtime = build_runtime(deployment)
    try:
        runtime.start()
        if runtime.pipeline.model_status.startswith("motion-only"):
            log.warning("!!! DETECTOR MODEL NOT LOADED — running motion-only: %s", runtime.pipeline.model_status)
        host, port = deployment.gateway.host, deployment.gateway.port
        print(f"GridWatch console: http://{host}:{port}/  (API: http://{host}:{port}/api/v1, docs: /docs)", flush=True)
        uvicorn.run(create_app(runtime), host=host, port=port, log_level="info")
    finally:
        runtime.stop()
        services.stop()
    return 0
