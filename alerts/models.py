"""The SQL schema of the case system: grids (versioned), tickets, occurrences, history, ratings, suppressions.

The store is the system of record: a Redis stream entry is acknowledged only once the row it
produced is committed here. Times are stored in UTC (``UTCDateTime``) whatever the database, so
SQLite (embedded default) and PostgreSQL (production) give back the same aware datetimes.
The schema changes only through the Alembic scripts in ``alerts/migrations``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; naive values are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: GridWatch stores aware UTC times only")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class GridRecord(Base):
    """One grid of one published version; tickets keep the version they were routed with."""

    __tablename__ = "grids"
    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    version: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))
    parent: Mapped[str | None] = mapped_column(String(15))
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    loaded_at: Mapped[datetime]


class CaseCounter(Base):
    """Per-day sequence behind human-readable case numbers (QS20261123-000123)."""

    __tablename__ = "case_counters"
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class Ticket(Base):
    """A case (案卷): one or more occurrences of the same thing, worked to closure by one responsible unit."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    category: Mapped[str] = mapped_column(String(8), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    # Routing: the grid the location fell in (with its version), and the unit now responsible for it.
    grid_code: Mapped[str] = mapped_column(String(15), index=True)
    grid_version: Mapped[str] = mapped_column(String(32))
    routed_by: Mapped[str] = mapped_column(String(16), default="base_grid", doc="base_grid | fallback | outside")
    unit_code: Mapped[str] = mapped_column(String(15), index=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, doc="index into escalation_chain")
    department: Mapped[str | None] = mapped_column(String(100))
    police: Mapped[bool] = mapped_column(Boolean, default=False)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    crs: Mapped[str] = mapped_column(String(8), default="WGS84")
    address: Mapped[str | None] = mapped_column(String(300))
    source_kind: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(100), index=True)
    zone: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime] = mapped_column(index=True)
    occurrence_count: Mapped[int] = mapped_column(Integer, default=0)
    # Time limits and what happened to them.
    sign_deadline: Mapped[datetime | None]
    handle_deadline: Mapped[datetime | None]
    remind_at: Mapped[datetime | None] = mapped_column(index=True)
    escalate_at: Mapped[datetime | None] = mapped_column(index=True)
    signed_at: Mapped[datetime | None]
    feedback_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    cleared_at: Mapped[datetime | None]
    sign_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    handle_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_requested: Mapped[datetime | None] = mapped_column(doc="the new handle deadline asked for, while a 延期 request is pending")
    supervised: Mapped[bool] = mapped_column(Boolean, default=False)
    assignee: Mapped[str | None] = mapped_column(String(100))
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    status_before_merge: Mapped[str | None] = mapped_column(String(16))
    closed_level: Mapped[str | None] = mapped_column(String(16))

    occurrences: Mapped[list["Occurrence"]] = relationship(back_populates="ticket", order_by="Occurrence.id",
                                                           foreign_keys="Occurrence.ticket_id")
    history: Mapped[list["HistoryEntry"]] = relationship(back_populates="ticket", order_by="HistoryEntry.id")
    ratings: Mapped[list["Rating"]] = relationship(back_populates="ticket", order_by="Rating.id")

    __table_args__ = (Index("ix_tickets_merge_lookup", "category", "source_id", "kind", "status"),)


class AnomalyRecord:
    """The columns of a row that records one anomaly as it came (an occurrence under a ticket, an activity row).

    One definition, so both tables keep an anomaly's id, source, place, score and evidence alike and a change to
    one of them (a longer source id) is made once, then migrated. ``anomaly_id`` is unique: a re-delivered
    anomaly is recorded once. Migrations ``0001`` (occurrences) and ``0003`` (activity) create these columns."""

    anomaly_id: Mapped[str] = mapped_column(String(64), unique=True)
    source_kind: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(100))
    zone: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(64))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float, default=1.0)
    title: Mapped[str | None] = mapped_column(String(300))
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime]


class Occurrence(AnomalyRecord, Base):
    """One anomaly filed under a ticket; ``anomaly_id`` is unique, which makes intake idempotent."""

    __tablename__ = "occurrences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    original_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"),
                                                          doc="the ticket it belonged to before a manual merge moved it")
    state: Mapped[str] = mapped_column(String(16), default="firing")
    observed_at: Mapped[datetime]
    occurred_at: Mapped[datetime]
    merged: Mapped[bool] = mapped_column(Boolean, default=False, doc="intake added it to a ticket that already existed")

    ticket: Mapped[Ticket] = relationship(back_populates="occurrences", foreign_keys=[ticket_id])


class HistoryEntry(Base):
    """Append-only record of everything done to a ticket: who, when, from which state to which, why."""

    __tablename__ = "history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    ticket: Mapped[Ticket] = relationship(back_populates="history")


class Rating(Base):
    """A satisfaction rating (评价) of how a case was handled, 1–5; 4 and 5 count as satisfied."""

    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]

    ticket: Mapped[Ticket] = relationship(back_populates="ratings")


class Suppression(Base):
    """A false alarm teaches silence: the same camera+zone+kind files no ticket until ``until``."""

    __tablename__ = "suppressions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(String(100))
    zone: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(64))
    until: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    hits: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_suppressions_match", "source_id", "kind"),)


class Activity(AnomalyRecord, Base):
    """An anomaly of a rule whose tier is ``activity`` (motion alone, by default): recorded for the camera's
    review timeline with its evidence and cause, never a ticket. ``anomaly_id`` is unique, so a re-delivered
    anomaly is recorded once."""

    __tablename__ = "activity"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str | None] = mapped_column(String(8))
    grid_code: Mapped[str | None] = mapped_column(String(15), index=True)
    occurred_at: Mapped[datetime] = mapped_column(index=True)

    __table_args__ = (Index("ix_activity_camera_time", "source_id", "occurred_at"),)


class OutboxEntry(Base):
    """What a committed transaction still owes Redis (duty entries, events, acknowledgements), written in the
    same transaction as the change, so a process killed between its commit and its publish loses nothing: the
    row is published by the process itself right after the commit, else by any process's relay (``alerts.outbox``).
    ``key`` names the publication in Redis (a marker set with it), so a row sent twice lands once."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    payload: Mapped[str] = mapped_column(Text)
