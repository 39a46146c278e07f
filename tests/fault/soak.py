"""Soak: cameras + sensor traffic + one-key alarms + duty workers for a long while, sampling memory and queues.

    .venv/bin/python tests/fault/soak.py --duration 600 --out run/soak.json      # the 10-minute run
    .venv/bin/python tests/fault/soak.py --duration 40 --sample 1                # what the test suite runs

Everything is real: Redis (unique key prefix), SQLite in a temp dir, the intake and SLA threads exactly as
``gateway.runtime`` runs them, camera decoding of the shared footage (``--cameras``), sensor-style and
camera-style anomalies on the stream, one-key alarms filed synchronously, and duty workers that read their
grid's queue and sign for tickets (so tickets flow instead of piling up). Every ``--sample`` seconds it
records the process RSS, the intake backlog (pending + lag), the duty entries pending, and counts.
At the end it fits a straight line to each series (after a warm-up share) and prints the slopes: flat
means healthy. Exit 1 if any anomaly sent was not filed.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("YOLO_OFFLINE", "1")

import numpy as np  # noqa: E402
import redis  # noqa: E402

from alerts.events import DUTY_GROUP  # noqa: E402
from alerts.grids import load_grid_file  # noqa: E402
from alerts.intake import INTAKE_GROUP, Intake  # noqa: E402
from alerts.queues import DutyQueue  # noqa: E402
from alerts.service import CaseService  # noqa: E402
from alerts.sla import Escalator  # noqa: E402
from alerts.store import open_store  # noqa: E402
from alerts.streams import StreamKeys, publish_anomaly  # noqa: E402
from ingest.anomaly import Anomaly  # noqa: E402
from gateway.config import load_deployment  # noqa: E402
from ingest.geo import GeoPoint  # noqa: E402

PLACES = [(120.105, 30.276), (120.135, 30.253), (120.118, 30.262), (120.128, 30.271)]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slope_per_min(t: list[float], y: list[float], warmup: float) -> float:
    n = len(t)
    start = int(n * warmup)
    if n - start < 3:
        return float("nan")
    k, _b = np.polyfit(np.array(t[start:]), np.array(y[start:]), 1)
    return float(k * 60)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=600)
    p.add_argument("--sample", type=float, default=2.0)
    p.add_argument("--rate", type=float, default=20.0, help="camera+sensor anomalies per second")
    p.add_argument("--alarm-every", type=float, default=2.0, help="seconds between one-key alarms")
    p.add_argument("--cameras", type=int, default=2, help="demo cameras decoded from the shared footage (0: none)")
    p.add_argument("--redis", default=os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    p.add_argument("--warmup", type=float, default=0.25, help="share of samples left out of the fits")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    dep = load_deployment()
    dep.alerts.confirm_sources = []  # dispatch at once, so duty queues are part of what is checked
    grids = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
    tmp = Path(tempfile.mkdtemp(prefix="gw-soak-"))
    store = open_store(f"sqlite:///{tmp / 'cases.db'}")
    store.sync_grids(grids)
    keys = StreamKeys(f"gwsoak-{uuid.uuid4().hex[:8]}")
    client = redis.Redis.from_url(args.redis)
    intake = Intake(store, grids, dep.alerts, client, keys, consumer="soak-intake")
    alarm_intake = Intake(store, grids, dep.alerts, client, keys, consumer="soak-alarms")
    cases = CaseService(store, grids, dep.alerts, client, keys)
    escalator = Escalator(store, grids, dep.alerts, client, keys)
    stop = threading.Event()
    sent: list[str] = []
    alarms = {"filed": 0, "slowest_s": 0.0}
    signed = {"n": 0}
    frames = {"n": 0}
    errors: list[str] = []

    def produce() -> None:
        rng = random.Random(7)
        i = 0
        while not stop.is_set():
            lon, lat = PLACES[i % len(PLACES)]
            if i % 3 == 0:   # sensor readings over threshold: merge by place within the category window
                a = Anomaly(kind="smoke", source="sensor", source_id=f"smoke-{i % 7}", location=GeoPoint(lon=lon, lat=lat),
                            title="soak sensor")
            else:            # camera events: a zone per event most of the time, sometimes a repeat (merge)
                zone = f"z{rng.randrange(50)}" if rng.random() < 0.5 else f"u{i}"
                a = Anomaly(kind="crowd", source="camera", source_id=f"cam-soak-{i % 5}", zone=zone,
                            location=GeoPoint(lon=lon, lat=lat), title="soak camera")
            try:
                publish_anomaly(client, keys, a)
                sent.append(a.id)
            except redis.RedisError as exc:
                errors.append(f"publish: {exc}")
            i += 1
            stop.wait(1.0 / args.rate)

    def alarm_loop() -> None:
        n = 0
        while not stop.wait(args.alarm_every):
            lon, lat = PLACES[n % len(PLACES)]
            a = Anomaly(kind="one_key_alarm", source="alarm", source_id=f"stb-{n % 40:04d}",
                        location=GeoPoint(lon=lon + 0.001 * (n % 13), lat=lat), title="soak alarm")
            t0 = time.perf_counter()
            try:
                alarm_intake.file(a)
                alarms["filed"] += 1
                alarms["slowest_s"] = max(alarms["slowest_s"], time.perf_counter() - t0)
                sent.append(a.id)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(f"alarm: {exc}")
            n += 1

    def workers() -> None:
        queues: dict[str, DutyQueue] = {}
        while not stop.is_set():
            for g in grids.all():
                if not client.exists(keys.duty(g.code)):
                    continue
                q = queues.get(g.code) or queues.setdefault(g.code, DutyQueue(client, keys, g.code, f"w-{g.code}", store=store))
                try:
                    for entry in q.read(count=20, block_ms=None):
                        try:
                            q.sign(entry, cases, "soak-worker", role="grid_worker")
                            signed["n"] += 1
                        except Exception:  # noqa: BLE001 - moved on elsewhere (escalated, merged): just acknowledge
                            q.ack(entry)
                except redis.RedisError as exc:
                    errors.append(f"worker: {exc}")
            stop.wait(0.5)

    cams = None
    if args.cameras:
        try:
            from ingest.video import CameraManager

            def sink(frame, *_a, **_k) -> None:  # noqa: ANN001
                frames["n"] += 1

            cams = CameraManager(dep.ingest, dep.base_dir, sink=sink)
            cams.start([c for c in dep.cameras if c.enabled][: args.cameras])
        except Exception as exc:  # noqa: BLE001 - the soak still runs without video
            errors.append(f"cameras: {type(exc).__name__}: {exc}")
            cams = None

    threads = [threading.Thread(target=f, daemon=True, name=n) for f, n in
               ((produce, "produce"), (alarm_loop, "alarms"), (workers, "workers"))]
    threads += [threading.Thread(target=intake.run_forever, args=(stop, 200), daemon=True, name="intake"),
                threading.Thread(target=escalator.run_forever, args=(stop, 2.0), daemon=True, name="sla")]
    for th in threads:
        th.start()
    samples: dict[str, list[float]] = {k: [] for k in ("t", "rss_mb", "intake_backlog", "duty_pending", "sent", "tickets_created",
                                                        "frames", "threads")}
    t0 = time.monotonic()
    try:
        while (now := time.monotonic() - t0) < args.duration:
            info = {g["name"].decode(): g for g in client.xinfo_groups(keys.anomalies)} if client.exists(keys.anomalies) else {}
            g = info.get(INTAKE_GROUP, {})
            duty = 0
            for grid in grids.all():
                if client.exists(keys.duty(grid.code)):
                    try:
                        duty += int(client.xpending(keys.duty(grid.code), DUTY_GROUP)["pending"])
                    except redis.ResponseError:
                        pass
            samples["t"].append(now)
            samples["rss_mb"].append(rss_mb())
            samples["intake_backlog"].append(int(g.get("pending", 0)) + int(g.get("lag") or 0))
            samples["duty_pending"].append(duty)
            samples["sent"].append(len(sent))
            samples["tickets_created"].append(intake.stats["created"] + alarm_intake.stats["created"])
            samples["frames"].append(frames["n"])
            samples["threads"].append(threading.active_count())
            stop.wait(args.sample)
    finally:
        stop.set()
        for th in threads:
            th.join(15)
        if cams is not None:
            cams.stop()
    # Drain: whatever was sent must end up filed.
    from sqlalchemy import select

    from alerts.models import Occurrence

    deadline = time.monotonic() + 60
    drain = Intake(store, grids, dep.alerts, client, keys, consumer="soak-intake")
    while time.monotonic() < deadline and drain.process_batch(block_ms=200):
        pass
    with store.read() as s:
        filed = set(s.scalars(select(Occurrence.anomaly_id)))
    lost = [a for a in sent if a not in filed]
    result = {
        "duration_s": round(args.duration, 1), "rate_hz": args.rate, "cameras": args.cameras,
        "sent": len(sent), "lost": len(lost), "alarms_filed": alarms["filed"], "slowest_alarm_s": round(alarms["slowest_s"], 3),
        "signed": signed["n"], "frames_decoded": frames["n"], "errors": errors[:10], "intake_stats": intake.stats,
        "slopes_per_min": {k: round(slope_per_min(samples["t"], samples[k], args.warmup), 3)
                           for k in ("rss_mb", "intake_backlog", "duty_pending", "threads")},
        "last": {k: v[-1] for k, v in samples.items() if v},
        "max": {k: max(v) for k, v in samples.items() if v},
        "samples": samples,
    }
    for key in client.scan_iter("\\{" + keys.prefix + "\\}:*", count=1000):
        client.delete(key)
    client.close()
    store.close()
    text = json.dumps({k: v for k, v in result.items() if k != "samples"}, ensure_ascii=False, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
