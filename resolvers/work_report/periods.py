"""Half years and calendar years in China Standard Time, as windows over the members' records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from resolvers import clock
from resolvers.errors import bad_input

FIRST_YEAR = 2000


@dataclass(frozen=True, slots=True)
class Period:
    """Days `first` up to `end` (exclusive)."""

    first: date
    end: date

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def since(self) -> datetime:
        return datetime(
            self.first.year, self.first.month, self.first.day, tzinfo=clock.CHINA_STANDARD_TIME
        )

    @property
    def until(self) -> datetime:
        return datetime(
            self.end.year, self.end.month, self.end.day, tzinfo=clock.CHINA_STANDARD_TIME
        )

    def ended(self, today: date) -> bool:
        return today >= self.end


@dataclass(frozen=True, slots=True)
class HalfYear:
    year: int
    half: int  # 1: January–June, 2: July–December

    @property
    def period(self) -> Period:
        if self.half == 1:
            return Period(date(self.year, 1, 1), date(self.year, 7, 1))
        return Period(date(self.year, 7, 1), date(self.year + 1, 1, 1))

    def due_on(self, days_after: int) -> date:
        return self.period.last + timedelta(days=days_after)

    def label(self) -> str:
        return f"{self.year} H{self.half}"

    def next(self) -> HalfYear:
        return HalfYear(self.year, 2) if self.half == 1 else HalfYear(self.year + 1, 1)

    @classmethod
    def containing(cls, day: date) -> HalfYear:
        return cls(day.year, 1 if day.month <= 6 else 2)


def half_year(year: int, half: int) -> HalfYear:
    """A half year that has begun; BAD_USER_INPUT otherwise."""
    if half not in (1, 2):
        raise bad_input("half must be 1 (January–June) or 2 (July–December).", argument="half")
    today = clock.today()
    if not FIRST_YEAR <= year <= today.year:
        raise bad_input(f"year must be between {FIRST_YEAR} and this year.", argument="year")
    chosen = HalfYear(year, half)
    if chosen.period.first > today:
        raise bad_input(f"{chosen.label()} has not begun yet.", argument="half")
    return chosen


def calendar_year(year: int) -> Period:
    """A year up to this one; BAD_USER_INPUT otherwise."""
    if not FIRST_YEAR <= year <= clock.today().year:
        raise bad_input(f"year must be between {FIRST_YEAR} and this year.", argument="year")
    return Period(date(year, 1, 1), date(year + 1, 1, 1))
