"""Deadline arithmetic over working hours, official holidays and make-up workdays (chinesecalendar data)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.calendar import WorkCalendar, parse_periods
from alerts.config import TimeLimit

pytestmark = pytest.mark.timeout(30)
SH = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar()


def test_official_2026_days(cal):
    # 2026 National Day: 10-01..10-07 off, Saturday 10-10 a make-up workday; Spring Festival 02-15..02-23 off,
    # Saturdays 02-14 and 02-28 make-up workdays (国务院办公厅 2026 holiday notice).
    assert not cal.is_workday(local(2026, 10, 5).date())
    assert cal.is_workday(local(2026, 10, 10).date())
    assert cal.is_workday(local(2026, 2, 14).date()) and cal.is_workday(local(2026, 2, 28).date())
    assert not cal.is_workday(local(2026, 2, 16).date())


def test_work_hours_across_national_day(cal):
    start = local(2026, 9, 30, 17, 0)              # last working hour before the holiday
    due = cal.add(start, TimeLimit(amount=2, unit="work_hours"))
    assert due.astimezone(SH) == local(2026, 10, 8, 10, 0)


def test_work_days_into_a_make_up_saturday(cal):
    start = local(2026, 10, 9, 15, 0)              # Friday 10-09; Saturday 10-10 is a working day
    due = cal.add(start, TimeLimit(amount=1, unit="work_days"))
    assert due.astimezone(SH) == local(2026, 10, 10, 15, 0)


def test_spring_festival(cal):
    start = local(2026, 2, 14, 17, 30)             # make-up Saturday before the festival
    due = cal.add(start, TimeLimit(amount=1, unit="work_hours"))
    assert due.astimezone(SH) == local(2026, 2, 24, 9, 30)   # festival 02-15..02-23 is skipped


def test_lunch_break_and_evening(cal):
    assert cal.add(local(2026, 11, 24, 11, 30), TimeLimit(amount=1, unit="work_hours")).astimezone(SH) == local(2026, 11, 24, 14, 0)
    assert cal.add(local(2026, 11, 24, 20, 0), TimeLimit(amount=30, unit="minutes")).astimezone(SH) == local(2026, 11, 24, 20, 30)
    # reported on a Saturday evening: the clock starts on Monday morning
    assert cal.add(local(2026, 11, 28, 20, 0), TimeLimit(amount=2, unit="work_hours")).astimezone(SH) == local(2026, 11, 30, 11, 0)


def test_wall_clock_units_ignore_holidays(cal):
    start = local(2026, 10, 1, 10, 0)
    assert cal.add(start, TimeLimit(amount=3, unit="hours")).astimezone(SH) == local(2026, 10, 1, 13, 0)


def test_work_seconds_between(cal):
    assert cal.work_seconds_between(local(2026, 9, 30, 17, 0), local(2026, 10, 8, 10, 0)) == 2 * 3600


def test_configurable_periods_and_errors():
    cal = WorkCalendar(["08:30-17:30"])
    assert cal.add(local(2026, 11, 24, 17, 0), TimeLimit(amount=1, unit="work_hours")).astimezone(SH) == local(2026, 11, 25, 9, 0)
    with pytest.raises(ValueError, match="overlap"):
        parse_periods(["09:00-12:00", "11:00-13:00"])
    with pytest.raises(ValueError, match="HH:MM"):
        parse_periods(["nine-five"])
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add(datetime(2026, 1, 5, 9), TimeLimit(amount=1, unit="hours"))


def test_year_without_data_falls_back_to_weekdays():
    cal = WorkCalendar()
    assert cal.is_workday(local(2099, 6, 1).date())        # a Monday
    assert not cal.is_workday(local(2099, 6, 6).date())    # a Saturday
