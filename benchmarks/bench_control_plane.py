"""Control-plane benchmark (#13.6): the parts that grow with the number of cameras and devices, not with video.

1. Camera list/filter/search with 10,000 cameras: the real runtime (API role, sources off, real Redis with a
   status document per camera as video roles publish it, SQLite in a temp dir) and the real FastAPI app
   through Starlette's TestClient (in-process ASGI: handler, filtering, serialisation, Redis MGET; no TCP).
   p50/p99 per query; baseline: the list as it was before pagination (every visible camera serialised).
2. Memory per idle camera: the configuration objects the API holds (pydantic ``Camera`` + the list catalog's row),
   by tracemalloc over building 10,000 of them.
3. 100,000 devices in the registry (the simulator's deterministic fleet): the ``gridwatch mqtt-acl`` code path
   (``write_mosquitto_auth``: a PBKDF2 hash per device), point→grid routing (``GridIndex.route``, an STRtree)
   against a linear scan over the grid polygons, device lookups (``DeviceRegistry.get``) against a linear scan.

    python benchmarks/bench_control_plane.py                 # markdown table (about a minute on 2 cores)
    python benchmarks/bench_control_plane.py --json out.json # and the raw figures

The video pool's convergence with 10,000 cameras and 20 workers is issue-13a's part (benchmarks/bench_pool.py).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("YOLO_OFFLINE", "1")

import redis  # noqa: E402

from benchmarks.fleet import synthetic_cameras  # noqa: E402

API_KEY = "bench-integrator-key-0123456789abcdef"


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds (``statistics.quantiles``, inclusive method)."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def bench_camera_list(n: int, repeat: int, redis_url: str, tmp: Path) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from gateway.api.cameras import _healths, _visible_list, camera_out
    from gateway.app import create_app
    from gateway.config import User, load_deployment
    from gateway.runtime import build_runtime

    dep = load_deployment()
    prefix = f"gwbench-{uuid.uuid4().hex[:8]}"
    dep.services.run_dir, dep.services.sql_url = str(tmp), f"sqlite:///{tmp}/gridwatch.db"
    dep.services.redis_url, dep.services.stream_prefix, dep.services.autostart = redis_url, prefix, False
    dep.gateway.bcrypt_rounds = 4
    dep.gateway.users = [User(username="integrator", password="x" * 12, role="integrator", api_key=API_KEY)]
    rt = build_runtime(dep, sources=False, roles=("api",))
    client = redis.Redis.from_url(redis_url)
    try:
        dep.cameras.extend(synthetic_cameras(rt.grids, n))
        pipe = client.pipeline(transaction=False)
        for i, cam in enumerate(dep.cameras):  # what n cameras' video roles publish: one status document each
            state = "offline" if i % 50 == 0 else "live"
            pipe.set(rt.camera_keys.status(cam.id), json.dumps({"state": state, "camera_fps": 5.0, "worker": f"w{i % 20}",
                                                                "host": f"host-{i % 3}", "published_at": time.time()}), ex=600)
        pipe.execute()
        http = TestClient(create_app(rt))
        key = {"X-API-Key": API_KEY}
        queries = {"first page (100)": {}, "page at offset 9,000": {"offset": 9000}, "search q=syn-09 (1,000 hits, first 100)": {"q": "syn-09"},
                   "search one camera by name": {"q": "合成摄像机 4242 号"}, "grid filter (a base grid)": {"grid": "330199001001003"},
                   "state=offline (MGET of all)": {"state": "offline"}, "host=host-1 and q=syn-1": {"host": "host-1", "q": "syn-1"}}
        assert http.get("/api/v1/cameras", headers=key).status_code == 200  # the catalog fills on the first call
        rows = {}
        for name, params in queries.items():
            samples = timed(lambda: http.get("/api/v1/cameras", headers=key, params=params).raise_for_status(), repeat)
            rows[name] = percentiles(samples)
        def old_list() -> None:  # the endpoint before paging: every visible camera serialised with its health
            class _All:  # the integrator: sees every camera
                role, scope = "integrator", None

                @staticmethod
                def sees_grid(_: Any) -> bool:
                    return True

            cams = _visible_list(rt, _All())
            health = _healths(rt, [c.id for c in cams])
            [camera_out(rt, c, health[c.id]) for c in cams]

        old = timed(old_list, 3)
        rows["baseline: whole list serialised (before)"] = (statistics.median(old) * 1000, max(old) * 1000)
        return {"cameras": len(dep.cameras), "rows": rows}
    finally:
        for pattern in (f"{prefix}:*", "\\{" + prefix + "\\}:*"):
            for k in client.scan_iter(match=pattern, count=1000):
                client.delete(k)
        rt.stop()


def bench_camera_memory(n: int) -> dict[str, float]:
    from alerts.grids import load_grid_file
    from gateway.api.camera_query import CameraCatalog

    grids = load_grid_file(REPO / "config" / "grids" / "qingshui.geojson")
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    cams = synthetic_cameras(grids, n)
    mid = tracemalloc.take_snapshot()
    catalog = CameraCatalog(grids)
    catalog.rows(cams)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    config = sum(s.size_diff for s in mid.compare_to(before, "filename"))
    rows = sum(s.size_diff for s in after.compare_to(mid, "filename"))
    return {"config_bytes_per_camera": config / n, "catalog_bytes_per_camera": rows / n}


def bench_devices(n: int, tmp: Path) -> dict[str, Any]:
    from alerts.grids import load_grid_file
    from ingest.devices import DeviceRegistry, write_mosquitto_auth
    from ingest.simulator import simulated_devices

    start = time.perf_counter()
    devices = simulated_devices(sensors=n * 9 // 10, boxes=n - n * 9 // 10)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    registry = DeviceRegistry(devices)
    registry_s = time.perf_counter() - start
    start = time.perf_counter()
    write_mosquitto_auth(registry, tmp / "passwd", tmp / "acl", topic_prefix="gridwatch/v1",
                         service_users={"gridwatch": "bench-password"})
    acl_s = time.perf_counter() - start
    points = [d.location for d in devices]
    routed = points[:20_000]  # the rate, on a fifth of the fleet (routing all 100,000 only takes five times longer)
    routing = {name: route_rates(grids, routed, sample) for name, grids, sample in (
        ("the demo's", load_grid_file(REPO / "config" / "grids" / "qingshui.geojson"), 5000),
        ("a city's", city_grids(), 300))}
    ids = [d.id for d in devices]
    rng = random.Random(7)
    lookups = [rng.choice(ids) for _ in range(200_000)]
    start = time.perf_counter()
    for device_id in lookups:
        registry.get(device_id)
    lookup_s = time.perf_counter() - start
    listed = registry.all()
    few = lookups[:200]
    start = time.perf_counter()
    for device_id in few:
        next(d for d in listed if d.id == device_id)
    scan_s = time.perf_counter() - start
    return {"devices": len(devices), "build_s": build_s, "registry_s": registry_s, "acl_s": acl_s,
            "acl_bytes": (tmp / "passwd").stat().st_size + (tmp / "acl").stat().st_size,
            "routing": routing, "lookups_per_s": len(lookups) / lookup_s, "scan_lookups_per_s": len(few) / scan_s}


def route_rates(grids: Any, points: list[Any], sample: int) -> dict[str, float]:
    """Points routed per second by ``GridIndex.route`` (STRtree) and by a linear scan (base grids first)."""
    from shapely.geometry import Point

    start = time.perf_counter()
    routed = [grids.route(p) for p in points]
    index_s = time.perf_counter() - start
    order = ["grid", "community", "street", "district"]
    polygons = [(g, g.geometry) for g in sorted(grids.all(), key=lambda g: (order.index(g.level), g.code))]

    def linear(p: Any) -> Any:
        q = Point(p.wgs84().lon, p.wgs84().lat)
        return next((g for g, geom in polygons if geom.intersects(q)), None)

    start = time.perf_counter()
    naive = [linear(p) for p in points[:sample]]
    linear_s = time.perf_counter() - start
    agree = sum(1 for a, b in zip(routed, naive) if (a and a.code) == (b and b.code)) / sample
    return {"grids": len(grids.all()), "index_per_s": len(points) / index_s, "linear_per_s": sample / linear_s, "agreement": agree}


def city_grids(side: int = 64) -> Any:
    """A city-sized grid tree over the demo district's area: 4 streets, 64 communities, ``side``² (4,096) base grids."""
    from shapely.geometry import box

    from alerts.grids import Grid, GridIndex

    lon0, lat0, span = 120.100, 30.245, 0.040
    cell = span / side

    def square(ix: int, iy: int, n: int) -> Any:
        return box(lon0 + ix * cell, lat0 + iy * cell, lon0 + (ix + n) * cell, lat0 + (iy + n) * cell)

    out = [Grid("330199", "城区", "district", None, square(0, 0, side))]
    half, block = side // 2, side // 8
    for sx in range(2):
        for sy in range(2):
            street = f"330199{sx * 2 + sy + 1:03d}"
            out.append(Grid(street, f"街道{street[-3:]}", "street", "330199", square(sx * half, sy * half, half)))
            for cx in range(4):
                for cy in range(4):
                    community = f"{street}{cx * 4 + cy + 1:03d}"
                    ox, oy = sx * half + cx * block, sy * half + cy * block
                    out.append(Grid(community, f"社区{community[-6:]}", "community", street, square(ox, oy, block)))
                    out += [Grid(f"{community}{gx * block + gy + 1:03d}", f"网格{gx}{gy}", "grid", community, square(ox + gx, oy + gy, 1))
                            for gx in range(block) for gy in range(block)]
    return GridIndex(out)


