"""The alliance's calendar: dates are those of China Standard Time, which has no daylight saving."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta, timezone

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


def today() -> date:
    return datetime.now(CHINA_STANDARD_TIME).date()


def now() -> datetime:
    return datetime.now(CHINA_STANDARD_TIME)


def add_months(day: date, months: int) -> date:
    """The same day `months` later (or earlier), clamped to the month's last day."""
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))
