"""Runtime configuration changes in the SQL store: cameras, devices and device profiles changed through the API.

Why SQL: these are the deployment's system of record once an operator edits them at run time — a restart of
one role or of the whole ``gridwatch run``, or a Redis flush, must not undo them. The deployment file is the
seed; a row here overrides the file's item of that id (``doc`` NULL: removed through the API, even if the file
still lists it). The Redis stream of ``ingest.changes`` only wakes the running roles; they read the row.

``SqlConfigStore`` is the ``ingest.changes.ConfigStore`` the composer injects (ingest and detectors never
import alerts).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, String, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from alerts.models import Base
from alerts.store import Store


class ConfigItem(Base):
    """One item changed through the API: ``kind`` camera / device / profile, its id, its JSON (NULL = removed)."""

    __tablename__ = "config_items"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    doc: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime]


class SqlConfigStore:
    """``record`` / ``changes`` / ``get`` over ``config_items`` (SQLite or PostgreSQL)."""

    def __init__(self, store: Store):
        self.store = store

    def record(self, kind: str, item_id: str, doc: dict[str, Any] | None) -> None:
        """Upsert the item's row in its own transaction: committed before any role is told of the change."""
        ins = (postgresql.insert if self.store.dialect == "postgresql" else sqlite.insert)(ConfigItem)
        now = datetime.now(timezone.utc)
        stmt = ins.values(kind=kind, item_id=item_id, doc=doc, updated_at=now).on_conflict_do_update(
            index_elements=[ConfigItem.kind, ConfigItem.item_id], set_={"doc": ins.excluded.doc, "updated_at": now})
        with self.store.write() as s:
            s.execute(stmt)

    def changes(self, kind: str) -> dict[str, dict[str, Any] | None]:
        """id → JSON, or None for an item removed through the API (by id)."""
        with self.store.read() as s:
            rows = s.execute(select(ConfigItem.item_id, ConfigItem.doc).where(ConfigItem.kind == kind)
                             .order_by(ConfigItem.item_id)).all()
        return {item_id: doc for item_id, doc in rows}

    def get(self, kind: str, item_id: str) -> dict[str, Any] | None:
        with self.store.read() as s:
            return s.scalar(select(ConfigItem.doc).where(ConfigItem.kind == kind, ConfigItem.item_id == item_id))
