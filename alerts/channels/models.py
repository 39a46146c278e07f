"""Tables of the human channels, on the case store's metadata: who reported what, what they were told, how they rated it.

They live on ``alerts.models.Base`` (so they can reference tickets) and are created by the store's
migration 0002: the reporter's contact stays here, never in the ticket or its occurrences, which every
worker can read.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from alerts.models import Base


class Report(Base):
    """One report by a person through one channel; ``ticket_id`` follows the case through merges."""

    __tablename__ = "channel_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16), index=True, doc="resident | patrol | hotline")
    line: Mapped[str | None] = mapped_column(String(16), doc="hotline: 110 / 119 / 120 / 12345 / front_desk")
    anomaly_id: Mapped[str] = mapped_column(String(64), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    original_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    case_number: Mapped[str | None] = mapped_column(String(32), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    wechat_openid: Mapped[str | None] = mapped_column(String(128))
    staff: Mapped[str | None] = mapped_column(String(100), doc="the worker or dispatcher who filed it")
    text: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(300))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    crs_in: Mapped[str] = mapped_column(String(8), default="WGS84")
    category: Mapped[str] = mapped_column(String(8))
    urgency: Mapped[str] = mapped_column(String(16))
    suggested_category: Mapped[str | None] = mapped_column(String(8))
    suggested_urgency: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[float | None] = mapped_column(Float)
    handover: Mapped[str | None] = mapped_column(String(8))
    photos: Mapped[list[Any]] = mapped_column(default=list)
    grid_code: Mapped[str | None] = mapped_column(String(15))
    created_at: Mapped[datetime] = mapped_column(index=True)
    error: Mapped[str | None] = mapped_column(Text, doc="why filing failed, when it did (the report is kept)")


class Notification(Base):
    """A message sent (or tried) to a reporter about one stage of their case; unique per stage and medium."""

    __tablename__ = "channel_notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("channel_reports.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(24))
    medium: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(default=True)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("report_id", "stage", "medium", name="uq_channel_notification_stage"),)


class Survey(Base):
    """A 回访 satisfaction survey of one reporter about one closed case."""

    __tablename__ = "channel_surveys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("channel_reports.id"), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    grid_code: Mapped[str] = mapped_column(String(15), index=True)
    unit_code: Mapped[str | None] = mapped_column(String(15))
    department: Mapped[str | None] = mapped_column(String(100))
    category: Mapped[str | None] = mapped_column(String(8))
    sent_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None] = mapped_column(index=True)
    score: Mapped[int | None] = mapped_column(Integer)
    resolved: Mapped[bool | None] = mapped_column(doc="the reporter says the problem is solved")
    comment: Mapped[str] = mapped_column(Text, default="")


class Correction(Base):
    """A dispatcher's override of the classifier's suggestion: what the next retrain learns from."""

    __tablename__ = "channel_corrections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("channel_reports.id"))
    text: Mapped[str] = mapped_column(Text)
    suggested_category: Mapped[str | None] = mapped_column(String(8))
    category: Mapped[str] = mapped_column(String(8))
    suggested_urgency: Mapped[str | None] = mapped_column(String(16))
    urgency: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]

    __table_args__ = (Index("ix_channel_corrections_at", "at"),)