def table(cams: dict[str, Any] | None, mem: dict[str, float] | None, dev: dict[str, Any] | None) -> str:
    lines: list[str] = []
    if cams:
        lines += [f"Camera list, {cams['cameras']:,} cameras (in-process ASGI, real Redis; p99 target < 200 ms):", "",
                  "| query | p50 ms | p99 ms |", "|---|---:|---:|"]
        for name, (p50, p99) in cams["rows"].items():
            label = name if not name.startswith("baseline") else name + " (median / max of 3)"
            lines.append(f"| {label} | {p50:.1f} | {p99:.1f} |")
        lines.append("")
    if mem:
        lines += [f"Memory per idle camera (API's configuration): {mem['config_bytes_per_camera'] / 1024:.1f} KiB config + "
                  f"{mem['catalog_bytes_per_camera'] / 1024:.2f} KiB list catalog", ""]
    if not dev:
        return "\n".join(lines)
    lines += [f"{dev['devices']:,} devices in the registry:", "", "| what | figure | baseline in the same run |", "|---|---:|---:|",
              f"| build the registry | {dev['registry_s']:.2f} s | – |",
              f"| MQTT password file + ACL (`gridwatch mqtt-acl` path) | {dev['acl_s']:.1f} s ({dev['acl_bytes'] / 1e6:.1f} MB) | – |",
              *(f"| point → grid routing, {name} {r['grids']:,} grids (STRtree) | {r['index_per_s']:,.0f} /s | linear scan: "
                f"{r['linear_per_s']:,.0f} /s (same answer for {r['agreement']:.1%}) |" for name, r in dev["routing"].items()),
              f"| device lookups by id | {dev['lookups_per_s']:,.0f} /s | linear scan: {dev['scan_lookups_per_s']:,.0f} /s |"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=100, help="requests per camera-list query")
    parser.add_argument("--redis", default=os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--parts", default="cameras,memory,devices", help="which parts to run (comma-separated)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="gw-bench-cp-") as tmp:
        cams = bench_camera_list(args.cameras, args.repeat, args.redis, Path(tmp)) if "cameras" in parts else None
        mem = bench_camera_memory(args.cameras) if "memory" in parts else None
        dev = bench_devices(args.devices, Path(tmp)) if "devices" in parts else None
    print(table(cams, mem, dev))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"cameras": cams, "memory": mem, "devices": dev, "load": os.getloadavg()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
