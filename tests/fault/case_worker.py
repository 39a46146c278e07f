"""A case-side worker process for the fault tests, until SIGTERM (or SIGKILL at a fail point):

    python tests/fault/case_worker.py --role signer --unit GRID ...   # a grid worker's duty queue: 签收 each entry
    python tests/fault/case_worker.py --role sla ...                  # the SLA escalator (Escalator.run_forever)

``--role signer`` is what a worker's app does through ``DutyQueue.sign`` (read, sign for, acknowledge);
``--role sla`` is exactly the runtime's escalation thread. Each in a process of its own so a test can
kill it inside the write (``GRIDWATCH_FAILPOINT``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from alerts.queues import DutyQueue  # noqa: E402
from alerts.service import CaseService  # noqa: E402
from alerts.sla import Escalator  # noqa: E402
from tests.fault.worker_parts import parse_args, store_parts  # noqa: E402


def _own_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", choices=["signer", "sla"], required=True)
    p.add_argument("--unit", default="330199001001001")


def main() -> int:
    args = parse_args(_own_args)
    parts = store_parts(args)
    print(f"{args.role} worker ready", flush=True)
    if args.role == "sla":
        Escalator(parts.store, parts.grids, parts.dep.alerts, parts.client, parts.keys).run_forever(parts.stop, interval_s=0.2)
    else:
        cases = CaseService(parts.store, parts.grids, parts.dep.alerts, parts.client, parts.keys)
        queue = DutyQueue(parts.client, parts.keys, args.unit, args.consumer, store=parts.store, claim_idle_s=args.claim_idle)
        while not parts.stop.is_set():
            for entry in queue.read(count=20, block_ms=200):
                queue.sign(entry, cases, "worker_qh1")
    parts.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
