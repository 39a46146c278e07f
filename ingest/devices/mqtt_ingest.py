"""MQTT ingest of sensor telemetry, alarm presses and device status (paho-mqtt 2.x, MQTT 5).

Delivery: QoS 1 on a persistent session — fixed client id, ``clean_start=False`` and a session
expiry — so the broker keeps the subscription and queues messages while GridWatch restarts.
Messages are acknowledged by hand (``manual_ack``) only after they were handled: telemetry once its
readings went through ``on_reading``, an alarm once it was durably queued (the runtime's press stream:
the box is told ``queued`` at once and the filer sends ``received`` + case) or filed and answered.
A crash before that means the broker delivers the message again.

Load: ``$share/{group}/…`` subscriptions let several ingest processes split the devices' traffic
(give each a distinct ``client_suffix``). Telemetry is handled on paho's network thread (it is
cheap); alarms go to a small thread pool, so a slow intake (SQL commit) never stalls telemetry.
With ``on_alarms`` (the batch form) the pool only verifies and claims each press, and an
:class:`~ingest.devices.alarms.AlarmBatcher` files all presses waiting in one call (group commit);
each box's ack is published, and its MQTT message acknowledged, as soon as its batch committed.
A burst of a thousand presses is then a few dozen transactions, not a thousand. With the durable press
queue as ``alarm_sink`` (the runtime) one press-intake thread replaces the pool: it takes every alarm message
waiting and verifies, de-duplicates and queues them together (a round trip for their nonces, one for their
enqueues), then answers each box ``queued``; the filer sends the case numbers (``send_acks``).
Outgoing QoS 1 publishes (acks, notifications) are capped by ``MqttConfig.max_inflight`` (< 65k ids).

Bad input never stops the loop and never costs a valid message: each message is handled on its
own; anything refused goes to ``on_reject(source, reason, payload)`` and the reject counters, and
is still acknowledged (a poison message must not be redelivered forever).
"""
from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.config import MqttConfig
from ingest.devices import metrics
from ingest.devices.alarms import (
    AlarmBatcher, MemoryPressLedger, OnAlarms, PressError, PressLedger, ack_message, parse_press, process_press,
)
from ingest.devices.codecs import CodecError, get_codec, telemetry_readings
from ingest.devices.messages import AlarmPress, Reading
from ingest.devices.registry import DeviceRegistry
from ingest.devices.signing import MemoryNonceStore, NonceStore, SignatureError, verify_signed
from ingest.devices.topics import device_topic, parse_topic, subscription_filters

log = logging.getLogger(__name__)

OnReading = Callable[[Reading], None]
OnAlarm = Callable[[AlarmPress], "str | None"]
OnReject = Callable[[str, str, bytes], None]
OnStatus = Callable[[str, bool, float], None]


