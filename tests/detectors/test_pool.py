"""The video pool: rendezvous placement (pure), and membership, leases and fences against the real Redis."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from detectors.pool_hash import assign, owner, share
from detectors.pool_keys import PoolKeys
from detectors.pool_member import PoolMember, PoolTiming
from detectors.pool_store import PoolStore, WorkerIdTaken, lease_owners
from tests.support import wait_for

pytestmark = pytest.mark.timeout(90)

CAMS = [f"cam-{i:04d}" for i in range(2000)]
FAST = PoolTiming(member_ttl_s=1.5, lease_ttl_s=2.0, tick_s=0.2, redis_timeout_s=0.5)


# -- rendezvous hashing (pure) ----------------------------------------------------------------------------------
def test_each_camera_has_one_owner_and_shares_are_even():
    members = [f"w{i}" for i in range(10)]
    placed = assign(CAMS, members)
    assert set(placed) == set(CAMS) and set(placed.values()) <= set(members)
    counts = Counter(placed.values())
    assert min(counts.values()) > 0.7 * len(CAMS) / 10 and max(counts.values()) < 1.3 * len(CAMS) / 10
    assert sum(len(share(CAMS, members, m)) for m in members) == len(CAMS)


def test_adding_a_worker_moves_only_what_it_wins():
    before = assign(CAMS, ["a", "b", "c"])
    after = assign(CAMS, ["a", "b", "c", "d"])
    moved = {c for c in CAMS if before[c] != after[c]}
    assert moved and all(after[c] == "d" for c in moved)       # nothing moves between the old members
    assert 0.15 * len(CAMS) < len(moved) < 0.35 * len(CAMS)   # about a quarter goes to the newcomer


def test_removing_a_worker_moves_only_its_cameras():
    before = assign(CAMS, ["a", "b", "c", "d"])
    after = assign(CAMS, ["a", "b", "d"])
    moved = {c for c in CAMS if before[c] != after[c]}
    assert moved == {c for c in CAMS if before[c] == "c"}


def test_placement_does_not_depend_on_member_order():
    assert owner("cam-7", ["x", "y", "z"]) == owner("cam-7", ["z", "x", "y"])
    assert assign(CAMS, []) == {}


# -- membership and leases (real Redis) ---------------------------------------------------------------------------
def test_a_second_process_with_the_same_worker_id_is_refused(redis_client, stream_prefix):
    keys = PoolKeys(stream_prefix)
    first = PoolStore(redis_client, keys, "host-a", "instance-1")
    assert first.beat(5000, {}, join=True).members == ("host-a",)
    second = PoolStore(redis_client, keys, "host-a", "instance-2")
    with pytest.raises(WorkerIdTaken, match="'host-a' is already in the pool"):
        second.beat(5000, {}, join=True)
    assert first.beat(5000, {}).state == "ok"                 # the first one is untouched
    first.leave()
    assert second.beat(5000, {}, join=True).state == "joined"  # a free id joins


def test_member_refused_at_join_after_waiting_one_ttl(redis_client, stream_prefix):
    keys = PoolKeys(stream_prefix)
    live = PoolMember(redis_client, keys, "dup", on_gain=lambda *_: None, on_lose=lambda *_: None, timing=FAST)
    live.join()
    stop = threading.Event()
    beating = threading.Thread(target=live.run_forever, args=(stop,), daemon=True)
    beating.start()
    try:
        twin = PoolMember(redis_client, keys, "dup", on_gain=lambda *_: None, on_lose=lambda *_: None, timing=FAST)
        started = time.monotonic()
        with pytest.raises(WorkerIdTaken):
            twin.join()
        assert time.monotonic() - started >= FAST.member_ttl_s  # waited for a dead predecessor's key, not a live one
    finally:
        stop.set()
        beating.join(5)
        live.leave()


def test_lease_is_exclusive_and_each_grant_gets_a_larger_fence(redis_client, stream_prefix):
    keys = PoolKeys(stream_prefix)
    a = PoolStore(redis_client, keys, "a", "ia")
    b = PoolStore(redis_client, keys, "b", "ib")
    assert a.acquire(["cam-1", "cam-2"], 400) == {"cam-1": 1, "cam-2": 1}
    assert b.acquire(["cam-1"], 400) == {}                                   # held
    assert a.refresh({"cam-1": 1}, 400) == {"cam-1"}
    assert lease_owners(redis_client, keys, ["cam-1"])["cam-1"].member == "a"
    wait_for(lambda: b.acquire(["cam-1"], 5000) == {"cam-1": 2}, 5, what="the lapsed lease to be granted to b")
    assert a.refresh({"cam-1": 1}, 400) == set()                             # a's compare-and-set fails now
    a.release({"cam-1": 1})                                                  # a cannot delete b's lease
    assert lease_owners(redis_client, keys, ["cam-1"])["cam-1"].fence == 2
    b.release({"cam-1": 2})
    assert a.acquire(["cam-1"], 400) == {"cam-1": 3}


# -- members driving engines ---------------------------------------------------------------------------------------
class FakeEngine:
    """What a member's engine analyses (pure bookkeeping; the pool under test is real)."""

    def __init__(self):
        self.cameras: dict[str, int] = {}
        self.log: list[tuple[float, str, str]] = []

    def gain(self, cid: str, fence: int) -> None:
        self.cameras[cid] = fence
        self.log.append((time.monotonic(), "gain", cid))

    def lose(self, cid: str) -> None:
        self.cameras.pop(cid, None)
        self.log.append((time.monotonic(), "lose", cid))


