"""Video-pool control plane at scale: how fast camera assignment converges, and what a worker and an idle camera cost.

Why this exists: issue 13 asks for 10,000 cameras over ≥ 20 worker processes with assignment converged in < 30 s
after start and after a worker loss. This runs that in CONTROL-PLANE-ONLY mode: each worker is a real process
running the real ``detectors.pool_member.PoolMember`` (heartbeats, rendezvous share, lease scripts, fences) against
the real Redis, but its engine only records which cameras it holds — no source is opened, nothing is decoded. The
figures are therefore the pool's own cost (leases, hashing, Redis), not a camera's decoding cost.

"Converged" = every camera's lease is held by the member that rendezvous hashing over the live members names (read
back from Redis: ``lease_owners`` + ``members``), nothing else.

    .venv/bin/python benchmarks/bench_pool.py --cameras 10000 --workers 20          # the issue's scale
    .venv/bin/python benchmarks/bench_pool.py --cameras 1000 --workers 5 --json out.json   # a quick check

Rows: start (from the first process launched, and from the last member's join), loss (SIGKILL of one worker →
survivors hold its cameras), memory per worker (RSS), per idle camera (RSS growth of a worker per camera it holds,
and Redis memory per camera: its lease + fence counter + grant history).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from detectors.pool_hash import assign  # noqa: E402
from detectors.pool_keys import PoolKeys  # noqa: E402
from detectors.pool_store import lease_owners, members  # noqa: E402


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def member_main(url: str, prefix: str, member_id: str, cams: list[str], out: "mp.Queue") -> None:
    """One control-plane-only worker: a real PoolMember whose engine only counts what it holds."""
    from detectors.pool_member import PoolMember, PoolTiming, bounded_client

    held: set[str] = set()
    timing = PoolTiming()
    client = bounded_client(redis.Redis.from_url(url), timing.redis_timeout_s)
    member = PoolMember(client, PoolKeys(prefix), member_id, on_gain=lambda c, _f: held.add(c),
                        on_lose=held.discard, timing=timing)
    base = _rss_kb(os.getpid())
    member.set_cameras(cams)
    member.join()
    out.put(("joined", member_id, time.time(), base))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def report() -> None:  # what it holds and its RSS, every 2 s
        while not stop.wait(2.0):
            out.put(("rss", member_id, len(held), _rss_kb(os.getpid())))

    threading.Thread(target=report, daemon=True).start()
    member.run_forever(stop)
    member.leave()


def converged(client: redis.Redis, keys: PoolKeys, cams: list[str], expect_members: set[str]) -> bool:
    live = set(members(client, keys))
    if live != expect_members:
        return False
    want = assign(cams, live)
    have = lease_owners(client, keys, cams)
    return len(have) == len(cams) and all(have[c].member == want[c] for c in cams)


def wait_converged(client, keys, cams, expect, timeout_s: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if converged(client, keys, cams, expect):
            return time.monotonic() - start
        time.sleep(1.0)  # a benchmark's polling period (reading 10k leases costs Redis too), not test synchronisation
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=20)
    ap.add_argument("--redis", default=os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    prefix = f"gwbench-pool-{uuid.uuid4().hex[:8]}"
    keys = PoolKeys(prefix)
    client = redis.Redis.from_url(args.redis)
    cams = [f"cam-{i:05d}" for i in range(args.cameras)]
    ids = [f"bench-w{i:02d}" for i in range(args.workers)]
    redis_before = int(client.info("memory")["used_memory"])
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    procs: dict[str, mp.Process] = {}
    rows: dict[str, object] = {"cameras": args.cameras, "workers": args.workers, "mode": "control-plane only",
                               "git": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                                     capture_output=True, text=True).stdout.strip(),
                               "loadavg": os.getloadavg()[0], "cpus": os.cpu_count()}
    try:
        launched = time.monotonic()
        for mid in ids:
            p = ctx.Process(target=member_main, args=(args.redis, prefix, mid, cams, out), daemon=True)
            p.start()
            procs[mid] = p
        joined: dict[str, float] = {}
        base_rss: dict[str, int] = {}
        while len(joined) < len(ids):
            kind, mid, *rest = out.get(timeout=args.timeout)
            if kind == "joined":
                joined[mid] = time.monotonic()
                base_rss[mid] = rest[1]
        last_join = max(joined.values())
        t = wait_converged(client, keys, cams, set(ids), args.timeout)
        rows["start_converged_s_from_launch"] = None if t is None else round(time.monotonic() - launched, 2)
        rows["start_converged_s_from_last_join"] = None if t is None else round(time.monotonic() - last_join, 2)

        # memory: a few reports per worker after convergence
        latest: dict[str, tuple[int, int]] = {}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline or len(latest) < len(ids):
            kind, mid, *rest = out.get(timeout=args.timeout)
            if kind == "rss":
                latest[mid] = (rest[0], rest[1])
        rss = [kb for _, kb in latest.values()]
        per_cam = [(kb - base_rss[m]) * 1024 / held for m, (held, kb) in latest.items() if held]
        rows["worker_rss_mib_mean"] = round(sum(rss) / len(rss) / 1024, 1)
        rows["worker_rss_mib_max"] = round(max(rss) / 1024, 1)
        rows["worker_bytes_per_idle_camera"] = round(sum(per_cam) / len(per_cam)) if per_cam else None
        rows["redis_bytes_per_camera"] = round((int(client.info("memory")["used_memory"]) - redis_before) / args.cameras)

        # a worker is lost: SIGKILL, no leave
        victim = ids[len(ids) // 2]
        os.kill(procs[victim].pid, signal.SIGKILL)
        killed = time.monotonic()
        t = wait_converged(client, keys, cams, set(ids) - {victim}, args.timeout)
        rows["loss_converged_s"] = None if t is None else round(time.monotonic() - killed, 2)
    finally:
        for p in procs.values():
            if p.is_alive():
                p.terminate()
        for p in procs.values():
            p.join(15)
            if p.is_alive():
                p.kill()
        for key in client.scan_iter(f"{{{prefix}}}:*", count=1000):
            client.delete(key)
    print(f"\nvideo pool, control-plane only — {args.cameras} cameras, {args.workers} worker processes "
          f"(git {rows['git']}, load {rows['loadavg']:.2f}, {rows['cpus']} CPUs)")
    print(f"{'measure':<46} {'value':>12}  target")
    for name, label, unit, target in [
        ("start_converged_s_from_launch", "assignment converged after start (launch)", "s", "< 30 s"),
        ("start_converged_s_from_last_join", "  … from the last member's join", "s", ""),
        ("loss_converged_s", "assignment converged after a worker SIGKILL", "s", "< 30 s"),
        ("worker_rss_mib_mean", "memory per worker (RSS, mean)", "MiB", ""),
        ("worker_rss_mib_max", "memory per worker (RSS, max)", "MiB", ""),
        ("worker_bytes_per_idle_camera", "worker memory per idle camera (lease held)", "B", ""),
        ("redis_bytes_per_camera", "Redis memory per camera (lease, fence, grants)", "B", ""),
    ]:
        v = rows.get(name)
        print(f"{label:<46} {('—' if v is None else f'{v} {unit}'):>12}  {target}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    ok = all(rows.get(k) is not None and rows[k] < 30 for k in ("start_converged_s_from_launch", "loss_converged_s"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