def parse_mqtt_url(url: str) -> dict[str, Any]:
    """``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS) → connection parameters."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r} (use mqtt:// or mqtts://)")
    tls = parts.scheme in ("mqtts", "ssl")
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or (8883 if tls else 1883),
        "tls": tls,
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
    }


PRESS_BATCH = 256  # most alarm messages the press intake handles in one go


class _AlarmMessage(NamedTuple):
    """An alarm message waiting for the press intake thread, as the network thread received it."""
    mid: int
    qos: int
    topic: str
    device_id: str
    payload: bytes
    received_at: float


class _NonceTally:
    """A nonce store that only notes the claims, so a batch of presses is verified first and its nonces are then
    claimed together (``NonceStore.claim_many``: one round trip); a nonce refused there is a replay."""

    def __init__(self) -> None:
        self.claims: list[tuple[str, str, float]] = []

    def claim(self, device_id: str, nonce: str, ttl_s: float) -> bool:
        self.claims.append((device_id, nonce, ttl_s))
        return True

    def release(self, device_id: str, nonce: str) -> None:  # noqa: ARG002 - nothing claimed yet
        return None


def _nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Acks are tiny packets; without TCP_NODELAY, Nagle holds them back and the broker's window stalls."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


class MqttIngest:
    """Subscribe to every device's uplink topics and turn messages into Readings, presses and status."""

    def __init__(
        self,
        mqtt_url: str,
        cfg: MqttConfig,
        registry: DeviceRegistry,
        on_reading: OnReading,
        on_alarm: OnAlarm | None,
        on_reject: OnReject,
        on_status: OnStatus | None = None,
        *,
        nonce_store: NonceStore | None = None,
        ledger: PressLedger | MemoryPressLedger | None = None,
        client_suffix: str | None = None,
        on_alarms: OnAlarms | None = None,
        alarm_batch_max: int = 64,
        alarm_batch_wait_s: float = 0.002,
        alarm_sink: Any = None,
        filters: list[str] | None = None,
    ) -> None:
        """``alarm_sink`` (an object with ``submit(press, on_ack)``, owned by the caller: the runtime's durable
        :class:`~ingest.devices.press_queue.PressQueue`) is preferred; else ``on_alarms`` (files a list of
        presses in one transaction, one result per press) through an in-memory ``AlarmBatcher``; else
        ``on_alarm`` (one press per call)."""
        if on_alarm is None and on_alarms is None and alarm_sink is None:
            raise TypeError("MqttIngest needs alarm_sink, on_alarms or on_alarm")
        self.cfg = cfg
        self.registry = registry
        self._on_reading = on_reading
        self._on_alarm = on_alarm
        self._on_reject = on_reject
        self._on_status = on_status
        self._nonces = nonce_store or MemoryNonceStore()
        self._ledger = ledger or MemoryPressLedger(cfg.press_dedup_s)
        self._on_alarms = on_alarms
        self._batch_max = alarm_batch_max
        self._batch_wait_s = alarm_batch_wait_s
        self.alarm_batcher: Any = alarm_sink
        self._own_batcher = alarm_sink is None
        self._conn = parse_mqtt_url(mqtt_url)
        self.client_id = cfg.client_id + (f"-{client_suffix}" if client_suffix else "")
        self._prefix = cfg.topic_prefix
        self._filters = filters  # a devices partition's own topics (topics.partition_filters); default: every device
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._press_inbox: queue.SimpleQueue | None = None  # alarm messages for the press intake thread
        self._press_thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._codec_cache: dict[str, Any] = {}
        # Hot-path counters are plain ints touched only by the network thread; the rest sit under _lock.
        self._received = 0
        self._readings = 0
        self._telemetry = 0
        self._counts: Counter[str] = Counter()
        self._rejects: Counter[str] = Counter()
        self._ack_latency: deque[float] = deque(maxlen=10_000)
        self._m_telemetry = metrics.MESSAGES.labels("telemetry")

    # ----------------------------------------------------------------------------------- lifecycle
    def start(self, wait_s: float = 10.0) -> None:
        """Connect, subscribe and return once the broker confirmed the subscriptions (or raise)."""
        if self._client is not None:
            raise RuntimeError("MqttIngest already started")
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5, manual_ack=True,
        )
        client.max_inflight_messages_set(self.cfg.max_inflight)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=0.1, max_delay=5)
        user = self.cfg.username or self._conn["username"]
        password = self.cfg.password or self._conn["password"]
        if user:
            client.username_pw_set(user, password)
        if self._conn["tls"]:
            client.tls_set()
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_subscribe = self._handle_subscribe
        client.on_message = self._handle_message
        client.on_socket_open = _nodelay
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        props.ReceiveMaximum = self.cfg.receive_maximum
        self._pool = ThreadPoolExecutor(self.cfg.alarm_workers, thread_name_prefix="gw-alarm")
        if hasattr(self.alarm_batcher, "accept_many"):  # the durable queue: presses handled in batches (_press_intake)
            self._press_inbox = queue.SimpleQueue()
            self._press_thread = threading.Thread(target=self._press_intake, name="gw-press-intake", daemon=True)
            self._press_thread.start()
        if self._own_batcher and self._on_alarms is not None:
            self.alarm_batcher = AlarmBatcher(self._ledger, self._on_alarms, max_batch=self._batch_max,
                                              max_wait_s=self._batch_wait_s)
            self.alarm_batcher.start()
        self._client = client
        client.connect_async(self._conn["host"], self._conn["port"], self.cfg.keepalive_s, clean_start=False, properties=props)
        client.loop_start()
        if not self._subscribed.wait(wait_s):
            self.stop()
            raise ConnectionError(f"MQTT broker {self._conn['host']}:{self._conn['port']} did not accept the subscription within {wait_s} s")

    def add_filters(self, filters: list[str]) -> None:
        """Subscribe to more topics now and after every reconnect (a devices partition's newly added device)."""
        if self._filters is None:
            return  # already subscribed to every device
        new = [f for f in filters if f not in self._filters]
        self._filters = self._filters + new
        if new and self._client is not None and self.connected:
            self._client.subscribe([(f, SubscribeOptions(qos=self.cfg.qos)) for f in new])

    def stop(self) -> None:
        """Finish alarms in hand, then disconnect; unacknowledged messages stay with the broker's session."""
        client = self._client
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._press_thread is not None:  # handles what is waiting, then ends; acks go out on the open client
            self._press_inbox.put(None)
            self._press_thread.join(30)
            self._press_thread = None
        self._press_inbox = None
        if self.alarm_batcher is not None and self._own_batcher:  # files what is queued; acks go out on the open client
            self.alarm_batcher.stop()
        self._client = None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self._subscribed.clear()
        self._connected.clear()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def subscribed(self) -> bool:
        """Connected and the broker confirmed the subscriptions (again, after a reconnect)."""
        return self._subscribed.is_set()

    # ------------------------------------------------------------------------------- paho callbacks
    def _handle_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.error("MQTT connect refused: %s", reason_code)
            return
        self._connected.set()
        options = SubscribeOptions(qos=self.cfg.qos)
        filters = self._filters if self._filters is not None else subscription_filters(self._prefix, self.cfg.shared_group)
        client.subscribe([(f, options) for f in filters])
        log.info("MQTT ingest %s connected (session present: %s)", self.client_id, getattr(flags, "session_present", None))

    def _handle_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("MQTT subscription refused: %s", failed)
            return
        self._subscribed.set()

    def _handle_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connected.clear()
        self._subscribed.clear()
        if self._client is not None:
            log.warning("MQTT ingest disconnected (%s); paho reconnects", reason_code)

    def _handle_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        received_at = time.time()
        self._received += 1
        topic, payload = msg.topic, msg.payload
        try:
            parsed = parse_topic(self._prefix, topic)
            if parsed is None:
                self._reject(topic, "unknown_topic", payload)
            elif len(payload) > self.cfg.max_payload_bytes:
                self._reject(topic, "oversized_payload", payload)
            elif parsed[1] == "telemetry":
                self._telemetry_message(topic, parsed[0], payload, received_at)
            elif parsed[1] == "events":
                if self._press_inbox is not None:
                    self._press_inbox.put(_AlarmMessage(msg.mid, msg.qos, topic, parsed[0], payload, received_at))
                    return  # acknowledged by the press intake once queued durably
                pool = self._pool
                if pool is not None:
                    pool.submit(self._event_message, msg.mid, msg.qos, topic, parsed[0], payload, received_at)
                    return  # acknowledged by the worker once filed
            else:
                self._status_message(topic, parsed[0], payload, received_at)
        except Exception:  # a bug in one message's handling must not kill the network thread
            log.exception("handling %s failed", topic)
            self._reject(topic, "handler_error", payload)
        client.ack(msg.mid, msg.qos)

    # ------------------------------------------------------------------------------------ handlers
    def _codec(self, name: str) -> Any:
        codec = self._codec_cache.get(name)
        if codec is None:
            codec = self._codec_cache[name] = get_codec(name)
        return codec

    def _telemetry_message(self, topic: str, device_id: str, payload: bytes, received_at: float) -> None:
        self._telemetry += 1
        self._m_telemetry.inc()
        device = self.registry.get(device_id)
        if device is None:
            self._reject(topic, "unknown_device", payload)
            return
        try:
            doc = self._codec(device.codec)("telemetry", payload)
            readings, battery = telemetry_readings(doc, device_id, received_at)
        except CodecError as exc:
            self._reject(topic, exc.reason, payload)
            return
        except Exception as exc:  # a vendor codec raising anything else is still that device's bad input
            log.warning("codec %s failed on %s: %s", device.codec, topic, type(exc).__name__)
            self._reject(topic, "codec_error", payload)
            return
        self.registry.touch(device_id, received_at, battery)
        on_reading = self._on_reading
        for reading in readings:
            try:
                on_reading(reading)
            except Exception:
                log.exception("on_reading failed for %s", device_id)
                self._reject(topic, "handler_error", payload)
                return
        self._readings += len(readings)
        metrics.READINGS.inc(len(readings))

    def _status_message(self, topic: str, device_id: str, payload: bytes, received_at: float) -> None:
        self._count("status")
        metrics.MESSAGES.labels("status").inc()
        if not payload:  # a retained status being cleared
            return
        if self.registry.get(device_id) is None:
            self._reject(topic, "unknown_device", payload)
            return
        try:
            doc = json.loads(payload)
        except (UnicodeDecodeError, ValueError):
            self._reject(topic, "malformed_json", payload)
            return
        online = doc.get("online") if isinstance(doc, dict) else None
        if not isinstance(online, bool):
            self._reject(topic, "invalid_payload", payload)
            return
        if isinstance(doc.get("device"), str) and doc["device"] != device_id:
            self._reject(topic, "topic_device_mismatch", payload)
            return
        battery = doc.get("battery")
        battery = float(battery) if isinstance(battery, (int, float)) and not isinstance(battery, bool) else None
        if online:
            self.registry.touch(device_id, received_at, battery, online=True)
        else:
            dev = self.registry.get(device_id)
            if dev is not None:
                dev.online = False
        if self._on_status is not None:
            self._on_status(device_id, online, received_at)

    def _event_message(self, mid: int, qos: int, topic: str, device_id: str, payload: bytes, received_at: float) -> None:
        deferred = False
        try:
            deferred = self._event(topic, device_id, payload, received_at, lambda: self._ack_mqtt(mid, qos))
        except Exception:
            log.exception("handling alarm on %s failed", topic)
            self._reject(topic, "handler_error", payload)
        finally:
            if not deferred:
                self._ack_mqtt(mid, qos)

    def _ack_mqtt(self, mid: int, qos: int) -> None:
        client = self._client
        if client is not None:
            client.ack(mid, qos)

    def _event(self, topic: str, device_id: str, payload: bytes, received_at: float,
               ack_mqtt: Callable[[], None] | None = None) -> bool:
        """Handle one alarm message; True when it was queued to the batcher, which then calls ``ack_mqtt``."""
        verified = self._verified_press(topic, device_id, payload, received_at, self._nonces)
        if verified is None:
            return False
        press, nonce = verified
        answer = partial(self._answer_press, press, nonce, received_at)
        batcher = self.alarm_batcher
        if batcher is not None and ack_mqtt is not None:
            def answer_and_ack(ack: dict[str, Any]) -> None:
                try:
                    answer(ack)
                finally:
                    ack_mqtt()
            getattr(batcher, "accept", batcher.submit)(press, answer_and_ack)
            return True
        if self._on_alarm is None:  # batch-only ingest used without its batcher (not started)
            answer(ack_message(press, "error", None, retry=True, error="not_started"))
            return False
        answer(process_press(press, self._ledger, self._on_alarm))
        return False

    def _verified_press(self, topic: str, device_id: str, payload: bytes, received_at: float,
                        nonces: NonceStore) -> tuple[AlarmPress, str] | None:
        """The press an alarm message carries and its nonce, or None once it was refused (dead letter, and an
        answer to the box where it is authentic)."""
        metrics.MESSAGES.labels("events").inc()
        self._count("events")
        try:
            envelope = json.loads(payload)
        except (UnicodeDecodeError, ValueError):
            self._reject(topic, "malformed_json", payload)
            return None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("body"), str):
            self._reject(topic, "malformed", payload)
            return None
        if envelope.get("device", device_id) != device_id:
            self._reject(topic, "topic_device_mismatch", payload)
            return None
        if self.registry.get(device_id) is None:
            self._reject(topic, "unknown_device", payload)
            return None
        body = envelope["body"].encode("utf-8")
        fields = {k: envelope[k] for k in ("timestamp", "nonce", "signature") if k in envelope}
        fields["device"] = device_id
        try:
            doc = verify_signed(self.registry, body, fields, time.time(), nonces, self.cfg.replay_window_s)
        except SignatureError as exc:
            reason = "topic_device_mismatch" if exc.reason == "malformed" and exc.device_id == device_id and "differ" in exc.detail else exc.reason
            self._reject(topic, reason, payload)
            if reason == "timestamp_out_of_window":  # authentic: help the box fix its clock
                self._publish(device_id, "ack", {"status": "rejected", "reason": reason, "server_time": time.time()})
            return None
        try:
            press = parse_press(doc, received_at)
        except PressError as exc:
            self._reject(topic, exc.reason, payload)
            self._publish(device_id, "ack", {"status": "rejected", "reason": exc.reason, "detail": str(exc)})
            return None
        return press, doc["_nonce"]

    def _answer_press(self, press: AlarmPress, nonce: str, received_at: float, ack: dict[str, Any]) -> None:
        """Publish a press's ack to its box and count it."""
        if ack["status"] == "error":  # nothing was filed: the box's retry may reuse its nonce
            self._nonces.release(press.device_id, nonce)
        self._publish(press.device_id, "ack", ack)
        latency = time.time() - received_at
        metrics.ACK_SECONDS.observe(latency)
        metrics.ALARMS.labels(press.kind, ack["status"]).inc()
        with self._lock:
            self._counts[f"{press.kind}_{ack['status']}"] += 1
            self._ack_latency.append(latency)

    # ------------------------------------------------------------------------------ press intake
    def _press_intake(self) -> None:
        """One thread takes every alarm message waiting and handles them together: one Redis round trip for all
        their nonces and one for all their enqueues (the durable sink's ``accept_many``), then their ``queued``
        acks. A press is answered in a few round trips however many arrive at once, and the thread switches that
        a thread per press needs (each waiting for the filer's share of the GIL) are gone."""
        inbox = self._press_inbox
        while True:
            item = inbox.get()
            if item is None:
                return
            batch, last = [item], False
            while len(batch) < PRESS_BATCH:
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    last = True
                    break
                batch.append(item)
            try:
                self._press_batch(batch)
            except Exception:  # a bug must not stop the intake thread; unacknowledged messages are redelivered
                log.exception("handling %d alarm messages failed", len(batch))
            if last:
                return

    def _press_batch(self, batch: list[_AlarmMessage]) -> None:
        tally = _NonceTally()
        verified: list[tuple[_AlarmMessage, AlarmPress, str]] = []
        for item in batch:
            try:
                got = self._verified_press(item.topic, item.device_id, item.payload, item.received_at, tally)
            except Exception:
                log.exception("handling alarm on %s failed", item.topic)
                self._reject(item.topic, "handler_error", item.payload)
                got = None
            if got is None:
                self._ack_mqtt(item.mid, item.qos)
            else:
                verified.append((item, *got))
        if not verified:
            return
        try:
            fresh = self._nonces.claim_many(tally.claims)
        except Exception as exc:  # Redis away: nothing queued, every box retries (its nonce was not spent)
            log.error("nonces of %d presses not checked: %s", len(verified), exc)
            fresh = None
        presses: list[tuple[_AlarmMessage, AlarmPress, str]] = []
        for (item, press, nonce), ok in zip(verified, fresh or [True] * len(verified)):
            if fresh is None:
                self._publish(press.device_id, "ack", ack_message(press, "error", None, retry=True, error="queue_unavailable"))
                self._ack_mqtt(item.mid, item.qos)
            elif not ok:
                self._reject(item.topic, "replayed_nonce", item.payload)
                self._ack_mqtt(item.mid, item.qos)
            else:
                presses.append((item, press, nonce))
        if not presses:
            return
        acks = self.alarm_batcher.accept_many([press for _, press, _ in presses])
        for (item, press, nonce), ack in zip(presses, acks):
            try:
                self._answer_press(press, nonce, item.received_at, ack)
            except Exception:  # the press is queued (or its box told to retry): its message is still acknowledged
                log.exception("answering press %s/%s failed", press.device_id, press.press_id)
            finally:
                self._ack_mqtt(item.mid, item.qos)

    # ----------------------------------------------------------------------------------- downlink
    def _publish(self, device_id: str, channel: str, message: dict[str, Any]) -> None:
        client = self._client
        if client is None:
            return
        client.publish(device_topic(self._prefix, device_id, channel),
                       json.dumps(message, ensure_ascii=False, separators=(",", ":")), qos=1)

    def send_acks(self, acks: list[tuple[str, dict[str, Any]]]) -> Callable[[], bool | None]:
        """Publish ``(device id, ack)`` messages (QoS 1) without waiting; the returned check answers True once the
        broker confirmed (PUBACK) every one, False when one was refused, None while they are on their way. The
        press filer sends case numbers with it and keeps each press on its stream until its ack is confirmed."""
        client = self._client
        if client is None or not self.connected:
            return lambda: False
        infos = [client.publish(device_topic(self._prefix, device_id, "ack"),
                                json.dumps(ack, ensure_ascii=False, separators=(",", ":")), qos=1) for device_id, ack in acks]
        with self._lock:
            for _, ack in acks:
                self._counts[f"{ack.get('kind', 'press')}_{ack['status']}"] += 1

        def confirmed() -> bool | None:
            if any(info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN) for info in infos):
                return False  # refused outright (queue full): not going to be sent
            return True if all(info.is_published() for info in infos) else None
        return confirmed

    def notify(self, device_id: str, message: dict[str, Any]) -> None:
        """Send later news about a case to a box (``…/notify``): dispatched, handled, closed, asked to rate."""
        self._publish(device_id, "notify", message)

    # -------------------------------------------------------------------------------------- stats
    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def _reject(self, topic: str, reason: str, payload: bytes) -> None:
        with self._lock:
            self._rejects[reason] += 1
        metrics.REJECTS.labels(reason).inc()
        try:
            self._on_reject(f"mqtt:{topic}", reason, payload)
        except Exception:
            log.exception("on_reject failed (reason %s)", reason)

    def stats(self) -> dict[str, Any]:
        """Counts since start: messages, readings, alarms by outcome, rejects by reason, ack latency."""
        with self._lock:
            latencies = sorted(self._ack_latency)
            counts = dict(self._counts)
            rejects = dict(self._rejects)

        def pct(q: float) -> float | None:
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None

        return {
            "client_id": self.client_id, "connected": self.connected,
            "received": self._received, "telemetry": self._telemetry, "readings": self._readings,
            **counts, "rejected": sum(rejects.values()), "rejects": rejects,
            "ack_latency_p50_s": pct(0.5), "ack_latency_p99_s": pct(0.99),
        }
