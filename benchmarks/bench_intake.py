"""Benchmark of the case system's hot path: point → grid routing, and anomaly → committed ticket intake.

Run: ``.venv/bin/python benchmarks/bench_intake.py [--points 200000] [--anomalies 2000]``.
Needs the local Redis (127.0.0.1:6379); the store is a fresh SQLite file in a temp dir.
Intake is measured through the real stream path (XREADGROUP → SQL commit → duty XADD + event + XACK),
with a mix of new tickets and merges (every fourth anomaly repeats a camera+zone+kind).
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from alerts.config import AlertsConfig  # noqa: E402
from alerts.grids import load_grid_file  # noqa: E402
from alerts.intake import Intake, route_point  # noqa: E402
from alerts.store import open_store  # noqa: E402
from alerts.streams import StreamKeys  # noqa: E402
from ingest.anomaly import Anomaly  # noqa: E402
from ingest.geo import GeoPoint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--anomalies", type=int, default=2_000)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = ap.parse_args()

    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text(encoding="utf-8"))
    cfg = AlertsConfig.model_validate(demo["alerts"])
    grids = load_grid_file(REPO / "config" / demo["grids"]["file"], version=str(demo["grids"]["version"]))
    rng = random.Random(7)
    rows = []

    pts = [GeoPoint(lon=rng.uniform(120.094, 120.146), lat=rng.uniform(30.244, 30.286)) for _ in range(args.points)]
    t0 = time.perf_counter()
    for p in pts:
        route_point(grids, p)
    dt = time.perf_counter() - t0
    rows.append(("point→grid routing (WGS-84)", args.points, dt, args.points / dt, "points/s"))
    gpts = [GeoPoint(lon=p.lon + 0.0045, lat=p.lat - 0.0024, crs="GCJ02") for p in pts[: args.points // 4]]
    t0 = time.perf_counter()
    for p in gpts:
        route_point(grids, p)
    dt = time.perf_counter() - t0
    rows.append(("point→grid routing (GCJ-02 in)", len(gpts), dt, len(gpts) / dt, "points/s"))

    client = redis.Redis.from_url(args.redis)
    keys = StreamKeys(prefix=f"gwbench-{uuid.uuid4().hex[:8]}")
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        store.sync_grids(grids)
        try:
            intake = Intake(store, grids, cfg, client, keys, "bench")
            intake.ensure_group()
            kinds = ["crowd", "illegal_parking", "fire_smoke", "one_key_alarm", "smoke_alarm", "motion"]
            pipe = client.pipeline(transaction=False)
            for i in range(args.anomalies):
                kind = kinds[i % len(kinds)]
                source = {"one_key_alarm": "alarm", "smoke_alarm": "sensor"}.get(kind, "camera")
                sid = f"src-{i // 4 if i % 4 else i}"
                a = Anomaly(kind=kind, source=source, source_id=sid, zone="z" if source == "camera" else None,
                            location=GeoPoint(lon=rng.uniform(120.1, 120.14), lat=rng.uniform(30.25, 30.28)))
                pipe.xadd(keys.anomalies, a.to_stream())
            pipe.execute()
            t0 = time.perf_counter()
            done = 0
            while done < args.anomalies:
                n = intake.process_batch(block_ms=100)
                if n == 0:
                    break
                done += n
            dt = time.perf_counter() - t0
            rows.append(("anomaly→committed ticket (stream, SQLite)", done, dt, done / dt, "anomalies/s"))
            t0 = time.perf_counter()
            lat = []
            for i in range(200):
                s0 = time.perf_counter()
                intake.file(Anomaly(kind="one_key_alarm", source="alarm", source_id=f"stb-{i}",
                                    location=GeoPoint(lon=120.1 + i * 0.0002, lat=30.26)))
                lat.append(time.perf_counter() - s0)
            lat.sort()
            rows.append(("file() one-key alarm, p50 / p99 latency", 200, sum(lat),
                         lat[100] * 1000, f"ms p50 ({lat[197] * 1000:.1f} ms p99)"))
            st = intake.stats
        finally:
            store.close()
            for k in client.scan_iter("\\{" + keys.prefix + "\\}:*"):
                client.delete(k)

    print(f"{'measure':44} {'n':>8} {'seconds':>9} {'rate':>12}  unit")
    for name, n, secs, rate, unit in rows:
        print(f"{name:44} {n:>8} {secs:>9.3f} {rate:>12.1f}  {unit}")
    print(f"intake stats: {st}")


if __name__ == "__main__":
    main()
