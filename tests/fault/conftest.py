"""Fixtures of the fault tests: a private Redis (AOF, fsync every second, as ``gridwatch run`` runs it) per test,
a unique key prefix."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest

from tests.fault.support import OwnRedis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    return f"gwfault-{uuid.uuid4().hex[:8]}"
