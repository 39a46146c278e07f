"""Working time for SLA deadlines: official holidays, make-up workdays (调休) and working hours.

A time limit of "4 work_hours" or "1 work_days" counts only working periods of working days
(09:00–12:00 and 13:30–18:00 Asia/Shanghai by default). Whether a date is a working day comes from
``chinesecalendar`` (the State Council's yearly notice: National Day, Spring Festival, and the
weekend days that become workdays to make up for them). For a year that package does not know
yet, Monday–Friday is assumed and a warning is logged once, so deadlines never fail outright.
One work day is the length of one working day's periods, so "1 work_days" from Monday 10:00 ends
Tuesday 10:00. ``hours`` and ``minutes`` are plain wall-clock time.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

import chinese_calendar

from alerts.config import TimeLimit

log = logging.getLogger(__name__)

DEFAULT_PERIODS = ("09:00-12:00", "13:30-18:00")
_MAX_DAYS = 3660


def _parse_clock(text: str) -> time:
    hh, mm = text.strip().split(":")
    h, m = int(hh), int(mm)
    if h == 24 and m == 0:
        return time.max
    return time(h, m)


def parse_periods(periods: Iterable[str]) -> list[tuple[time, time]]:
    """``["09:00-12:00", "13:30-18:00"]`` → sorted (start, end) pairs; raises ValueError naming the bad one."""
    out = []
    for p in periods:
        try:
            a, b = p.split("-")
            start, end = _parse_clock(a), _parse_clock(b)
        except (ValueError, AttributeError):
            raise ValueError(f"working period {p!r} is not HH:MM-HH:MM") from None
        if end <= start:
            raise ValueError(f"working period {p!r} ends before it starts")
        out.append((start, end))
    out.sort()
    for (_, e1), (s2, _) in zip(out, out[1:]):
        if s2 < e1:
            raise ValueError(f"working periods overlap: {periods!r}")
    if not out:
        raise ValueError("at least one working period is needed")
    return out


class WorkCalendar:
    """Adds time limits to instants, counting working time where the limit says so."""

    def __init__(self, periods: Iterable[str] = DEFAULT_PERIODS, tz: str = "Asia/Shanghai",
                 is_workday: Callable[[date], bool] | None = None):
        self.tz = ZoneInfo(tz)
        self.periods = parse_periods(periods)
        self._is_workday = is_workday
        self._warned: set[int] = set()
        self.day_seconds = sum(self._span(date(2000, 1, 3), s, e) for s, e in self.periods)

    def is_workday(self, day: date) -> bool:
        if self._is_workday is not None:
            return self._is_workday(day)
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            if day.year not in self._warned:
                self._warned.add(day.year)
                log.warning("chinesecalendar has no holiday data for %s; assuming Monday-Friday", day.year)
            return day.weekday() < 5

    def _at(self, day: date, clock: time) -> datetime:
        if clock == time.max:
            return datetime.combine(day + timedelta(days=1), time(0), self.tz)
        return datetime.combine(day, clock, self.tz)

    def _span(self, day: date, start: time, end: time) -> float:
        return (self._at(day, end) - self._at(day, start)).total_seconds()

    def _windows(self, start: datetime) -> Iterable[tuple[datetime, datetime]]:
        """Working windows (local) from ``start`` on, the first one clipped to begin at ``start``."""
        local = start.astimezone(self.tz)
        day = local.date()
        for _ in range(_MAX_DAYS):
            if self.is_workday(day):
                for s, e in self.periods:
                    ws, we = self._at(day, s), self._at(day, e)
                    if we <= local:
                        continue
                    yield max(ws, local), we
            day += timedelta(days=1)
        raise ValueError(f"no working time within {_MAX_DAYS} days of {start.isoformat()}")

    def add_work_seconds(self, start: datetime, seconds: float) -> datetime:
        """The instant ``seconds`` of working time after ``start`` (UTC)."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        remaining = float(seconds)
        if remaining <= 0:
            return start.astimezone(timezone.utc)
        for ws, we in self._windows(start):
            span = (we - ws).total_seconds()
            if remaining <= span:
                return (ws + timedelta(seconds=remaining)).astimezone(timezone.utc)
            remaining -= span
        raise AssertionError("unreachable")

    def work_seconds_between(self, a: datetime, b: datetime) -> float:
        """Working seconds in [a, b); 0 when b <= a."""
        if b <= a:
            return 0.0
        total = 0.0
        for ws, we in self._windows(a):
            if ws >= b:
                break
            total += (min(we, b) - ws).total_seconds()
        return total

    def add(self, start: datetime, limit: TimeLimit) -> datetime:
        """The deadline ``limit`` after ``start``."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if limit.unit == "minutes":
            return (start + timedelta(minutes=limit.amount)).astimezone(timezone.utc)
        if limit.unit == "hours":
            return (start + timedelta(hours=limit.amount)).astimezone(timezone.utc)
        if limit.unit == "work_hours":
            return self.add_work_seconds(start, limit.amount * 3600)
        return self.add_work_seconds(start, limit.amount * self.day_seconds)

    def fraction_point(self, start: datetime, deadline: datetime, limit: TimeLimit, fraction: float) -> datetime:
        """The instant when ``fraction`` of the time towards ``deadline`` has passed, in the limit's own units."""
        if limit.unit in ("minutes", "hours"):
            return start + (deadline - start) * fraction
        return self.add_work_seconds(start, self.work_seconds_between(start, deadline) * fraction)
