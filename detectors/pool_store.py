"""The video pool's state in Redis: membership heartbeats, camera leases and fencing tokens, as Lua scripts.

Why scripts: each step must be atomic on the server — "join only if nobody holds this id", "take the lease
only if it is free, and then number it", "extend the lease only if it is still mine" — and every expiry is a
Redis TTL or Redis server ``TIME``, never a worker's wall clock, so a worker whose clock drifts cannot hold a
lease longer than the server grants. Every key shares the ``{prefix}`` hash tag (``detectors.pool_keys``), so
the multi-key scripts are legal on Redis Cluster.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from detectors.pool_keys import PoolKeys

GRANTS_KEPT = 32
CHUNK = 500  # cameras per script call: bounds the time one call holds the server

# KEYS: member, members, info. ARGV: id, instance, ttl_ms, info_json, mode ("join" | "beat").
_BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local cur = redis.call('GET', KEYS[1])
local state
if not cur then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
  if ARGV[5] == 'beat' then state = 'rejoined' else state = 'joined' end
elseif cur == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ttl)
  state = 'ok'
else
  return {'taken', redis.call('PTTL', KEYS[1]), now}
end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('HDEL', KEYS[3], unpack(gone))
end
return {state, redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf'), now}
"""

# KEYS: member, members, info. ARGV: id, instance.
_LEAVE = """
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 1
end
return 0
"""

