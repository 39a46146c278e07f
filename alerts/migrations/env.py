"""Alembic environment: runs on the connection ``alerts.store`` hands over (never reads alembic.ini)."""
from __future__ import annotations

from alembic import context
from sqlalchemy import text

import alerts.channels.models  # noqa: F401  (its tables share the metadata, so autogenerate sees them)
import alerts.config_store  # noqa: F401  (config_items, likewise)
from alerts.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("alerts migrations run through alerts.store.migrate(), which passes a connection")
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two processes opening the same fresh database must not both create the tables.
            connection.execute(text("SELECT pg_advisory_xact_lock(7415230016)"))
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; open the store instead")
run_migrations_online()
