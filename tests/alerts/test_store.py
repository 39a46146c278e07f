"""The store on SQLite and PostgreSQL: migrations, grid versions, UTC times, concurrent case numbers."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect

from alerts.grids import load_grid_file
from alerts.models import Ticket
from alerts.store import StoreError, open_store
from tests.alerts.conftest import DEMO
from tests.alerts.helpers import anomaly

pytestmark = pytest.mark.timeout(60)


def test_migrated_schema_and_reopen(store):
    tables = set(inspect(store.engine).get_table_names())
    assert {"grids", "tickets", "occurrences", "history", "ratings", "suppressions", "case_counters", "alembic_version"} <= tables
    store.migrate()   # idempotent


def test_migrations_build_the_schema_the_models_declare(store):
    """A model changed without its Alembic script (or a refactor of the models that changed a column) shows here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from alerts.models import Base

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_grid_versions(store, grids):
    assert store.sync_grids(grids) == "2026.1"
    assert store.sync_grids(grids) == "2026.1"
    v2 = load_grid_file(DEMO.parent / "grids" / "qingshui.geojson", version="2027.1")
    store.sync_grids(v2)
    assert sorted(store.grid_versions()) == ["2026.1", "2027.1"]


def test_times_come_back_aware_utc(intake, store):
    ref = intake.file(anomaly())
    with store.read() as s:
        t = s.get(Ticket, ref.ticket_id)
        assert t.created_at.tzinfo is not None and t.created_at.utcoffset() == timedelta(0)
        assert t.created_at == datetime(2026, 11, 24, 2, 0, tzinfo=timezone.utc)


def test_concurrent_case_numbers_are_unique(store):
    numbers: list[str] = []
    lock = threading.Lock()
    at = datetime(2026, 11, 24, 2, tzinfo=timezone.utc)

    def take(n: int) -> None:
        for _ in range(n):
            with store.write() as s:
                num = store.next_case_number(s, "QS", at)
            with lock:
                numbers.append(num)

    threads = [threading.Thread(target=take, args=(10,)) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert len(numbers) == 40 and len(set(numbers)) == 40
    assert max(numbers) == "QS20261124-000040"


def test_bad_urls_are_clear(tmp_path):
    with pytest.raises(StoreError, match="only sqlite and postgresql"):
        open_store("mysql://u:pw@h/db")
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("::::")
    with pytest.raises(StoreError) as err:
        open_store("postgresql+psycopg://postgres:topsecret@127.0.0.1:1/none")
    assert "topsecret" not in str(err.value)


def test_naive_datetimes_are_refused(store):
    from alerts.models import Suppression

    with pytest.raises(Exception, match="naive"):
        with store.write() as s:
            s.add(Suppression(source_id="x", zone=None, kind="k", until=datetime(2026, 1, 1), reason="",
                              created_by="t", created_at=datetime.now(timezone.utc), hits=0))
