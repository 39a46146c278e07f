"""The durable press queue: a verified one-key alarm is on a Redis stream before anything else happens.

Why: a press claimed in memory (or by a ledger key) and then lost with its process is an alarm nobody
files. Here a verified press is, in ONE atomic Redis script, de-duplicated against the ledger and
appended to the press stream ``{prefix}:presses``; from then on it survives the death of any
process (under the AOF policy in docs/RELIABILITY.md) and a :class:`~ingest.devices.press_filer.PressFiler`
— in this process or another — files it. The side that enqueues (the MQTT ingest, the HTTPS endpoint)
only needs Redis, so the API process can hand presses to a separate devices process.

Keys (the ``{prefix}`` hash tag keeps the stream and its ledger in one Redis Cluster slot, so the
enqueue script may touch both):

``{prefix}:presses``                                the stream (fields ``press``, ``reply``); consumer group ``filers``
``{prefix}:presses:case:{device}:{kind}:{press_id}`` the ledger: ``q:<entry id>`` while queued, then the case number
``{prefix}:presses:filed``                          pub/sub channel: ``[[ledger key, case], …]`` after each filed batch

Two ways of answering. An MQTT press (``accept_many``, the devices role's press intake) is answered
``queued`` the moment it is on the stream, and the filer that files it sends ``received`` + case to the
box's ack topic — nothing in this process waits, so the case reaches the box however long filing takes
and whichever process dies. An HTTPS press (``submit``/``file``) holds its request open until its case
number is known, at most ``wait_s`` (about a second); past that it is told ``pending`` — accepted and
queued, its retry of the same ``press_id`` gets the case. ``error`` (retry) is only for a press that
could not be queued (Redis unreachable).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from ingest.devices.alarms import OnAck, ack_message, answer, case_ack, wait_for_ack
from ingest.devices.messages import AlarmPress
from ingest.failpoints import failpoint
from ingest.redis_connect import hash_tag

log = logging.getLogger(__name__)

FILER_GROUP = "filers"
QUEUED = "q:"
REPLY_MQTT = "mqtt"  # the stream entry's ``reply``: the filer sends the case to the box's ``…/ack`` topic

# KEYS[1] ledger key, KEYS[2] stream; ARGV[1] ttl ms, ARGV[2] the press as JSON, ARGV[3] where its case
# number goes once filed ('mqtt': the filer publishes it to the box's ack topic; '': a waiter answers it).
# Returns {1, entry id} when queued now, {0, ledger value} when the press is already known.
_ENQUEUE = """
local known = redis.call('GET', KEYS[1])
if known then return {0, known} end
local id = redis.call('XADD', KEYS[2], '*', 'press', ARGV[2], 'reply', ARGV[3])
redis.call('SET', KEYS[1], 'q:' .. id, 'PX', ARGV[1])
return {1, id}
"""


@dataclass(frozen=True)
class PressKeys:
    """Redis names of the press queue for one deployment prefix (see the module docstring)."""

    prefix: str = "gw"

    @property
    def stream(self) -> str:
        return f"{hash_tag(self.prefix)}:presses"

    @property
    def filed_channel(self) -> str:
        return f"{hash_tag(self.prefix)}:presses:filed"

    def ledger(self, device_id: str, kind: str, press_id: str) -> str:
        return f"{hash_tag(self.prefix)}:presses:case:{device_id}:{kind}:{press_id}"

    def ledger_of(self, press: AlarmPress) -> str:
        return self.ledger(press.device_id, press.kind, press.press_id)


def press_to_json(press: AlarmPress) -> str:
    return json.dumps(asdict(press), ensure_ascii=False, separators=(",", ":"))


def press_from_json(text: str | bytes) -> AlarmPress:
    doc = json.loads(text)
    return AlarmPress(doc["device_id"], doc["press_id"], doc["kind"], doc.get("reason"), float(doc["at"]),
                      float(doc["received_at"]), doc.get("case"), doc.get("raw") or {})


def is_case(value: bytes | str | None) -> bool:
    """A ledger value that is a case number (not absent, not the queued marker)."""
    if value is None:
        return False
    text = value.decode() if isinstance(value, bytes) else value
    return bool(text) and not text.startswith(QUEUED)


@dataclass(eq=False)
class _Waiter:
    press: AlarmPress
    on_ack: OnAck
    status: str  # what to answer once the case is known: received (queued now) or duplicate
    deadline: float


class PressQueue:
    """The enqueue side: ``submit(press, on_ack)`` / ``file(press)``, the interface of ``AlarmBatcher``.

    One waiter thread per process listens on the ``filed`` channel and answers each box when its
    case arrives, or with ``pending`` at its deadline; it also reads the ledger of waiting presses
    every ``recheck_s``, so a missed pub/sub message (a reconnect) costs latency, never an answer.
    """

    def __init__(self, client: redis.Redis, prefix: str = "gw", *, dedup_s: float = 86400.0,
                 wait_s: float = 1.0, recheck_s: float = 0.1, name: str = "gw-press-waiter") -> None:
        self._redis = client
        self.keys = PressKeys(prefix)
        self._ttl_ms = str(max(1000, int(dedup_s * 1000)))
        self.wait_s = max(0.0, wait_s)
        self._recheck_s = recheck_s
        self._name = name
        self._script = client.register_script(_ENQUEUE)
        self._lock = threading.Lock()
        self._waiting: dict[str, list[_Waiter]] = {}
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._pubsub: Any = None
        self.queued = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, wait_s: float = 1.0) -> None:
        """Subscribe to the ``filed`` channel (idempotent); returns once subscribed or after ``wait_s``."""
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._ready.wait(wait_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Answer every box still waiting with ``pending`` (its press is queued) and end the waiter."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout_s)
        with self._lock:
            left = [w for ws in self._waiting.values() for w in ws]
            self._waiting.clear()
        for w in left:
            answer(w.on_ack, ack_message(w.press, "pending", None))

    # -- enqueueing -----------------------------------------------------------------------------
    def enqueue(self, press: AlarmPress, reply: str = "") -> tuple[bool, str]:
        """Queue the press unless the ledger knows it: ``(True, entry id)`` or ``(False, ledger value)``.
        ``reply`` (:data:`REPLY_MQTT`) asks the filer to publish the case number to the box itself."""
        queued, value = self._script(keys=[self.keys.ledger_of(press), self.keys.stream],
                                     args=[self._ttl_ms, press_to_json(press), reply])
        value = value.decode() if isinstance(value, bytes) else str(value)
        if queued:
            self.queued += 1
            failpoint("press.after_enqueue")
        return bool(queued), value

    def accept(self, press: AlarmPress, on_ack: OnAck) -> None:
        """The MQTT form for one press: ``accept_many`` and answer through ``on_ack`` at once."""
        answer(on_ack, self.accept_many([press])[0])

    def accept_many(self, presses: list[AlarmPress]) -> list[dict[str, Any]]:
        """The MQTT form: queue the presses durably (one round trip) and return their acks at once — ``queued``
        (no case yet), or ``duplicate`` with the case when the press was filed before. No waiter: the filer
        that files a press publishes ``received`` + case to the box's ack topic (confirmed by the broker before
        the press leaves the stream), so the case reaches the box even if this process dies or filing takes
        minutes. ``error`` (retry) for every press when Redis cannot be reached: nothing was queued."""
        pipe = self._redis.pipeline(transaction=False)
        for press in presses:
            self._script(keys=[self.keys.ledger_of(press), self.keys.stream],
                         args=[self._ttl_ms, press_to_json(press), REPLY_MQTT], client=pipe)
        try:
            replies = pipe.execute()
        except redis.RedisError as exc:  # not queued: nothing happened, the boxes must retry
            log.error("%d presses not queued: %s", len(presses), exc)
            return [ack_message(p, "error", None, retry=True, error="queue_unavailable") for p in presses]
        acks = []
        for press, (queued, value) in zip(presses, replies):
            if queued:
                self.queued += 1
                failpoint("press.after_enqueue")
                acks.append(ack_message(press, "queued", None))
            elif is_case(value):
                acks.append(case_ack(press, "duplicate", value.decode() if isinstance(value, bytes) else str(value)))
            else:  # a repeat of a press still queued: its case follows on the same press_id
                acks.append(ack_message(press, "queued", None))
        return acks

    def submit(self, press: AlarmPress, on_ack: OnAck) -> None:
        """Queue the press durably and answer through ``on_ack`` once its case is known (or ``pending``)."""
        if self._thread is None:
            self.start()
        key = self.keys.ledger_of(press)
        waiter = _Waiter(press, on_ack, "received", float("inf"))
        with self._lock:  # registered before the press can be filed, so its 'filed' message is not missed
            self._waiting.setdefault(key, []).append(waiter)
        try:
            queued, value = self.enqueue(press)
        except redis.RedisError as exc:  # not queued: nothing happened, the box must retry
            log.error("press %s/%s not queued: %s", press.device_id, press.press_id, exc)
            if self._forget(key, waiter):
                answer(on_ack, ack_message(press, "error", None, retry=True, error="queue_unavailable"))
            return
        if not queued:
            waiter.status = "duplicate"
            if is_case(value):
                if self._forget(key, waiter):
                    answer(on_ack, case_ack(press, "duplicate", value))
                return
        waiter.deadline = time.monotonic() + self.wait_s

    def file(self, press: AlarmPress, timeout_s: float | None = None) -> dict[str, Any]:
        """Submit and wait (at most ``wait_s`` plus a little) for the ack — the HTTPS path's blocking form."""
        return wait_for_ack(self.submit, press, self.wait_s + 2.0 if timeout_s is None else timeout_s)

    @property
    def waiting(self) -> int:
        with self._lock:
            return sum(len(ws) for ws in self._waiting.values())

    # -- answering ------------------------------------------------------------------------------
    def _forget(self, key: str, waiter: _Waiter) -> bool:
        """Take the waiter out; False when it was already answered (its case came, or it was stopped)."""
        with self._lock:
            ws = self._waiting.get(key)
            if not ws or not any(w is waiter for w in ws):
                return False
            ws[:] = [w for w in ws if w is not waiter]
            if not ws:
                del self._waiting[key]
            return True

    def _resolve(self, key: str, case: str) -> None:
        with self._lock:
            ws = self._waiting.pop(key, [])
        for w in ws:
            answer(w.on_ack, case_ack(w.press, w.status, case))

    def _expire(self, now: float) -> None:
        late: list[_Waiter] = []
        with self._lock:
            for key in list(self._waiting):
                ws = self._waiting[key]
                keep = [w for w in ws if w.deadline > now]
                late += [w for w in ws if w.deadline <= now]
                if keep:
                    self._waiting[key] = keep
                else:
                    del self._waiting[key]
        for w in late:
            answer(w.on_ack, ack_message(w.press, "pending", None))

    def _recheck(self) -> None:
        """Read the ledger of every waiting press: covers a 'filed' message lost while resubscribing."""
        with self._lock:
            keys = list(self._waiting)
        if not keys:
            return
        for key, value in zip(keys, self._redis.mget(keys)):
            if is_case(value):
                self._resolve(key, value.decode())

    def _run(self) -> None:
        next_check = 0.0
        while not self._stop.is_set():
            try:
                if self._pubsub is None:
                    self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                    self._pubsub.subscribe(self.keys.filed_channel)
                    self._ready.set()
                message = self._pubsub.get_message(timeout=0.02)
                if message is not None and message.get("type") == "message":
                    for key, case, *_ in json.loads(message["data"]):
                        self._resolve(key, case)
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + self._recheck_s
                    self._recheck()
                    self._expire(now)
            except (redis.RedisError, OSError, ValueError) as exc:
                log.warning("press waiter: %s; resubscribing", exc)
                self._close_pubsub()
                self._expire(time.monotonic())
                self._stop.wait(0.2)
        self._close_pubsub()

    def _close_pubsub(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._pubsub = None

