"""What every fault-test worker script (intake_worker.py, case_worker.py, notify_worker.py) starts from: the
command line that ``tests.fault.support.IntakeProcess`` passes, logging, SIGTERM as the stop signal, and the parts
of the demo deployment over the test's own Redis and store.

Kept free of pytest and of the test helpers: these run as plain child processes, which a fail point may SIGKILL.
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def parse_args(add: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """``--redis --sql --prefix --consumer --claim-idle`` (what ``IntakeProcess`` passes) plus the script's own
    (``add``); sets up logging the way the role processes log."""
    p = argparse.ArgumentParser()
    p.add_argument("--redis", required=True)
    p.add_argument("--sql", default="-")
    p.add_argument("--prefix", required=True)
    p.add_argument("--consumer", required=True)
    p.add_argument("--claim-idle", type=float, default=1.0)
    if add is not None:
        add(p)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args


def stop_on_sigterm() -> threading.Event:
    """An event set by SIGTERM: the graceful stop ``IntakeProcess.stop`` asks for."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


@dataclass
class StoreParts:
    """The demo deployment's grids and alerts config over the test's SQL store and Redis."""

    dep: Any
    grids: Any
    store: Any
    client: Any
    keys: Any
    stop: threading.Event


def store_parts(args: argparse.Namespace, *, dispatch_at_once: bool = False) -> StoreParts:
    """Open the store and Redis named on the command line, and start the outbox relay: every process that holds
    the store runs it (as ``gateway.runtime`` does), so it sends what a killed predecessor owed.
    ``dispatch_at_once``: no operator confirmation (``confirm_sources = []``), so duty queues are part of the test."""
    import redis

    from alerts.grids import load_grid_file
    from alerts.outbox import Outbox
    from alerts.store import open_store
    from alerts.streams import StreamKeys
    from gateway.config import load_deployment

    dep = load_deployment()
    if dispatch_at_once:
        dep.alerts.confirm_sources = []
    grids = load_grid_file(dep.resolve(dep.grids.file), version=dep.grids.version)
    store = open_store(args.sql)
    client = redis.Redis.from_url(args.redis, socket_timeout=5, socket_connect_timeout=2)
    keys = StreamKeys(args.prefix)
    stop = stop_on_sigterm()
    threading.Thread(target=Outbox(store, client, keys).run_forever, args=(stop,), daemon=True).start()
    return StoreParts(dep, grids, store, client, keys, stop)
