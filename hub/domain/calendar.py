"""The working-day calendar (O11): which days a hall works, and working-day arithmetic.

Pure: no I/O, no asyncio. Services load the stored exceptions (hub/services/calendar.py) and
build a :class:`WorkingCalendar`; the SQL functions of ``storage/migrations/006_calendar.sql``
answer the same questions in PostgreSQL with the same rules, and the two are tested against
each other.

How a day is decided, first match wins
    1. a **closure** of the hall (``hall_closure``): not working, ``source="closure"``, the
       reason as the name. Closures belong to one hall only.
    2. a national row entered by an **admin** (``calendar_day.source = 'admin'``): an announced
       schedule or a correction. It takes precedence over an official row of the same day,
       which stays stored, so removing the override restores the official answer.
    3. a national **official** row (``source = 'official'``), generated from the
       ``chinesecalendar`` package for 2004-2026: holidays (also the weekend days inside a
       holiday span, with their names) and make-up working days (调休上班).
    4. the **rule**: Monday to Friday work, Saturday and Sunday rest. In a *provisional* year
       the fixed-date statutory holidays rest as well (:data:`FIXED_HOLIDAYS`).

Provisional years
    A year is *known* when its national schedule is stored: official data, or an admin's
    announcement of the whole year (``calendar_year``). Every day of any other year reports
    ``provisional=True``, whatever decided it: its answers may change once the State Council's
    schedule is entered. A provisional year knows only the holidays fixed to a calendar date
    (元旦 1 Jan, 劳动节 1-2 May, 国庆节 1-3 Oct, as the 2025 statute sets them); the lunar
    holidays (春节, 清明节, 端午节, 中秋节) and every make-up working day are unknown until an
    announcement is entered, and no moved rest day (补假) is guessed either.

Working-day arithmetic (O11)
    The day of acceptance is not counted: :meth:`WorkingCalendar.add_working_days` with
    ``n`` returns the ``n``-th working day *after* ``start`` (the deadline), whatever
    ``start`` is; ``n = 0`` returns ``start`` itself and a negative ``n`` counts backwards.
    :meth:`WorkingCalendar.count_working_days` is its inverse: the working days after
    ``start`` up to and including ``end``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Literal

import msgspec

Source = Literal["official", "admin", "closure", "rule"]
NationalSource = Literal["official", "admin"]

# The statutory holidays fixed to a calendar date (全国年节及纪念日放假办法, as amended in 2024,
# in force from 2025): what a provisional year rests besides weekends. Mirrors the SQL
# function calendar_rule_working() in 006_calendar.sql.
FIXED_HOLIDAYS: dict[tuple[int, int], str] = {
    (1, 1): "元旦",
    (5, 1): "劳动节",
    (5, 2): "劳动节",
    (10, 1): "国庆节",
    (10, 2): "国庆节",
    (10, 3): "国庆节",
}

# chinesecalendar names its holidays in English; the calendar shows them in Chinese.
HOLIDAY_NAMES: dict[str, str] = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}

MAKEUP_SUFFIX = "调休上班"


def makeup_name(holiday: str) -> str:
    """The name of a make-up working day (调休) that belongs to ``holiday``: ``国庆节调休上班``."""
    return f"{holiday}{MAKEUP_SUFFIX}"


class CalendarDay(msgspec.Struct, frozen=True, kw_only=True):
    """The answer for one day: whether it is a working day, and why.

    ``name`` is the holiday's name (``国庆节``), a make-up working day's (``国庆节调休上班``),
    a closure's reason, or None for an ordinary day. ``source`` says what decided: an
    ``official`` or ``admin`` national row, a hall ``closure``, or the weekday ``rule``.
    ``provisional`` is true for every day of a year whose national schedule is not known.
    """

    day: date
    working: bool
    name: str | None
    source: Source
    provisional: bool


class NationalDay(msgspec.Struct, frozen=True, kw_only=True):
    """A stored national exception to the weekday rule (a ``calendar_day`` row)."""

    day: date
    working: bool
    name: str | None
    source: NationalSource


class Closure(msgspec.Struct, frozen=True, kw_only=True):
    """A day one hall does not work (a ``hall_closure`` row)."""

    hall_id: int
    day: date
    reason: str


class OutsideSpan(LookupError):
    """A question about a day outside the span the calendar was loaded for.

    The service loads the exceptions of a window of days; when an answer needs a day beyond
    it, it loads a wider one.
    """

    def __init__(self, day: date, span: tuple[date, date]) -> None:
        super().__init__(f"{day} lies outside the loaded span {span[0]}..{span[1]}")
        self.day = day
        self.span = span


def rule_day(day: date, *, known_year: bool) -> CalendarDay:
    """The weekday rule for a day without a stored row (step 4 of the module docstring)."""
    if not known_year and (name := FIXED_HOLIDAYS.get((day.month, day.day))) is not None:
        return CalendarDay(day=day, working=False, name=name, source="rule", provisional=True)
    return CalendarDay(
        day=day, working=day.weekday() < 5, name=None, source="rule", provisional=not known_year
    )


class WorkingCalendar:
    """The working days of one hall (or of the nation, ``hall_id=None``).

    Args:
        national: stored national rows; where a day has both, the ``admin`` row wins.
        known_years: the years whose national schedule is known (not provisional).
        closures: hall closures; those of other halls than ``hall_id`` are ignored.
        hall_id: the hall whose closures count; None for the national calendar.
        span: the first and last day the rows were loaded for; asking about a day outside
            it raises :class:`OutsideSpan`. None: the rows are complete.
    """

    def __init__(
        self,
        national: Iterable[NationalDay],
        known_years: Iterable[int],
        closures: Iterable[Closure] = (),
        *,
        hall_id: int | None = None,
        span: tuple[date, date] | None = None,
    ) -> None:
        if span is not None and span[1] < span[0]:
            raise ValueError(f"span ends ({span[1]}) before it starts ({span[0]})")
        self.hall_id = hall_id
        self.span = span
        self._known = frozenset(known_years)
        self._national: dict[date, NationalDay] = {}
        for row in national:
            held = self._national.get(row.day)
            if held is None or held.source != "admin":
                self._national[row.day] = row
        self._closures: dict[date, str] = {
            c.day: c.reason for c in closures if hall_id is not None and c.hall_id == hall_id
        }

    def is_known_year(self, year: int) -> bool:
        """Whether ``year``'s national schedule is known (its days are not provisional)."""
        return year in self._known

    def day(self, day: date) -> CalendarDay:
        """The answer for ``day`` (rules in the module docstring)."""
        if self.span is not None and not self.span[0] <= day <= self.span[1]:
            raise OutsideSpan(day, self.span)
        provisional = day.year not in self._known
        reason = self._closures.get(day)
        if reason is not None:
            return CalendarDay(
                day=day, working=False, name=reason, source="closure", provisional=provisional
            )
        row = self._national.get(day)
        if row is not None:
            return CalendarDay(
                day=day,
                working=row.working,
                name=row.name,
                source=row.source,
                provisional=provisional,
            )
        return rule_day(day, known_year=not provisional)

    def is_working(self, day: date) -> bool:
        """Whether ``day`` is a working day."""
        return self.day(day).working

    def next_working(self, day: date, *, inclusive: bool = False) -> date:
        """The first working day after ``day`` (or from ``day`` on, when ``inclusive``)."""
        if inclusive and self.is_working(day):
            return day
        return self.add_working_days(day, 1)

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start``, which itself is not counted (O11).

        ``n = 0`` gives ``start``; a negative ``n`` gives the ``|n|``-th working day before it.
        """
        step = timedelta(days=1 if n >= 0 else -1)
        left = abs(n)
        day = start
        while left:
            day += step
            if self.is_working(day):
                left -= 1
        return day

    def count_working_days(self, start: date, end: date) -> int:
        """The working days after ``start`` up to and including ``end`` (0 if ``end <= start``).

        ``count_working_days(s, add_working_days(s, n)) == n`` for every ``n >= 0``.
        """
        return sum(1 for d in _dates(start + timedelta(days=1), end) if self.is_working(d))

    def working_days(self, start: date, end: date) -> list[date]:
        """The working days from ``start`` to ``end``, both included, in order."""
        return [d for d in _dates(start, end) if self.is_working(d)]

    def days(self, start: date, end: date) -> list[CalendarDay]:
        """Every day from ``start`` to ``end``, both included, with its answer."""
        return [self.day(d) for d in _dates(start, end)]


def _dates(start: date, end: date) -> Iterable[date]:
    day = start
    one = timedelta(days=1)
    while day <= end:
        yield day
        day += one