class Running:
    """A member ticking in a thread, as the video role runs it."""

    def __init__(self, client, keys, name, cams, timing=FAST):
        self.engine = FakeEngine()
        self.member = PoolMember(client, keys, name, on_gain=self.engine.gain, on_lose=self.engine.lose, timing=timing)
        self.member.set_cameras(cams)
        self.member.join()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.member.run_forever, args=(self.stop,), daemon=True)
        self.thread.start()

    def freeze(self) -> None:
        """As if SIGKILLed: no more ticks, no leave."""
        self.stop.set()
        self.thread.join(5)

    def close(self) -> None:
        self.freeze()
        self.member.leave()


def _disjoint_cover(runs, cams) -> bool:
    held = [set(r.engine.cameras) for r in runs]
    return sum(len(h) for h in held) == len(cams) and set().union(*held) == set(cams)


def test_members_split_the_cameras_and_survivors_take_a_dead_members_share(redis_client, stream_prefix):
    keys = PoolKeys(stream_prefix)
    cams = [f"c{i}" for i in range(60)]
    runs = [Running(redis_client, keys, f"w{i}", cams) for i in range(3)]
    try:
        wait_for(lambda: _disjoint_cover(runs, cams) and all(r.engine.cameras for r in runs), 15,
                 what="three members to split the cameras")
        dead = runs.pop(1)
        orphaned = dict(dead.engine.cameras)  # camera -> the fence it had with the dead member
        dead.freeze()
        killed_at = time.monotonic()
        wait_for(lambda: set().union(*[set(r.engine.cameras) for r in runs]) == set(cams), 15,
                 what="the survivors to take the dead member's cameras")
        assert time.monotonic() - killed_at < FAST.member_ttl_s + FAST.lease_ttl_s + 2
        fences = {c: f for r in runs for c, f in r.engine.cameras.items() if c in orphaned}
        assert set(fences) == set(orphaned) and all(f > orphaned[c] for c, f in fences.items())  # newer grants
        assert _disjoint_cover(runs, cams)
        # it comes back (a new process, a new instance): the pool rebalances, still one owner per camera
        runs.append(Running(redis_client, keys, "w1", cams))
        wait_for(lambda: _disjoint_cover(runs, cams) and len(runs[-1].engine.cameras) > 10, 15,
                 what="the returning member to get its share back")
    finally:
        for r in runs:
            r.close()


def test_a_skewed_wall_clock_changes_nothing(redis_client, stream_prefix, monkeypatch):
    """Leases and heartbeats use Redis TTLs and server TIME only; a member whose wall clock is an hour off
    (time.time) shares the cameras with a normal one exactly as two normal members do."""
    keys = PoolKeys(stream_prefix)
    cams = [f"c{i}" for i in range(40)]
    normal = Running(redis_client, keys, "normal", cams)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600.0)
    skewed = Running(redis_client, keys, "skewed", cams)
    try:
        runs = [normal, skewed]
        wait_for(lambda: _disjoint_cover(runs, cams) and all(r.engine.cameras for r in runs), 15,
                 what="a skewed and a normal member to split the cameras")
        held = dict(skewed.engine.cameras)
        # two lease periods later it still holds the same leases, refreshed, none lapsed or lost
        ticks = skewed.member.counters
        deadline = time.monotonic() + 2 * FAST.lease_ttl_s
        wait_for(lambda: time.monotonic() > deadline, 3 * FAST.lease_ttl_s, what="two lease periods to pass")
        assert skewed.engine.cameras == held and ticks.lapsed == 0 and ticks.lost == 0 and ticks.redis_errors == 0
    finally:
        normal.close()
        skewed.close()
