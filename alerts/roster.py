"""Who is on duty now (值班表), per grid of any level, from the deployment's ``alerts.roster``.

The SLA loop asks it whom to tell when a ticket is reminded or escalated to a unit. A unit with
nobody on duty hands the question to its parent, so a notification always reaches someone.
Shifts may cross midnight (``22:00``–``08:00``); ``days`` accepts ``mon-fri``, ``sat,sun``, ``mon,wed-fri``.
"""
from __future__ import annotations

from datetime import datetime, time
from typing import Iterable
from zoneinfo import ZoneInfo

from alerts.config import DutyShift
from alerts.grids import GridIndex

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_days(text: str) -> frozenset[int]:
    """``mon-fri`` / ``sat,sun`` / ``mon,wed-fri`` → weekday numbers (Monday 0); wrap-around ``fri-mon`` allowed."""
    out: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            if a not in DAYS or b not in DAYS:
                raise ValueError(f"days {text!r}: unknown day in {part!r}")
            i, j = DAYS.index(a), DAYS.index(b)
            out.update(range(i, j + 1) if i <= j else list(range(i, 7)) + list(range(0, j + 1)))
        elif part in DAYS:
            out.add(DAYS.index(part))
        else:
            raise ValueError(f"days {text!r}: unknown day {part!r}")
    return frozenset(out)


def _clock(text: str) -> time:
    h, m = (int(x) for x in text.split(":"))
    return time.max if (h, m) == (24, 0) else time(h, m)


class Roster:
    """Duty shifts indexed by grid code."""

    def __init__(self, shifts: Iterable[DutyShift], tz: str = "Asia/Shanghai", grids: GridIndex | None = None):
        self.tz = ZoneInfo(tz)
        self.grids = grids
        self._shifts: dict[str, list[tuple[DutyShift, frozenset[int], time, time]]] = {}
        for sh in shifts:
            self._shifts.setdefault(sh.grid, []).append((sh, parse_days(sh.days), _clock(sh.start), _clock(sh.end)))

    @staticmethod
    def _covers(days: frozenset[int], start: time, end: time, local: datetime) -> bool:
        t, wd = local.time(), local.weekday()
        if start <= end:
            return wd in days and start <= t < end if end != time.max else wd in days and t >= start
        # overnight shift: the part after midnight belongs to the previous day's shift
        return (wd in days and t >= start) or (((wd - 1) % 7) in days and t < end)

    def on_duty(self, unit_code: str, at: datetime) -> list[DutyShift]:
        """Shifts of exactly this unit covering ``at``."""
        local = at.astimezone(self.tz)
        return [sh for sh, days, s, e in self._shifts.get(unit_code, []) if self._covers(days, s, e, local)]

    def responsible(self, unit_code: str, at: datetime) -> list[DutyShift]:
        """Whoever is on duty for the unit, else for its nearest ancestor that has someone on duty."""
        codes = [g.code for g in self.grids.ancestors(unit_code)] if self.grids else []
        if not codes:
            codes = [unit_code[:n] for n in (15, 12, 9, 6) if len(unit_code) >= n]
        for code in codes:
            found = self.on_duty(code, at)
            if found:
                return found
        return []

    def users(self, unit_code: str, at: datetime) -> list[str]:
        return sorted({sh.user for sh in self.responsible(unit_code, at)})
