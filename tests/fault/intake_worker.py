"""One intake process for the fault tests: reads the anomaly stream into the store until SIGTERM (or SIGKILL).

    python tests/fault/intake_worker.py --redis URL --sql URL --prefix P --consumer NAME [--claim-idle S]

It is exactly what ``gateway.runtime.Runtime`` runs in its intake thread (``Intake.run_forever``),
in a process of its own so that a test can ``kill -9`` it in the middle of a batch.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from alerts.intake import Intake  # noqa: E402
from tests.fault.worker_parts import parse_args, store_parts  # noqa: E402


def main() -> int:
    args = parse_args()
    parts = store_parts(args, dispatch_at_once=True)
    parts.store.sync_grids(parts.grids)
    intake = Intake(parts.store, parts.grids, parts.dep.alerts, parts.client, parts.keys, consumer=args.consumer,
                    claim_idle_s=args.claim_idle)
    print("intake worker ready", flush=True)
    intake.run_forever(parts.stop, block_ms=200)
    parts.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
