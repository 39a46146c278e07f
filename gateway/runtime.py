"""Composes GridWatch's roles — api, intake, sla, notify, devices, video — for one process.

Each role is built by its own package and keeps its own logic:
``alerts.roles`` (intake, SLA, notify, the alarm filer), ``ingest.devices.role`` (MQTT ingest of one
partition of the devices, sensor-rule ticks, alarm filing in that process), ``detectors.video_role``
(a ``VideoEngine`` over the cameras, camera state published to Redis) and ``gateway.app`` (the API).
``Runtime(deployment, roles=...)`` builds the parts the given roles need and nothing else; with every
role it is the embedded all-in-one process the unit tests use, the same code path the supervisor's
children run one role at a time (``gateway.supervisor``). Roles only meet in Redis, the SQL store and
the broker, so any of them can move to another process or host.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from alerts.config_store import SqlConfigStore
from alerts.grids import GridIndex, load_grid_file
from alerts.store import open_store
from alerts.streams import AnomalyOutbox, StreamKeys, dead_letter
from ingest.anomaly import Anomaly, Evidence
from gateway.auth import load_secret
from gateway.config import Deployment
from gateway.config_state import ConfigState
from gateway.local_services import LocalServices, ensure_services
from ingest.geo import GeoPoint
from ingest.redis_connect import connect

log = logging.getLogger("gridwatch")

ROLES: tuple[str, ...] = ("api", "intake", "sla", "notify", "devices", "video")
ALERT_ROLES = {"api", "intake", "sla", "notify", "devices"}  # the roles that read or write tickets


def parse_roles(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"api,video"`` → ("api", "video") in the canonical order; a clear error naming an unknown role."""
    if text is None:
        return ROLES
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in ROLES]
    if unknown or not names:
        raise ValueError(f"--roles: unknown role(s) {', '.join(unknown) or '(none given)'}; choose from {','.join(ROLES)}")
    return tuple(r for r in ROLES if r in names)


