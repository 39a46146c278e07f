"""Putting tickets on duty queues and ticket events on the events stream, after the SQL commit.

Both go through one Redis script so a dispatch, its event and (for intake) the acknowledgement of
the anomaly entry land together or not at all; a committed transaction's effects reach it through the
transactional outbox (``alerts.outbox``), which names each publication so it lands at most once. Each duty queue keeps a hash ticket id → entry id
(``{duty}:entries``) so the entry can be acknowledged when the ticket is signed through any path
(the queue page, the REST API, MQTT), not only by the consumer that read it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import redis

from alerts.streams import StreamKeys
from ingest.failpoints import failpoint

DUTY_GROUP = "workers"
DUTY_MAXLEN = 100_000
EVENTS_MAXLEN = 100_000


def entries_key(keys: StreamKeys, unit_code: str) -> str:
    return f"{keys.duty(unit_code)}:entries"


@dataclass
class Effects:
    """Redis writes a committed transaction owes: duty-queue entries and events, published in order."""

    duty: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)   # (unit, ticket summary, reason)
    events: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)  # (type, ticket, extra)
    ack_duty: list[tuple[str, int]] = field(default_factory=list)               # (unit, ticket id)

    def extend(self, other: "Effects") -> None:
        self.duty += other.duty
        self.events += other.events
        self.ack_duty += other.ack_duty

    def __bool__(self) -> bool:
        return bool(self.duty or self.events or self.ack_duty)


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create the consumer group (and the stream) if missing; reading from the start so nothing is skipped."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


# One script, so a commit's duty entries, their ``{duty}:entries`` ids, its events, the duty acknowledgements it
# implies and (intake) the XACK of the anomaly entry land together or not at all — and, given the outbox key
# (KEYS[1]), at most once: the marker is set in the same atomic step, so a row published again (its relay and
# its owner both sent it, or the owner died after sending and before deleting the row) changes nothing but
# repeats the idempotent XACK. Every key carries the stream prefix, so a Redis Cluster keeps them in one slot
# when the prefix is a hash tag (``{gw}``), as a MULTI over them already needed.
_PUBLISH_LUA = """
local ttl = tonumber(ARGV[1])
local n_ack, n_duty, n_ev, has_ack = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local k, a = 2, 7
local fresh = 1
if ttl > 0 and not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ttl) then fresh = 0 end
local out = {fresh}
if fresh == 1 then
  for i = 1, n_ack do
    local entry = redis.call('HGET', KEYS[k + 1], ARGV[a])
    if entry then redis.call('XACK', KEYS[k], ARGV[a + 1], entry) end
    redis.call('HDEL', KEYS[k + 1], ARGV[a])
    k, a = k + 2, a + 2
  end
  for i = 1, n_duty do
    local id = redis.call('XADD', KEYS[k], 'MAXLEN', '~', ARGV[a], '*', 'ticket_id', ARGV[a + 1], 'number', ARGV[a + 2],
                          'reason', ARGV[a + 3], 'ticket', ARGV[a + 4], 'at', ARGV[2])
    redis.call('HSET', KEYS[k + 1], ARGV[a + 1], id)
    out[#out + 1] = id
    k, a = k + 2, a + 5
  end
  for i = 1, n_ev do
    redis.call('XADD', KEYS[k], 'MAXLEN', '~', ARGV[a], '*', 'type', ARGV[a + 1], 'ticket_id', ARGV[a + 2],
               'event', ARGV[a + 3])
    k, a = k + 1, a + 4
  end
else
  k = k + 2 * n_ack + 2 * n_duty + n_ev
  a = a + 2 * n_ack + 5 * n_duty + 4 * n_ev
end
if has_ack == 1 then redis.call('XACK', KEYS[k], ARGV[a], ARGV[a + 1]) end
return out
"""
_script: Any = None


@dataclass(frozen=True)
class Rendered:
    """A commit's effects as the exact strings Redis receives: what an outbox row stores, what the script sends.

    Why rendered before the commit: the relay that publishes a row another process left behind must send
    the same entries the committing process would have sent, without the ORM objects or the clock it had."""

    at: str
    ack_duty: tuple[tuple[str, str], ...] = ()                      # (unit, ticket id)
    duty: tuple[tuple[str, str, str, str, str], ...] = ()           # (unit, ticket id, number, reason, ticket JSON)
    events: tuple[tuple[str, str, str], ...] = ()                   # (type, ticket id, event JSON)
    ack: tuple[str, str, str] | None = None                         # (stream, group, entry id) to XACK with them

    @property
    def effects(self) -> bool:
        return bool(self.ack_duty or self.duty or self.events)

    def to_json(self) -> str:
        return json.dumps({"at": self.at, "ack_duty": self.ack_duty, "duty": self.duty, "events": self.events,
                           "ack": self.ack}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Rendered":
        d = json.loads(text)
        return cls(d["at"], tuple(map(tuple, d["ack_duty"])), tuple(map(tuple, d["duty"])),
                   tuple(map(tuple, d["events"])), tuple(d["ack"]) if d.get("ack") else None)


def render(effects: Effects, now: datetime | None = None, ack: tuple[str, str, str] | None = None) -> Rendered:
    """The Redis arguments of ``effects`` published at ``now`` (and the XACK of ``ack`` with them)."""
    at = (now or datetime.now(timezone.utc)).isoformat()
    return Rendered(
        at,
        tuple((unit, str(tid)) for unit, tid in effects.ack_duty),
        tuple((unit, str(t["id"]), t["number"], reason, json.dumps(t, ensure_ascii=False)) for unit, t, reason in effects.duty),
        tuple((etype, str(t.get("id", "")), json.dumps({"type": etype, "at": at, "ticket": t, **extra}, ensure_ascii=False,
                                                       default=str)) for etype, t, extra in effects.events),
        ack)


def send(client: redis.Redis, keys: StreamKeys, r: Rendered, once: str | None = None,
         once_ttl_s: int = 86_400) -> list[str] | None:
    """Publish ``r`` in one atomic script; returns the duty entry ids, or None when ``once`` was already sent."""
    global _script
    if _script is None:
        _script = client.register_script(_PUBLISH_LUA)
    # No XGROUP CREATE here: readers create the group from id 0, so entries added before it exists are not lost.
    k: list[str] = [keys.outbox_sent(once) if once else keys.events]
    a: list[Any] = [once_ttl_s if once else 0, r.at, len(r.ack_duty), len(r.duty), len(r.events), 1 if r.ack else 0]
    for unit, tid in r.ack_duty:
        k += [keys.duty(unit), entries_key(keys, unit)]
        a += [tid, DUTY_GROUP]
    for unit, tid, number, reason, ticket in r.duty:
        k += [keys.duty(unit), entries_key(keys, unit)]
        a += [DUTY_MAXLEN, tid, number, reason, ticket]
    for etype, tid, body in r.events:
        k.append(keys.events)
        a += [EVENTS_MAXLEN, etype, tid, body]
    if r.ack is not None:
        k.append(r.ack[0])
        a += [r.ack[1], r.ack[2]]
        failpoint("intake.before_xack")
    out = _script(keys=k, args=a, client=client)
    if not int(out[0]):
        return None
    return [x.decode() if isinstance(x, bytes) else x for x in out[1:]]


def publish(client: redis.Redis, keys: StreamKeys, effects: Effects, ack: tuple[str, str, str] | None = None,
            now: datetime | None = None) -> list[str]:
    """Write the effects (and XACK ``ack`` = (stream, group, id)) in one atomic step; returns the duty entry ids.

    Not crash-safe by itself: a part that commits SQL first publishes through ``alerts.outbox.Outbox``."""
    return send(client, keys, render(effects, now, ack)) or []
