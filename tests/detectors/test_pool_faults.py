"""Video pool faults with the real Redis: a member that loses Redis for 20 s stops analysing before its leases can
lapse on the server, a survivor takes its cameras only after that, and on its return it rejoins and takes its
share back — at no moment do two members analyse one camera.

The outage is a TCP relay between one member and Redis that stops relaying (connections hang, as in a network
partition: the member's calls time out); the other member talks to Redis directly.
"""
from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from detectors.pool_keys import PoolKeys
from detectors.pool_member import PoolMember, PoolTiming, bounded_client
from tests.support import wait_for

pytestmark = pytest.mark.timeout(120)

OUTAGE_S = 20.0
TIMING = PoolTiming()  # the defaults a deployment runs with: member TTL 6 s, lease TTL 8 s, tick 1 s


class Relay:
    """127.0.0.1:port → Redis; ``cut()`` blackholes every connection (old and new) until ``heal()``."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self._socks.append(client)
            if not self.open.is_set():
                continue  # accepted, never answered: a partition
            upstream = socket.create_connection(self.target)
            self._socks.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not self.open.is_set():
                    continue  # swallowed
                dst.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        self.open.clear()

    def heal(self) -> None:
        self.open.set()
        socks, self._socks = self._socks, []
        for s in socks:  # hung connections are dropped; the client reconnects
            try:
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self.server.close()
        self.heal()


class Recorder:
    def __init__(self):
        self.cameras: set[str] = set()
        self.events: list[tuple[float, str, str]] = []

    def gain(self, cid: str, _fence: int) -> None:
        self.cameras.add(cid)
        self.events.append((time.monotonic(), "gain", cid))

    def lose(self, cid: str) -> None:
        self.cameras.discard(cid)
        self.events.append((time.monotonic(), "lose", cid))


def test_a_member_that_loses_redis_for_20s_stops_then_rejoins(redis_client, stream_prefix):
    keys = PoolKeys(stream_prefix)
    kw = redis_client.connection_pool.connection_kwargs
    relay = Relay((kw.get("host", "127.0.0.1"), int(kw.get("port", 6379))))
    cams = [f"c{i}" for i in range(30)]
    a_rec, b_rec = Recorder(), Recorder()
    a_client = bounded_client(redis.Redis(port=relay.port), TIMING.redis_timeout_s)  # as the video role builds it
    a = PoolMember(a_client, keys, "a", on_gain=a_rec.gain, on_lose=a_rec.lose, timing=TIMING)
    b = PoolMember(redis_client, keys, "b", on_gain=b_rec.gain, on_lose=b_rec.lose, timing=TIMING)
    overlap: list[set[str]] = []
    stop = threading.Event()
    threads = []
    for m in (a, b):
        m.set_cameras(cams)
        m.join()
        threads.append(threading.Thread(target=m.run_forever, args=(stop,), daemon=True))

    def watch() -> None:  # samples both members' cameras: they must never overlap
        while not stop.is_set():
            both = a_rec.cameras & b_rec.cameras
            if both:
                overlap.append(set(both))
            stop.wait(0.05)

    threads.append(threading.Thread(target=watch, daemon=True))
    for t in threads:
        t.start()
    try:
        wait_for(lambda: a_rec.cameras and b_rec.cameras and len(a_rec.cameras | b_rec.cameras) == len(cams), 20,
                 what="both members to split the cameras")
        a_share = set(a_rec.cameras)
        cut_at = time.monotonic()
        relay.cut()
        wait_for(lambda: not a_rec.cameras, TIMING.lease_ttl_s + 2, what="the cut-off member to stop analysing")
        stopped_s = time.monotonic() - cut_at
        wait_for(lambda: b_rec.cameras == set(cams), 15, what="the survivor to take every camera")
        taken_s = time.monotonic() - cut_at
        assert stopped_s < TIMING.lease_ttl_s < taken_s + 0.5, (stopped_s, taken_s)
        for cid in a_share:  # per camera: a stopped before b started
            a_lost = max(t for t, kind, c in a_rec.events if c == cid and kind == "lose")
            b_got = max(t for t, kind, c in b_rec.events if c == cid and kind == "gain")
            assert a_lost < b_got, cid
        wait_for(lambda: time.monotonic() - cut_at >= OUTAGE_S, OUTAGE_S + 5, what="the outage to last 20 s")
        assert not a_rec.cameras and a.counters.lapsed == len(a_share)
        relay.heal()
        wait_for(lambda: a.counters.rejoins >= 1 and a_rec.cameras == a_share and
                 b_rec.cameras == set(cams) - a_share, 20, what="the member to rejoin and take its share back")
        assert overlap == []
        print(f"[fault] pool member cut off from Redis for {OUTAGE_S:.0f} s: stopped its {len(a_share)} cameras after "
              f"{stopped_s:.1f} s, survivor had them after {taken_s:.1f} s (lease TTL {TIMING.lease_ttl_s:.0f} s); "
              f"rejoined and took its share back; 0 overlap")
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        a.leave()
        b.leave()
        relay.close()
