"""One member of the video pool: heartbeat, rendezvous share, leases, and the cameras it may analyse.

Why a member hands cameras to its engine only through ``on_gain`` / ``on_lose``: the engine must analyse a
camera exactly while this process holds its lease. ``on_gain(camera, fence)`` comes after the lease was
taken; ``on_lose(camera)`` comes *before* a lease is released (rebalance) and, when Redis cannot be reached,
as soon as the lease may have lapsed on the server — counted on this process's monotonic clock from the
moment the last successful refresh was *sent*, minus a safety margin, so neither wall-clock skew nor a slow
reply can make a worker analyse a camera someone else now owns. A member whose heartbeat lapsed (Redis away
longer than the member TTL) finds itself ``rejoined`` on the next beat and takes its share again.

Each tick: beat (one script: refresh own key, prune dead members, list live ones) → the HRW share of the
cameras over the live members → refresh held leases (one compare-and-set script) → release leases no longer
ours → take free leases of our share (one script; the fence counter is INCR'd on each grant).
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from detectors.pool_hash import share
from detectors.pool_keys import PoolKeys
from detectors.pool_store import PoolStore, WorkerIdTaken

log = logging.getLogger(__name__)

WORKER_ID_ENV = "GRIDWATCH_WORKER_ID"


@dataclass(frozen=True)
class PoolTiming:
    """Member TTL, lease TTL and tick. Failover takes at most lease TTL + tick + the camera's first frame."""

    member_ttl_s: float = 6.0
    lease_ttl_s: float = 8.0
    tick_s: float = 1.0
    redis_timeout_s: float = 1.0  # every pool call gives up after this, so a partition cannot stall the tick

    @property
    def margin_s(self) -> float:
        """How long before the server's expiry this process stops analysing: a slow reply, a tick, clock-rate drift."""
        return self.redis_timeout_s + self.tick_s + 0.01 * self.lease_ttl_s


@dataclass
class Held:
    fence: int
    valid_until: float  # on this process's monotonic clock
    started: bool = False  # on_gain done (the engine analyses it)