# KEYS: (lease, fence, grants) per camera. ARGV: owner ("member|instance"), ttl_ms, grants kept.
# Returns per camera: the fence of a lease now held by this owner, or 0 (someone else holds it).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me = ARGV[1] .. '|'
local out = {}
for i = 1, #KEYS, 3 do
  local cur = redis.call('GET', KEYS[i])
  if not cur then
    local f = redis.call('INCR', KEYS[i + 1])
    redis.call('SET', KEYS[i], me .. f, 'PX', ARGV[2])
    redis.call('ZADD', KEYS[i + 2], f, f .. ':' .. now)
    redis.call('ZREMRANGEBYRANK', KEYS[i + 2], 0, -tonumber(ARGV[3]) - 1)
    out[#out + 1] = f
  elseif string.sub(cur, 1, #me) == me then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    out[#out + 1] = tonumber(string.sub(cur, #me + 1))
  else
    out[#out + 1] = 0
  end
end
return out
"""

# KEYS: leases. ARGV: ttl_ms, then the value each lease must still hold. Returns 1/0 per lease.
_REFRESH = """
local out = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# KEYS: leases. ARGV: the value each must hold to be deleted.
_RELEASE = """
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i] then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
return n
"""


class WorkerIdTaken(RuntimeError):
    """Another live process already holds this worker id in the pool."""


@dataclass(frozen=True)
class Beat:
    """What one heartbeat answered: ``state`` (joined, ok, rejoined), the live member ids, the server's ms."""

    state: str
    members: tuple[str, ...]
    server_ms: int


@dataclass(frozen=True)
class LeaseOwner:
    """Who holds a camera's lease now, as the API shows it."""

    member: str
    fence: int
    ttl_ms: int


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _chunks(items: list, n: int = CHUNK):
    for i in range(0, len(items), n):
        yield items[i:i + n]


class PoolStore:
    """Membership and leases of one member (``member_id`` + a random ``instance`` token per process)."""

    def __init__(self, client: redis.Redis, keys: PoolKeys, member_id: str, instance: str):
        if "|" in member_id or not member_id.strip():
            raise ValueError(f"worker id {member_id!r}: must be non-empty and must not contain '|'")
        self.client, self.keys, self.member_id, self.instance = client, keys, member_id, instance
        self.owner_value = f"{member_id}|{instance}"
        self._beat = client.register_script(_BEAT)
        self._leave = client.register_script(_LEAVE)
        self._acquire = client.register_script(_ACQUIRE)
        self._refresh = client.register_script(_REFRESH)
        self._release = client.register_script(_RELEASE)

    def _member_keys(self) -> list[str]:
        return [self.keys.member(self.member_id), self.keys.members, self.keys.info]

    def beat(self, ttl_ms: int, info: dict[str, Any], *, join: bool = False) -> Beat:
        """Join (``join=True``) or heartbeat. Raises ``WorkerIdTaken`` when another process holds the id."""
        reply = self._beat(keys=self._member_keys(),
                           args=[self.member_id, self.instance, ttl_ms, json.dumps(info), "join" if join else "beat"])
        state = _text(reply[0])
        if state == "taken":
            raise WorkerIdTaken(
                f"video worker id {self.member_id!r} is already in the pool (another live process holds it; its "
                f"heartbeat expires in {int(reply[1]) / 1000:.1f} s). Give each worker its own --worker-id / "
                f"GRIDWATCH_WORKER_ID, or stop the other one.")
        return Beat(state, tuple(sorted(_text(m) for m in reply[1])), int(reply[2]))

    def leave(self) -> None:
        self._leave(keys=self._member_keys(), args=[self.member_id, self.instance])

    def lease_value(self, fence: int) -> str:
        return f"{self.owner_value}|{fence}"

    def acquire(self, camera_ids: list[str], ttl_ms: int) -> dict[str, int]:
        """Take the free leases among ``camera_ids``: camera → fence token for those now held by this process."""
        got: dict[str, int] = {}
        for part in _chunks(camera_ids):
            keys = [k for c in part for k in (self.keys.lease(c), self.keys.fence(c), self.keys.grants(c))]
            reply = self._acquire(keys=keys, args=[self.owner_value, ttl_ms, GRANTS_KEPT])
            got.update({c: int(f) for c, f in zip(part, reply) if int(f) > 0})
        return got

    def refresh(self, leases: dict[str, int], ttl_ms: int) -> set[str]:
        """Extend the leases still ours (compare-and-set); returns the cameras whose lease was extended."""
        kept: set[str] = set()
        items = list(leases.items())
        for part in _chunks(items):
            reply = self._refresh(keys=[self.keys.lease(c) for c, _ in part],
                                  args=[ttl_ms, *[self.lease_value(f) for _, f in part]])
            kept.update(c for (c, _), ok in zip(part, reply) if int(ok))
        return kept

    def release(self, leases: dict[str, int]) -> None:
        """Give leases back at once (a rebalance), so the new owner need not wait for them to expire."""
        items = list(leases.items())
        for part in _chunks(items):
            self._release(keys=[self.keys.lease(c) for c, _ in part], args=[self.lease_value(f) for _, f in part])


def lease_owners(client: redis.Redis, keys: PoolKeys, camera_ids: list[str]) -> dict[str, LeaseOwner]:
    """camera → its lease holder now (cameras nobody holds are missing)."""
    out: dict[str, LeaseOwner] = {}
    for part in _chunks(list(camera_ids)):
        pipe = client.pipeline(transaction=False)
        for c in part:
            pipe.get(keys.lease(c))
            pipe.pttl(keys.lease(c))
        reply = pipe.execute()
        for i, c in enumerate(part):
            value, ttl = reply[2 * i], reply[2 * i + 1]
            if value:
                member, _instance, fence = _text(value).rsplit("|", 2)
                out[c] = LeaseOwner(member, int(fence), int(ttl))
    return out


def members(client: redis.Redis, keys: PoolKeys) -> dict[str, dict[str, Any]]:
    """member id → what it last said of itself (host, pid, cameras held), for the live members only."""
    t = client.time()
    now_ms = int(t[0]) * 1000 + int(t[1]) // 1000
    live = {_text(m) for m in client.zrangebyscore(keys.members, f"({now_ms}", "+inf")}
    info = client.hgetall(keys.info)
    return {_text(k): json.loads(v) for k, v in info.items() if _text(k) in live}


def board(client: redis.Redis, keys: PoolKeys) -> dict[str, Any]:
    """What ``/api/v1/status`` shows of the pool: the live members (id → host, pid, cameras held) and how many
    anomalies intake fenced out (``alerts.fencing``) per camera and in all."""
    try:
        fenced = {_text(k): int(v) for k, v in client.hgetall(keys.fenced).items()}
        return {"members": members(client, keys), "fenced": fenced}
    except redis.RedisError as exc:
        return {"error": f"Redis does not answer: {exc}"}
