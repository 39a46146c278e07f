"""One intake process for the fault tests: reads the anomaly stream into the store until SIGTERM (or SIGKILL).

    python tests/fault/intake_worker.py --redis URL --sql URL --prefix P --consumer NAME [--claim-idle S]

It is exactly what ``gateway.runtime.Runtime`` runs in its intake thread (``Intake.run_forever``),
in a process of its own so that a test can ``kill -9`` it in the middle of a batch.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import redis  # noqa: E402

from alerts.config import AlertsConfig  # noqa: E402
from alerts.grids import load_grid_file  # noqa: E402
from alerts.intake import Intake  # noqa: E402
from alerts.outbox import Outbox  # noqa: E402
from alerts.store import open_store  # noqa: E402
from alerts.streams import StreamKeys  # noqa: E402
from gateway.config import load_deployment  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--redis", required=True)
    p.add_argument("--sql", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--consumer", required=True)
    p.add_argument("--claim-idle", type=float, default=1.0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dep = load_deployment()
    dep.alerts.confirm_sources = []  # dispatch at once, so duty queues are part of what is checked
    grids = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
    cfg: AlertsConfig = dep.alerts
    store = open_store(args.sql)
    store.sync_grids(grids)
    client = redis.Redis.from_url(args.redis, socket_timeout=5, socket_connect_timeout=2)
    intake = Intake(store, grids, cfg, client, StreamKeys(args.prefix), consumer=args.consumer, claim_idle_s=args.claim_idle)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Every process that holds the store runs the outbox relay (gateway.runtime): it sends what a killed one owed.
    threading.Thread(target=Outbox(store, client, StreamKeys(args.prefix)).run_forever, args=(stop,), daemon=True).start()
    print("intake worker ready", flush=True)
    intake.run_forever(stop, block_ms=200)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
