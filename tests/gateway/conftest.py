"""Fixtures: a real runtime per test (unique Redis prefix, SQLite in tmp), the app, a client, logins."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from gw_support import PASSWORDS, REDIS_URL, bearer, build_test_runtime, drop_keys, login, make_deployment


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Any]:
    dep = make_deployment(tmp_path)
    rt = build_test_runtime(dep)
    try:
        yield rt
    finally:
        prefix = dep.services.stream_prefix
        client = redis.Redis.from_url(REDIS_URL)
        rt.stop()
        drop_keys(client, prefix)
        client.close()


@pytest.fixture
def app(runtime: Any):
    from gateway.app import create_app

    return create_app(runtime)


@pytest.fixture
def client(app) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture
def auth_as(client: Any):
    cache: dict[str, dict] = {}

    def get(username: str) -> dict:
        if username not in cache:
            cache[username] = bearer(login(client, username, PASSWORDS[username]))
        return cache[username]

    return get