class Runtime:
    """The parts one GridWatch process holds for its roles. The web app reads it; it never builds parts itself."""

    def __init__(self, deployment: Deployment, *, sources: bool = True, consumer: str | None = None,
                 roles: Iterable[str] = ROLES, video_workers: int | None = None, devices_partition: Any = None):
        from detectors.camera_state import CameraControl, CameraKeys, CameraStateReader
        from detectors.snapshots import NearbySnapshots
        from detectors.device_profiles import ProfileBook
        from ingest.devices import DeviceRegistry, PressLedger, PressQueue, RedisNonceStore
        from ingest.devices.role import device_changes, profile_changes

        dep = self.deployment = deployment
        self.role_names: tuple[str, ...] = parse_roles(list(roles))
        self.sources = sources
        self.keys = StreamKeys(dep.services.stream_prefix)
        self.camera_keys = CameraKeys(dep.services.stream_prefix)
        self.grids: GridIndex = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
        dep.run_dir.mkdir(parents=True, exist_ok=True)
        self.evidence_dir: Path = dep.evidence_dir  # the local store's folder (tests and tools read it)
        self.evidence_store = dep.evidence_store()  # every evidence writer and the API's evidence reads
        self.redis = connect(dep.services.redis_url)  # one server or a Redis Cluster (ingest.redis_connect)
        self.outbox = AnomalyOutbox(self.redis, self.keys)
        self.consumer = consumer or f"{os.uname().nodename}-{os.getpid()}"
        # The SQL store: tickets for the alert roles, and for every role the cameras, devices and profiles
        # changed through the API (the deployment file is their seed; alerts.config_store).
        self.store = open_store(dep.sql_url)
        self.config_store = SqlConfigStore(self.store)
        # Cameras as the API sees them, wherever they are decoded: state read from Redis, changes via SQL + a stream.
        self.camera_state = CameraStateReader(self.redis, self.camera_keys)
        self.camera_control = CameraControl(self.redis, self.camera_keys, self.config_store)
        self.snapshots_near = NearbySnapshots(self.camera_state, self._camera_poses, self.evidence_store)
        self.device_changes = device_changes(self.redis, dep.services.stream_prefix, self.config_store)
        self.profile_changes = profile_changes(self.redis, dep.services.stream_prefix, self.config_store)
        self.config = ConfigState(dep, self.camera_control, self.device_changes, self.profile_changes)
        self.config.load()
        self.profiles = ProfileBook(dep.device_profiles)  # device profiles: editable at run time (API)
        self.devices = DeviceRegistry(dep.devices)
        self.nonces = RedisNonceStore(self.redis, self.keys.prefix)
        self.press_ledger = PressLedger(self.redis, self.keys.prefix, dep.ingest.mqtt.press_dedup_s)
        # Presses are queued durably (Redis stream) before anything else; the devices role's filer files them.
        # The two sides only share Redis, so an API process queues what a devices process files.
        mq = dep.ingest.mqtt
        self.press_queue = PressQueue(self.redis, self.keys.prefix, dedup_s=mq.press_dedup_s, wait_s=mq.press_ack_wait_s)
        self.press_filer = None
        self.core = self.channels = self.intake = self.cases = self.escalator = self.notifier = self.filer = None
        self.case_outbox = None
        self.events_mqtt = None
        self.roles: dict[str, Any] = {}
        if ALERT_ROLES & set(self.role_names):
            self._build_alerts()
        self.video = self._build_video(video_workers) if "video" in self.role_names else None
        self.devices_role = self._build_devices(devices_partition) if "devices" in self.role_names else None
        if self.press_filer is not None and self.mqtt is not None:  # MQTT presses' cases go to their boxes from the filer
            self.press_filer.on_filed = self.mqtt.send_acks
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = time.time()
        self.started = False  # set once every role has started (the readiness probe)

    # -- building the roles --------------------------------------------------------------------
    def _build_alerts(self) -> None:
        from alerts.channels.build import ChannelSetup, build_channels
        from alerts.core import CoreParts, build_core
        from alerts.notify import Notifier
        from alerts.outbox import Outbox
        from alerts.roles import AlarmFiler, intake_role, notify_role, sla_role
        from alerts.sla import Escalator

        dep = self.deployment
        self.store.sync_grids(self.grids)
        # What a committed change owes Redis waits in the store's outbox; this process's relay sends what any
        # process (this one before a restart, or one that was killed) committed and did not send.
        self.case_outbox = Outbox(self.store, self.redis, self.keys)
        # One intake and one case service per process, over the deployment's categories plus the local
        # report categories (alerts.core); the human channels and every other part receive them.
        self.core = build_core(CoreParts(self.store, self.grids, self.redis, self.keys), dep.alerts,
                               dep.resolve(dep.channels.categories_file), consumer=self.consumer)
        self.alerts_cfg, self.intake, self.cases = self.core.alerts_cfg, self.core.intake, self.core.cases
        self.channels = build_channels(self.core, ChannelSetup.of(dep, evidence_dir=self.evidence_store,
                                                                   secret=load_secret(dep)))
        self.filer = AlarmFiler(self.intake, self.cases, self.devices.get, self.snapshots_near)
        if "devices" in self.role_names:
            from ingest.devices import PressFiler

            mq = dep.ingest.mqtt
            self.press_filer = PressFiler(self.redis, self.keys.prefix, self._file_alarms, consumer=self.consumer,
                                          lease_s=mq.press_lease_s, dedup_s=mq.press_dedup_s, on_dead=self._reject)
        self.escalator = Escalator(self.store, self.grids, self.alerts_cfg, self.redis, self.keys, outbox=self.case_outbox)
        if "intake" in self.role_names:
            self.roles["intake"] = intake_role(self.intake)
        if "sla" in self.role_names:
            from alerts.activity_retention import ActivityPruner
            from alerts.analysis import EarlyWarningScan

            scan = EarlyWarningScan(self.cases, self.intake, self.grids, dep.alerts.early_warning)
            self.roles["sla"] = sla_role(self.escalator, scan, ActivityPruner(self.store, dep.alerts.activity_retention))
        if "notify" in self.role_names:
            # Ticket events go to webhooks and, where this process talks to the broker, to MQTT
            # ({alerts.mqtt_topic_prefix}/{grid}/{event}, …/users/{user}): workers' apps subscribe to their grids.
            self.events_mqtt = _mqtt_publisher(dep.services.mqtt_url, f"{dep.ingest.mqtt.client_id}-events") if self.sources else None
            self.notifier = Notifier(self.alerts_cfg, self.redis, self.keys, consumer=self.consumer, mqtt=self.events_mqtt)
            self.roles["notify"] = notify_role(self.notifier, self.channels.notifier, on_stop=self._close_events_mqtt)

    def _build_video(self, workers: int | None) -> Any:
        from alerts.publishing import OutboxFactory
        from detectors.video_role import VideoRole
        from gateway.config import Camera

        role = VideoRole(self.deployment, self.redis, self.camera_keys, publish=self.publish, evidence_dir=self.evidence_store,
                         load_camera=Camera.model_validate, workers=workers, sources=self.sources,
                         publish_factory=OutboxFactory.of(self.deployment), config_store=self.config_store)
        self.roles["video"] = role
        return role

    def _build_devices(self, partition: Any) -> Any:
        from detectors.sensor_rules import SensorRuleEngine
        from ingest.devices.role import DevicesRole, IngestBoard, Partition

        self.sensor_rules = SensorRuleEngine(self.devices, publish=self.publish, profiles=self.profiles)
        role = DevicesRole(self.deployment.services.mqtt_url, self.deployment.ingest.mqtt, self.devices,
                           file_alarms=self._file_alarms, on_reading=self.sensor_rules.on_reading,
                           on_status=self.sensor_rules.on_status, tick=self.sensor_rules.tick, on_reject=self._reject,
                           nonce_store=self.nonces, ledger=self.press_ledger, partition=partition or Partition(),
                           sources=self.sources,
                           # with the API in this process the registry is the API's own; elsewhere follow its changes
                           changes=None if "api" in self.role_names else self.device_changes,
                           alarm_sink=self.press_queue, loops=self._devices_loops(),
                           board=IngestBoard(self.redis, self.keys.prefix))
        self.roles["devices"] = role
        return role

    def _devices_loops(self) -> list[tuple[str, Any]]:
        """The devices role's own loops beside MQTT ingest: the press filer."""
        return [("press-filer", self._run_press_filer)]

    def _run_press_filer(self, stop: threading.Event) -> None:
        self.press_filer.start()
        stop.wait()
        self.press_filer.stop()

    @property
    def mqtt(self) -> Any:
        """The devices role's MQTT ingest in this process (None where it does not run here)."""
        return self.devices_role.mqtt if self.devices_role is not None else None

    # -- the flow ------------------------------------------------------------------------------
    def publish(self, anomaly: Anomaly) -> None:
        self.outbox.publish(anomaly)

    def _reject(self, source: str, reason: str, payload: bytes) -> None:
        dead_letter(self.redis, self.keys, source, reason, payload)

    def _camera_poses(self) -> list[tuple[str, Any]]:
        """Every camera's pose, the API's changes included (they may have been made in another process)."""
        try:
            cams = self.config.camera_list()
        except Exception as exc:  # the store away: the cameras this process knows
            log.warning("cameras changed through the API not read: %s", exc)
            cams = list(self.deployment.cameras)
        return [(c.id, c.pose) for c in cams]

    def _file_alarms(self, presses: list[Any]) -> list[str | BaseException]:
        """File verified presses in one transaction (``alerts.roles.AlarmFiler``); the devices role runs this."""
        return self.filer.file_alarms(presses)

    def _file_alarm(self, press: Any) -> str:
        return self.filer.file_alarm(press)

    def press_alarm(self, device_id: str, body: bytes, headers: Mapping[str, str]):
        """The HTTPS one-key alarm: verify the box's signature, queue it durably, answer its case number.

        The devices role's filer (in this process or another) files it; the answer waits for its case number.
        """
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
        self._loop("outbox", self._flush_outbox, self._stop)
        self._follow_config()
        if "sla" in self.role_names:  # the one timer role sweeps old evidence (ingest.blobs.retention)
            from ingest.blobs.retention import run_sweeper

            retention = self.deployment.services.evidence_store.retention
            self._loop("evidence-retention", lambda stop: run_sweeper(self.evidence_store, retention, stop), self._stop)
        if self.case_outbox is not None:
            self._loop("case-outbox", self.case_outbox.run_forever, self._stop)
        self.press_queue.start()
        if "api" in self.role_names and self.channels is not None:   # the one role that suggests categories
            self.channels.suggester.warm_up()
        for role in self.roles.values():
            role.start()
        self.started = True
        log.info("GridWatch roles %s running: %d cameras, %d devices, %d grids", ",".join(self.role_names),
                 len(self.deployment.cameras), len(self.deployment.devices), len(self.grids.level("grid")))

    def _follow_config(self) -> None:
        """Changes other API nodes make: an API keeps its lists and registry to them; profiles reach devices roles."""
        if "api" in self.role_names:
            self._loop("camera-changes", self.config.follow_cameras, self._stop)
            self._loop("device-changes", lambda stop: self.config.follow_devices(self.devices, stop), self._stop)
        if "api" in self.role_names or "devices" in self.role_names:
            self._loop("profile-changes", lambda stop: self.config.follow_profiles(self.profiles, stop), self._stop)

    def _flush_outbox(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            if len(self.outbox):
                self.outbox.flush()

    def stop(self) -> None:
        for role in reversed(list(self.roles.values())):
            try:
                role.stop()
            except Exception:  # stop the others regardless
                log.exception("stopping role %s failed", role.name)
        if self.press_filer is not None:
            self.press_filer.stop()
        self.press_queue.stop()
        if len(self.outbox):
            self.outbox.flush()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.redis.close()
        self.store.close()

    def _close_events_mqtt(self) -> None:
        if self.events_mqtt is not None:
            self.events_mqtt.disconnect()
            self.events_mqtt.loop_stop()

    @property
    def model_status(self) -> str:
        """The detector's state: this process's video role, else what the video roles published."""
        if self.video is not None:
            return self.video.engine.model_status
        engines = self.camera_state.engines()
        return engines[0].get("model_status", "unknown") if engines else "unknown: no video role has reported"

    def status(self) -> dict:
        from detectors.pool_keys import PoolKeys
        from detectors.pool_store import board as pool_board
        from gateway.supervisor import RoleBoard
        from ingest.devices.role import IngestBoard

        model = self.model_status
        engines = self.camera_state.engines()
        return {
            "name": self.deployment.name,
            "uptime_s": round(time.time() - self.started_at, 1),
            "detector": model,
            "motion_only": model.startswith("motion-only"),
            "cameras": self.camera_state.status([c.id for c in self.deployment.cameras]),
            "pipeline": engines[0] if engines else {},
            "video_engines": engines,
            "mqtt": self.mqtt.stats() if self.mqtt else None,
            "mqtt_ingest": IngestBoard(self.redis, self.keys.prefix).read(),  # every devices process, by client id
            "roles": RoleBoard(self.redis, self.camera_keys.tag).read(),
            "pool": pool_board(self.redis, PoolKeys(self.deployment.services.stream_prefix)),  # video pool, fencing
            "process_roles": list(self.role_names),
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


def build_runtime(deployment: Deployment, *, sources: bool = True, roles: Iterable[str] = ROLES,
                  video_workers: int | None = None, devices_partition: Any = None) -> Runtime:
    return Runtime(deployment, sources=sources, roles=roles, video_workers=video_workers, devices_partition=devices_partition)


def console_line(deployment: Deployment) -> str:
    """What an operator opens first, printed once at start-up (by the supervisor, or by a lone API process)."""
    host, port = deployment.gateway.host, deployment.gateway.port
    return f"GridWatch console: http://{host}:{port}/  (API: http://{host}:{port}/api/v1, docs: /api/v1/docs)"


def serve(deployment: Deployment, roles: Iterable[str] = ROLES, *, video_workers: int | None = None,
          devices_partition: Any = None, services: bool = True, health_port: int | None = None,
          health_host: str = "0.0.0.0", announce: bool = True) -> int:
    """One process running ``roles`` until Ctrl-C / SIGTERM; with ``api`` among them, the web app under uvicorn.

    ``health_port``: answer ``/healthz`` and ``/readyz`` there (``gateway.probes``) — how Kubernetes and
    the supervisor see a role without the web app. ``announce``: print the console URL and what started
    (a supervisor's child leaves that to the supervisor).
    """
    import signal

    from gateway.probes import Probes, serve_probes

    local: LocalServices | None = None
    if services:
        local = ensure_services(deployment.services.redis_url, deployment.services.mqtt_url,
                                deployment.run_dir, autostart=deployment.services.autostart)
    runtime = build_runtime(deployment, roles=roles, video_workers=video_workers, devices_partition=devices_partition)
    probes = Probes(runtime)
    probe_server = serve_probes(probes, health_host, health_port) if health_port is not None else None
    try:
        runtime.start()
        if runtime.video is not None and runtime.model_status.startswith("motion-only"):
            log.warning("!!! DETECTOR MODEL NOT LOADED — running motion-only: %s", runtime.model_status)
        if announce:
            if "api" in runtime.role_names:
                print(console_line(deployment), flush=True)
            print(f"started {', '.join(runtime.role_names)} (pid {os.getpid()})"
                  + (f"; probes on port {probe_server.server_address[1]}" if probe_server else ""), flush=True)
        if "api" in runtime.role_names:
            import uvicorn

            from gateway.app import create_app

            uvicorn.run(create_app(runtime, probes=probes), host=deployment.gateway.host, port=deployment.gateway.port,
                        log_level="info")
        else:
            done = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: done.set())
            while not done.wait(1.0):
                pass
    finally:
        if probe_server is not None:
            probe_server.shutdown()
        runtime.stop()
        probes.close()
        if local is not None:
            local.stop()
    return 0
