"""Fixtures of the case-system tests: the demo grids and categories, a store on SQLite and PostgreSQL,
a fake clock, and intake/service wired to a real Redis under a unique key prefix."""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from alerts.config import AlertsConfig
from alerts.grids import GridIndex, load_grid_file
from alerts.streams import StreamKeys

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.yaml"
PG_URL = os.environ.get("GRIDWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def demo() -> dict:
    return yaml.safe_load(DEMO.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def grids(demo) -> GridIndex:
    return load_grid_file(DEMO.parent / demo["grids"]["file"], version=str(demo["grids"]["version"]))


@pytest.fixture
def alerts_cfg(demo) -> AlertsConfig:
    data = dict(demo["alerts"])
    data["case_prefix"] = "QS"
    data["confirm_sources"] = []  # these tests follow tickets from dispatch on; the confirm step has its own test
    return AlertsConfig.model_validate(data)


class FakeClock:
    """A settable UTC clock: ``clock()`` returns now; ``advance(minutes=…)`` moves it."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> datetime:
        self.now = self.now + timedelta(**kw)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    # Tuesday 2026-11-24 10:00 Asia/Shanghai: inside working hours of an ordinary working day.
    return FakeClock(datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    from alerts.store import open_store

    if request.param == "sqlite":
        st = open_store(f"sqlite:///{tmp_path / 'cases.db'}")
        yield st
        st.close()
        return
    schema = f"gwtest_{uuid.uuid4().hex[:10]}"
    try:
        st = open_store(PG_URL, schema=schema)
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    yield st
    from sqlalchemy import text

    st.close()
    from sqlalchemy import create_engine

    eng = create_engine(PG_URL)
    with eng.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


@pytest.fixture
def sqlite_store(tmp_path):
    from alerts.store import open_store

    st = open_store(f"sqlite:///{tmp_path / 'cases.db'}")
    yield st
    st.close()


@pytest.fixture
def keys(stream_prefix) -> StreamKeys:
    return StreamKeys(prefix=stream_prefix)


@pytest.fixture
def intake(store, grids, alerts_cfg, redis_client, keys, clock):
    from alerts.intake import Intake

    store.sync_grids(grids)
    return Intake(store, grids, alerts_cfg, redis_client, keys, consumer="intake-test", clock=clock)


@pytest.fixture
def service(store, grids, alerts_cfg, redis_client, keys, clock):
    from alerts.service import CaseService

    return CaseService(store, grids, alerts_cfg, redis_client, keys, clock=clock)
