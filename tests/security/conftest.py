"""Security tests run against the gateway engineer's real test runtime (real Redis, SQLite in tmp, real case service).

The fixtures ``runtime``, ``app``, ``client`` and ``auth_as`` are those of tests/gateway (imported, not copied),
so the security suite and the gateway suite exercise the same wiring.
"""
from __future__ import annotations

import sys
from pathlib import Path

GATEWAY_TESTS = Path(__file__).resolve().parents[1] / "gateway"
if str(GATEWAY_TESTS) not in sys.path:
    sys.path.insert(0, str(GATEWAY_TESTS))

from tests.gateway.conftest import app, auth_as, client, runtime  # noqa: E402,F401
