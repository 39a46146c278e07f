"""A case-side worker process for the fault tests, until SIGTERM (or SIGKILL at a fail point):

    python tests/fault/case_worker.py --role signer --unit GRID ...   # a grid worker's duty queue: 签收 each entry
    python tests/fault/case_worker.py --role sla ...                  # the SLA escalator (Escalator.run_forever)

``--role signer`` is what a worker's app does through ``DutyQueue.sign`` (read, sign for, acknowledge);
``--role sla`` is exactly the runtime's escalation thread. Each in a process of its own so a test can
kill it inside the write (``GRIDWATCH_FAILPOINT``).
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

from alerts.grids import load_grid_file  # noqa: E402
from alerts.queues import DutyQueue  # noqa: E402
from alerts.service import CaseService  # noqa: E402
from alerts.sla import Escalator  # noqa: E402
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
    p.add_argument("--role", choices=["signer", "sla"], required=True)
    p.add_argument("--unit", default="330199001001001")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dep = load_deployment()
    grids = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
    store = open_store(args.sql)
    client = redis.Redis.from_url(args.redis, socket_timeout=5, socket_connect_timeout=2)
    keys = StreamKeys(args.prefix)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Every process that holds the store runs the outbox relay (gateway.runtime): it sends what a killed one owed.
    threading.Thread(target=Outbox(store, client, keys).run_forever, args=(stop,), daemon=True).start()
    print(f"{args.role} worker ready", flush=True)
    if args.role == "sla":
        Escalator(store, grids, dep.alerts, client, keys).run_forever(stop, interval_s=0.2)
    else:
        cases = CaseService(store, grids, dep.alerts, client, keys)
        queue = DutyQueue(client, keys, args.unit, args.consumer, store=store, claim_idle_s=args.claim_idle)
        while not stop.is_set():
            for entry in queue.read(count=20, block_ms=200):
                queue.sign(entry, cases, "worker_qh1")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
