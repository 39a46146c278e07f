"""The small value types every channel shares: what a form sends, who files it, and where a report is.

Answers are frozen dataclasses, not dicts: the gateway (``gateway/api/reports.py``) turns them into JSON,
so the channels never decide field spellings for a web client and a typo in a field name is a type error.
"""
from __future__ import annotations

from dataclasses import dataclass

CHANNEL_KINDS = {"resident": "resident_report", "patrol": "patrol_report", "hotline": "hotline"}
CHANNEL_LABELS = {"resident": "居民上报", "patrol": "网格员巡查", "hotline": "热线/窗口"}


@dataclass
class ReportInput:
    """What a form sends; which fields are required depends on the channel (see each channel's ``file``)."""

    text: str
    lon: float | None = None
    lat: float | None = None
    crs: str = "WGS84"
    address: str | None = None
    category: str | None = None
    urgency: str | None = None
    phone: str | None = None
    name: str | None = None
    line: str | None = None
    wechat_openid: str | None = None


@dataclass(frozen=True)
class Staff:
    """The worker or dispatcher filing a report (from the gateway's principal)."""

    username: str
    role: str
    grids: tuple[str, ...] = ()
    scope: frozenset[str] | None = None   # every grid code they may see; None = all


@dataclass
class Photo:
    name: str
    data: bytes


@dataclass(frozen=True)
class Location:
    """A stored report point; always WGS-84 (whatever the form sent, it was converted on filing)."""

    lon: float
    lat: float
    crs: str = "WGS84"