def bounded_client(client: redis.Redis, timeout_s: float) -> redis.Redis:
    """A client like ``client`` (same server, credentials, TLS) whose every call gives up after ``timeout_s``, with no
    retries: a partition must not stall the pool's tick past the moment its leases may lapse."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": timeout_s, "socket_connect_timeout": timeout_s,
              "retry": Retry(NoBackoff(), 0)}
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


def default_worker_id() -> str:
    """``GRIDWATCH_WORKER_ID`` if set, else host-pid (unique per process; a restarted worker is a new member)."""
    return os.environ.get(WORKER_ID_ENV) or f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class PoolCounters:
    gained: int = 0
    lost: int = 0
    released: int = 0
    lapsed: int = 0  # dropped because the lease may have expired while Redis did not answer
    rejoins: int = 0
    redis_errors: int = 0
    last_error: str | None = None
    members: tuple[str, ...] = field(default_factory=tuple)


def _some(ids: list[str], n: int = 5) -> str:
    """A few ids for a log line (a host with 500 cameras must not write 500 lines)."""
    return ", ".join(sorted(ids)[:n]) + (f" … (+{len(ids) - n})" if len(ids) > n else "")


class PoolMember:
    """Drives ``on_gain`` / ``on_lose`` from the pool's state. ``join()`` first (raises ``WorkerIdTaken``)."""

    def __init__(self, client: redis.Redis, keys: PoolKeys, member_id: str, *,
                 on_gain: Callable[[str, int], None], on_lose: Callable[[str], None],
                 timing: PoolTiming = PoolTiming(), clock: Callable[[], float] = time.monotonic,
                 info: Callable[[], dict[str, Any]] | None = None, host: str | None = None):
        self.keys, self.member_id, self.timing, self.clock = keys, member_id, timing, clock
        self.instance = secrets.token_hex(8)
        self.store = PoolStore(client, keys, member_id, self.instance)
        self.on_gain, self.on_lose = on_gain, on_lose
        self.host = host or socket.gethostname()
        self._info = info or (lambda: {})
        self._cameras: frozenset[str] = frozenset()
        self._members: tuple[str, ...] = ()
        self._want: set[str] = set()
        self._want_for: tuple[frozenset[str], tuple[str, ...]] | None = None
        self.held: dict[str, Held] = {}
        self.counters = PoolCounters()
        self._engine_lock = threading.Lock()  # on_gain / on_lose one at a time, in order
        self._stopping: list[str] = []
        self._refreshed_at = float("-inf")
        self.lock = threading.RLock()  # one tick at a time; camera changes from the API take it too
        self._joined_at = time.time()

    @property
    def ttl_ms(self) -> int:
        return int(self.timing.lease_ttl_s * 1000)

    def info(self) -> dict[str, Any]:
        return {"host": self.host, "pid": os.getpid(), "held": len(self.held), "joined_at": self._joined_at,
                **self._info()}

    # -- what the pool shares out ------------------------------------------------------------------------------
    def set_cameras(self, camera_ids: Iterable[str]) -> None:
        """Every camera of the deployment (the same list on every member); takes effect at the next tick."""
        with self.lock:
            self._cameras = frozenset(list(camera_ids))

    def fence(self, camera_id: str) -> int | None:
        held = self.held.get(camera_id)
        return held.fence if held is not None and held.started else None

    # -- membership ----------------------------------------------------------------------------------------------
    def join(self, wait_s: float | None = None) -> None:
        """Enter the pool. If the id is held, wait up to ``wait_s`` (default: one member TTL) for it to lapse — a
        killed predecessor with the same id frees it by then, a live duplicate never does — then raise
        ``WorkerIdTaken``."""
        deadline = self.clock() + (self.timing.member_ttl_s + self.timing.tick_s if wait_s is None else wait_s)
        while True:
            try:
                beat = self.store.beat(int(self.timing.member_ttl_s * 1000), self.info(), join=True)
                break
            except WorkerIdTaken:
                if self.clock() >= deadline:
                    raise
                threading.Event().wait(min(self.timing.tick_s, 0.5))
        self._members = self.counters.members = beat.members
        log.info("video pool: joined as %s (%d live members)", self.member_id, len(beat.members))

    def leave(self) -> None:
        """Stop every camera, give the leases back and leave, so survivors take over at once, not after a TTL."""
        with self.lock:
            held = {c: h.fence for c, h in self.held.items()}
            for cid in list(self.held):
                self._drop(cid)
            self._stop_dropped()
            try:
                self.store.release(held)
                self.store.leave()
            except redis.RedisError as exc:
                log.warning("video pool: could not leave cleanly (leases expire by themselves): %s", exc)

    # -- one round -----------------------------------------------------------------------------------------------
    def tick(self) -> None:
        """One round of beat / share / refresh / release / acquire. Redis errors are counted, not raised;
        ``WorkerIdTaken`` (someone took our id while we were away) is raised after every camera was dropped."""
        with self.lock:
            try:
                self._round()
            except WorkerIdTaken:
                for cid in list(self.held):
                    self._drop(cid)
                self._stop_dropped()
                raise
            except redis.RedisError as exc:
                self.counters.redis_errors += 1
                if self.counters.last_error is None:
                    log.warning("video pool: Redis does not answer (%s); cameras stop when their leases may lapse", exc)
                self.counters.last_error = str(exc)
            finally:
                self.expire_local()
        self._stop_dropped()
        self.start_pending()

    def _round(self) -> None:
        beat = self.store.beat(int(self.timing.member_ttl_s * 1000), self.info())
        if self.counters.last_error is not None:
            log.warning("video pool: Redis answers again (%s)", beat.state)
            self.counters.last_error = None
        if beat.state == "rejoined":
            self.counters.rejoins += 1
            log.warning("video pool: %s had dropped out of the pool; rejoined", self.member_id)
        self._members = self.counters.members = beat.members
        want = self._share()
        self._refresh()
        going = {c: self.held[c].fence for c in list(self.held) if c not in want}
        for cid in going:
            self._drop(cid)
        self._stop_dropped()  # stop analysing first, then hand the lease over
        if going:
            log.info("video pool: handing over %d camera(s) to their new owners: %s", len(going), _some(list(going)))
            self.store.release(going)
            self.counters.released += len(going)
        missing = sorted(want - set(self.held))
        if missing:
            sent = self.clock()
            got = self.store.acquire(missing, self.ttl_ms)
            if got:
                log.info("video pool: took %d camera lease(s): %s", len(got), _some(list(got)))
            for cid, fence in got.items():
                self.held[cid] = Held(fence, sent + self.timing.lease_ttl_s - self.timing.margin_s)
                self.counters.gained += 1

    def _refresh(self) -> None:
        """Extend every held lease (one compare-and-set script); a lease that is not ours any more is dropped."""
        if not self.held:
            return
        sent = self.clock()
        current = {c: h.fence for c, h in self.held.items()}
        kept = self.store.refresh(current, self.ttl_ms)
        self._refreshed_at = sent
        lost = [cid for cid in current if cid not in kept]
        for cid in kept:
            if cid in self.held:
                self.held[cid].valid_until = sent + self.timing.lease_ttl_s - self.timing.margin_s
        if lost:
            log.warning("video pool: lease of %d camera(s) lost, stopping them: %s", len(lost), _some(lost))
            self.counters.lost += len(lost)
            for cid in lost:
                self._drop(cid)

    def keep(self) -> None:
        """Refresh the held leases if the last refresh is a tick old, and stop what may have lapsed. Run by the keeper
        thread while the tick thread is busy starting cameras (that can take seconds: the first loads models)."""
        with self.lock:
            if self.clock() - self._refreshed_at >= self.timing.tick_s:
                try:
                    self._refresh()
                except redis.RedisError:
                    pass  # the tick thread counts and logs outages
            self.expire_local()
        self._stop_dropped()

    def start_pending(self) -> None:
        """Hand the newly held leases to the engine (``on_gain``), outside the state lock, so the keeper can refresh
        meanwhile; a lease lost during a start is stopped right after it (``on_lose`` waits for the engine lock)."""
        while True:
            with self.lock:
                todo = next(((c, h) for c, h in self.held.items() if not h.started), None)
                if todo is None:
                    return
                todo[1].started = True
            with self._engine_lock:
                try:
                    self.on_gain(todo[0], todo[1].fence)
                except Exception:  # noqa: BLE001 - one camera that cannot start must not stop the pool
                    log.exception("video pool: starting camera %s failed", todo[0])

    def _share(self) -> set[str]:
        """This member's HRW share; recomputed only when the cameras or the members change (10k × 20 hashes)."""
        key = (self._cameras, self._members)
        if key != self._want_for:
            self._want = share(self._cameras, self._members, self.member_id)
            self._want_for = key
        return self._want

    def expire_local(self) -> None:
        """Stop every camera whose lease may have lapsed on the server (Redis did not answer in time)."""
        now = self.clock()
        lapsed = [c for c, h in self.held.items() if now >= h.valid_until]
        if lapsed:
            log.warning("video pool: lease of %d camera(s) may have lapsed (no refresh), stopping them: %s",
                        len(lapsed), _some(lapsed))
            self.counters.lapsed += len(lapsed)
            for cid in lapsed:
                self._drop(cid)

    def _drop(self, camera_id: str) -> None:
        """Forget the lease (caller holds ``lock``); the engine stops the camera in ``_stop_dropped``."""
        held = self.held.pop(camera_id, None)
        if held is not None and held.started:
            self._stopping.append(camera_id)

    def _stop_dropped(self) -> None:
        """``on_lose`` for every dropped camera, under the engine lock (after a start still in progress)."""
        while self._stopping:
            camera_id = self._stopping.pop(0)
            with self._engine_lock:
                try:
                    self.on_lose(camera_id)
                except Exception:  # noqa: BLE001
                    log.exception("video pool: stopping camera %s failed", camera_id)

    # -- the thread ----------------------------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event) -> None:
        """Tick every ``tick_s`` until ``stop``; a keeper thread refreshes the leases while a tick starts cameras."""
        def keeper() -> None:
            while not stop.wait(self.timing.tick_s / 2):
                self.keep()

        threading.Thread(target=keeper, name="video-pool-keeper", daemon=True).start()
        while not stop.is_set():
            started = self.clock()
            try:
                self.tick()
            except WorkerIdTaken as exc:
                log.error("video pool: %s; analysing nothing until it is free", exc)
            stop.wait(max(0.05, self.timing.tick_s - (self.clock() - started)))

    def status(self) -> dict[str, Any]:
        c = self.counters
        return {"member": self.member_id, "host": self.host, "members": list(c.members), "held": len(self.held),
                "gained": c.gained, "lost": c.lost, "released": c.released, "lapsed": c.lapsed, "rejoins": c.rejoins,
                "redis_errors": c.redis_errors, "redis_error": c.last_error}
