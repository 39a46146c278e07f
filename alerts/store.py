"""The case store: one SQLAlchemy engine, migrated to the latest schema when it is opened.

``open_store("sqlite:///run/gridwatch.db")`` is the embedded default; ``open_store("postgresql+psycopg://…")``
is production. Opening runs the Alembic scripts in ``alerts/migrations`` programmatically, so a
fresh machine, an upgraded one and a test all get the same schema without a separate step.

SQLite allows one writer: write transactions begin with ``BEGIN IMMEDIATE`` (taken at the start,
not upgraded half-way, which is what produces "database is locked" under concurrency) and wait up
to ``busy_timeout`` for the lock; reads stay deferred and, with WAL, never block writers.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from alerts.grids import GridIndex
from alerts.models import CaseCounter, GridRecord

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message says which database and why (never a password)."""


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


class Store:
    """The SQL system of record. Use ``write()`` for transactions that change rows, ``read()`` for queries."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(bind=engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any error."""
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    # -- grids ---------------------------------------------------------------------------------
    def sync_grids(self, index: GridIndex) -> str | None:
        """Record the grid version the router uses, once; tickets reference (code, version)."""
        grids = index.all()
        if not grids:
            return None
        version = grids[0].version
        with self.write() as s:
            if s.scalar(select(func.count()).select_from(GridRecord).where(GridRecord.version == version)):
                return version
            now = datetime.now(timezone.utc)
            for g in grids:
                feature = g.to_feature()
                s.add(GridRecord(code=g.code, version=version, name=g.name, level=g.level, parent=g.parent,
                                 geometry=feature["geometry"], loaded_at=now))
        return version

    def grid_versions(self) -> list[str]:
        with self.read() as s:
            return list(s.scalars(select(GridRecord.version).distinct()))

    # -- case numbers --------------------------------------------------------------------------
    @staticmethod
    def case_day(at: datetime, tz: str = "Asia/Shanghai") -> str:
        """The counter's day (``yyyymmdd``) of an instant: case numbers restart each local day."""
        return at.astimezone(ZoneInfo(tz)).strftime("%Y%m%d")

    def next_case_number(self, session: Session, prefix: str, at: datetime, tz: str = "Asia/Shanghai") -> str:
        """``{prefix}{yyyymmdd}-{seq:06d}``, the day in local time; the counter row is locked by the upsert."""
        return self.next_case_numbers(session, prefix, at, tz, 1)[0]

    def next_case_numbers(self, session: Session, prefix: str, at: datetime, tz: str = "Asia/Shanghai",
                          count: int = 1) -> list[str]:
        """Reserve ``count`` consecutive case numbers of ``at``'s local day in ONE upsert … RETURNING.

        Why: a batch of presses opening many cases paid one statement per case (a third of filing's CPU).
        The upsert locks the counter row (SQLite: the write transaction; PostgreSQL: the row lock) until the
        transaction ends, so the range is this transaction's alone and a rollback gives it back."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        day = self.case_day(at, tz)
        ins = (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(CaseCounter)
        stmt = ins.values(day=day, last=count).on_conflict_do_update(
            index_elements=[CaseCounter.day], set_={"last": CaseCounter.last + count}).returning(CaseCounter.last)
        last = session.execute(stmt).scalar_one()
        return [f"{prefix}{day}-{seq:06d}" for seq in range(last - count + 1, last + 1)]

    def release_case_numbers(self, session: Session, day: str, count: int) -> None:
        """Give back the last ``count`` numbers of ``day`` that this transaction reserved and did not use.

        Only valid in the transaction that reserved them (it still holds the counter's lock, so nobody took
        a number after them): the day's numbering then stays gap-free."""
        if count > 0:
            session.execute(update(CaseCounter).where(CaseCounter.day == day).values(last=CaseCounter.last - count))

def _sqlite_engine(url: str, **kwargs) -> Engine:
    u = make_url(url)
    if u.database and u.database != ":memory:":
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - exercised by every sqlite test
        dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def open_store(url: str, schema: str | None = None, migrate: bool = True, echo: bool = False) -> Store:
    """Open (and migrate) the store at ``url``.

    ``schema`` (PostgreSQL only) puts every table in that schema, created if missing — how tests
    share one database without seeing each other's rows.
    """
    try:
        dialect = make_url(url).get_backend_name()
    except Exception as exc:
        raise StoreError(f"store URL {_safe_url(url)!r} is not a database URL: {exc}") from None
    try:
        if dialect == "sqlite":
            engine = _sqlite_engine(url, echo=echo)
        elif dialect == "postgresql":
            engine = create_engine(url, echo=echo, pool_pre_ping=True)
            if schema:
                with engine.begin() as conn:
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))

                @event.listens_for(engine, "connect")
                def _search_path(dbapi_conn, _record) -> None:
                    with dbapi_conn.cursor() as cur:
                        cur.execute(f'SET search_path TO "{schema}"')
                    dbapi_conn.commit()
                engine.dispose()
        else:
            raise StoreError(f"store URL {_safe_url(url)!r}: only sqlite and postgresql are supported, not {dialect}")
        store = Store(engine)
        if migrate:
            store.migrate()
        return store
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"cannot open store {_safe_url(url)}: {type(exc).__name__}: {exc}") from exc
