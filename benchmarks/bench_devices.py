"""Benchmark of the device path: MQTT sensor telemetry through decoding and the sensor rules, and a
burst of one-key alarm presses acked with case numbers.

Everything is real: a private Mosquitto (started here on a free port, with GridWatch's recommended
settings, unless ``--mqtt`` names one), the real Redis for nonces/press ledger/anomaly stream, the
real case intake on SQLite for the presses (``--intake redis`` files into a Redis counter instead),
and the simulator's publishers in a separate process so they do not share the ingest's GIL.

Phases:
1. ``max``: publishers send as fast as QoS 1 allows; the ingest's sustained rate is measured
   between its first and last message.
2. ``paced``: telemetry at ``--paced-fraction`` of that rate for ``--seconds``; latency is the time
   from the device timestamp (set at send) to the end of the rules for that reading — p50/p99.
3. ``presses``: ``--presses`` presses from as many boxes, sent within one second; p50/p99 of press → first
   answer (the ``queued`` ack in durable mode, the case ack otherwise) and of press → case number.
   ``--alarm-mode durable`` (default, the runtime's path) queues each press on the Redis press stream
   (the box is told ``queued``) and a ``PressFiler`` files what waits into ``Intake.file_many`` (group
   commit) and sends each box its case; ``batch`` is the
   in-memory ``AlarmBatcher`` (no durable queue) and ``single`` the one-transaction-per-press path
   (``on_alarm`` → ``Intake.file`` behind one lock), for comparison.

    python benchmarks/bench_devices.py                    # markdown table
    python benchmarks/bench_devices.py --json out.json    # and the raw figures
    python benchmarks/bench_devices.py --phases presses --alarm-mode single   # only the burst, the old path
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from alerts.streams import StreamKeys, publish_anomaly  # noqa: E402
from detectors.sensor_rules import SensorRuleEngine, alarm_anomaly  # noqa: E402
from ingest.config import MqttConfig  # noqa: E402
from ingest.devices import DeviceRegistry, MqttIngest, PressLedger, RedisNonceStore  # noqa: E402
from ingest.devices.acl import mosquitto_conf  # noqa: E402
from ingest.simulator import BoxFleet, run_sensors, simulated_devices  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    conf = workdir / "mosquitto.conf"
    extra = "user root\n" if os.geteuid() == 0 else ""
    conf.write_text(mosquitto_conf(port) + extra)
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"mqtt://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("mosquitto did not start")


def _publisher(url: str, prefix: str, sensors: int, rate: float, seconds: float, count: int | None, out: mp.Queue) -> None:
    devices = simulated_devices(sensors, 0, seed="bench")
    report = run_sensors(url, devices, rate / sensors, seconds, topic_prefix=prefix, connections=2, max_messages=count)
    out.put({"sent": report.sent, "acked": report.acked, "seconds": report.seconds})


def _boxes(url: str, prefix: str, n: int, out: mp.Queue) -> None:
    """Press once from each of ``n`` boxes within ~0.9 s and report press → ack latency."""
    boxes = simulated_devices(0, n, seed="bench-boxes", spread_deg=0.012)
    fleet = BoxFleet(url, boxes, topic_prefix=prefix, connections=8, ack_timeout_s=5.0)
    fleet.start()
    t0 = time.time()
    for i, box in enumerate(boxes):
        due = t0 + i / len(boxes) * 0.9
        if due - time.time() > 0.002:
            time.sleep(due - time.time())  # spreading the burst over the second
        fleet.press(box.id)
    send_s = time.time() - t0
    report = fleet.wait(deadline_s=60, retries=0)
    fleet.stop()
    out.put({"presses": report.sent, "acked": report.acked, "send_window_s": send_s, "statuses": report.statuses,
             "ack_p50_ms": (report.first_percentile(0.5) or float("nan")) * 1000,
             "ack_p99_ms": (report.first_percentile(0.99) or float("nan")) * 1000,
             "p50_ms": (report.percentile(0.5) or float("nan")) * 1000,
             "p99_ms": (report.percentile(0.99) or float("nan")) * 1000,
             "max_ms": max(report.latencies_s, default=float("nan")) * 1000,
             "cases": len({c for c in report.cases.values() if c})})


class Meter:
    """Counts messages the rules finished and samples their latency (one reading per message)."""

    def __init__(self, engine: SensorRuleEngine) -> None:
        self.engine = engine
        self.first = self.last = 0.0
        self.count = 0
        self.latencies: list[float] = []

    def on_reading(self, reading) -> None:
        self.engine.on_reading(reading)
        if reading.metric == "battery":  # one per message: the last reading of each
            now = time.time()
            if not self.count:
                self.first = now
            self.last = now
            self.count += 1
            self.latencies.append(now - reading.at)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def bench_telemetry(url: str, r: redis.Redis, prefix: str, args) -> dict:
    sensors = args.sensors
    registry = DeviceRegistry(simulated_devices(sensors, 0, seed="bench"))
    keys = StreamKeys(prefix)
    engine = SensorRuleEngine(registry, lambda a: publish_anomaly(r, keys, a))
    results = {}
    for phase in ("max", "paced"):
        meter = Meter(engine)
        tag = uuid.uuid4().hex[:8]
        cfg = MqttConfig(topic_prefix=f"bench/{tag}/v1", client_id=f"bench-{tag}", shared_group=None, session_expiry_s=60)
        ing = MqttIngest(url, cfg, registry, meter.on_reading, lambda p: None, lambda *a: None)
        ing.start()
        out: mp.Queue = mp.Queue()
        if phase == "max":
            n = args.messages
            proc = mp.Process(target=_publisher, args=(url, cfg.topic_prefix, sensors, 1e9, 1e9, n, out))
        else:
            rate = max(100.0, results["max"]["ingest_msg_s"] * args.paced_fraction)
            n = int(rate * args.seconds)
            proc = mp.Process(target=_publisher, args=(url, cfg.topic_prefix, sensors, rate, args.seconds, None, out))
        proc.start()
        pub = out.get(timeout=600)
        proc.join()
        deadline = time.time() + 120
        while meter.count < pub["sent"] and time.time() < deadline:
            time.sleep(0.05)
        ing.stop()
        span = max(meter.last - meter.first, 1e-9)
        results[phase] = {
            "messages": meter.count, "sent": pub["sent"], "publisher_msg_s": pub["sent"] / max(pub["seconds"], 1e-9),
            "ingest_msg_s": meter.count / span, "readings_per_msg": 2,
            "p50_ms": pct(meter.latencies, 0.5) * 1000, "p99_ms": pct(meter.latencies, 0.99) * 1000,
        }
    return results


def bench_presses(url: str, r: redis.Redis, prefix: str, args, workdir: Path) -> dict:
    boxes = simulated_devices(0, args.presses, seed="bench-boxes", spread_deg=0.012)
    registry = DeviceRegistry(boxes)
    keys = StreamKeys(prefix)
    filing = [0.0]  # seconds spent inside the batch filing call (anomaly building + file_many)
    if args.intake == "sqlite":
        import yaml

        from alerts.config import AlertsConfig
        from alerts.grids import load_grid_file
        from alerts.intake import Intake
        from alerts.store import open_store

        demo_path = REPO / "config" / "demo.yaml"
        demo = yaml.safe_load(demo_path.read_text(encoding="utf-8"))
        grids = load_grid_file(demo_path.parent / demo["grids"]["file"], version=str(demo["grids"]["version"]))
        store = open_store(f"sqlite:///{workdir / 'cases.db'}")
        store.sync_grids(grids)
        intake = Intake(store, grids, AlertsConfig.model_validate(demo["alerts"]), r, keys, consumer="bench")
        lock = threading.Lock()

        def on_alarm(press):
            anomaly = alarm_anomaly(press, registry.get(press.device_id), [])
            with lock:  # one writer: SQLite takes one write transaction at a time anyway
                return intake.file(anomaly).number

        def on_alarms(presses):
            t0 = time.perf_counter()
            anomalies = [alarm_anomaly(p, registry.get(p.device_id), []) for p in presses]
            with lock:
                refs = intake.file_many(anomalies, return_exceptions=True)
            filing[0] += time.perf_counter() - t0
            return [ref if isinstance(ref, BaseException) else ref.number for ref in refs]
    else:
        def on_alarm(press):
            publish_anomaly(r, keys, alarm_anomaly(press, registry.get(press.device_id), []))
            return f"C{r.incr(f'{prefix}:case_seq')}"

        def on_alarms(presses):
            return [on_alarm(p) for p in presses]

    tag = uuid.uuid4().hex[:8]
    cfg = MqttConfig(topic_prefix=f"bench/{tag}/v1", client_id=f"bench-alarm-{tag}", shared_group=None,
                     session_expiry_s=60, alarm_workers=args.alarm_workers)
    batched = args.alarm_mode == "batch"
    queue = filer = None
    if args.alarm_mode == "durable":  # the runtime's path: Redis press stream → PressFiler → file_many
        from ingest.devices import PressFiler, PressQueue

        queue = PressQueue(r, prefix, wait_s=30.0)
        filer = PressFiler(r, prefix, on_alarms, consumer="bench-filer", max_batch=args.alarm_batch)
    ing = MqttIngest(url, cfg, registry, lambda x: None, on_alarm, lambda *a: None,
                     nonce_store=RedisNonceStore(r, prefix), ledger=PressLedger(r, prefix),
                     on_alarms=on_alarms if batched else None, alarm_batch_max=args.alarm_batch,
                     alarm_batch_wait_s=args.alarm_batch_wait_ms / 1000, alarm_sink=queue)
    if filer is not None:  # as the runtime wires it: the filer sends each MQTT press's case to its box
        filer.on_filed = ing.send_acks
        queue.start()
        filer.start()
    ing.start()
    load = os.getloadavg()[0]
    out: mp.Queue = mp.Queue()
    proc = mp.Process(target=_boxes, args=(url, cfg.topic_prefix, args.presses, out))  # boxes are other machines
    proc.start()
    report = out.get(timeout=300)
    proc.join()
    stats = ing.stats()
    batcher = filer or ing.alarm_batcher
    out_stats = {"batches": batcher.batches, "largest_batch": batcher.largest_batch,
                 "filing_s": filing[0]} if batcher is not None else {}
    ing.stop()
    if filer is not None:
        filer.stop()
        queue.stop()
    if args.intake == "sqlite":
        out_stats["tickets_created"] = intake.stats["created"]
        out_stats["merged"] = intake.stats["merged"]
        store.close()
    return {**report, **out_stats, "intake": args.intake, "alarm_mode": args.alarm_mode, "load_1m": load,
            "ingest_ack_p99_ms": (stats["ack_latency_p99_s"] or float("nan")) * 1000}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mqtt", help="use this broker instead of starting a private one")
    p.add_argument("--redis", default=os.environ.get("GRIDWATCH_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    p.add_argument("--sensors", type=int, default=1000)
    p.add_argument("--messages", type=int, default=60000, help="messages of the max-rate phase")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the paced phase")
    p.add_argument("--paced-fraction", type=float, default=0.8)
    p.add_argument("--presses", type=int, default=1000)
    p.add_argument("--alarm-workers", type=int, default=4)
    p.add_argument("--intake", choices=["sqlite", "redis"], default="sqlite")
    p.add_argument("--alarm-mode", choices=["durable", "batch", "single"], default="durable",
                   help="durable: Redis press stream → PressFiler → Intake.file_many (the runtime's path); "
                        "batch: in-memory AlarmBatcher → Intake.file_many; single: one Intake.file per press")
    p.add_argument("--alarm-batch", type=int, default=64, help="most presses filed in one transaction")
    p.add_argument("--alarm-batch-wait-ms", type=float, default=2.0, help="longest wait for more presses to join a batch")
    p.add_argument("--phases", default="telemetry,presses", help="comma-separated subset of telemetry,presses")
    p.add_argument("--json", help="write the raw figures here")
    args = p.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="gw-bench-devices-"))
    broker = None
    url = args.mqtt
    if url is None:
        broker, url = start_broker(workdir)
    r = redis.Redis.from_url(args.redis)
    prefix = f"gwbench-{uuid.uuid4().hex[:8]}"
    phases = {x.strip() for x in args.phases.split(",") if x.strip()}
    tele = press = None
    try:
        if "telemetry" in phases:
            tele = bench_telemetry(url, r, prefix, args)
        if "presses" in phases:
            press = bench_presses(url, r, prefix, args, workdir)
    finally:
        for key in r.scan_iter("\\{" + prefix + "\\}:*", count=1000):
            r.delete(key)
        if broker is not None:
            broker.terminate()
            broker.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n### GridWatch device path — {os.cpu_count()} CPU, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"1-min load {os.getloadavg()[0]:.1f}\n")
    print("| phase | messages | rate (msg/s) | p50 | p99 | target |")
    print("|---|---:|---:|---:|---:|---|")
    # presses: p50/p99 of press → case number; "first answer" (``queued``, durable mode) is printed beside it
    if tele is not None:
        m, pc = tele["max"], tele["paced"]
        print(f"| telemetry, max rate (QoS 1, decode + rules) | {m['messages']} | {m['ingest_msg_s']:,.0f} | – | – | ≥ 20,000 msg/s |")
        print(f"| telemetry, paced at {args.paced_fraction:.0%} of max | {pc['messages']} | {pc['ingest_msg_s']:,.0f} | "
              f"{pc['p50_ms']:.1f} ms | {pc['p99_ms']:.1f} ms | – |")
    if press is not None:
        how = f"{press['intake']} intake, {press['alarm_mode']}"
        if press.get("batches"):
            how += f": {press['batches']} commits, largest {press['largest_batch']}"
        print(f"| one-key presses in {press['send_window_s']:.2f} s ({how}): press → first answer | "
              f"{press['presses']} presses | – | {press['ack_p50_ms']:.1f} ms | {press['ack_p99_ms']:.1f} ms | p99 < 300 ms |")
        print(f"| the same presses: press → case number | {press['acked']}/{press['presses']} with a case, "
              f"{press['cases']} cases | – | {press['p50_ms']:.1f} ms | {press['p99_ms']:.1f} ms | within ~1 s |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"telemetry": tele, "presses": press, "cpus": os.cpu_count()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
