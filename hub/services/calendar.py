"""The working-day calendar (O11) on PostgreSQL: loading it, asking it, changing it.

Storage (``storage/migrations/006_calendar.sql``): ``calendar_day`` holds the national
exceptions to the weekday rule, ``official`` rows from chinesecalendar (007) and ``admin``
rows that override them; ``calendar_year`` lists the years whose national schedule is known;
``hall_closure`` the days one hall does not work. The rules are those of
:mod:`hub.domain.calendar`; SQL scans use the functions ``hall_is_working_day``,
``hall_add_working_days``, ``hall_count_working_days`` and ``hall_calendar``, which give the
same answers.

Questions load the rows of a window of days into a
:class:`~hub.domain.calendar.WorkingCalendar`; arithmetic that runs past the window (a long
closure) loads the hall's whole calendar once more.

Changes
    :func:`set_day` / :func:`clear_day`: an admin row of the national calendar (a holiday or
    a make-up working day the package does not know, or a correction). :func:`announce_year`:
    the whole national schedule of a year without official data, which then stops being
    provisional. :func:`close_day` / :func:`reopen_day`: a closure of one hall. The caller
    has checked the actor's permission (``calendar.manage`` at a top-level region for the
    national calendar, ``calendar.close`` at the hall for closures); each change writes its
    audit row in its own transaction. Official rows are never changed here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Literal, TypeAlias

import asyncpg
import msgspec
import structlog

from hub.domain.access import Place
from hub.domain.calendar import (
    CalendarDay,
    Closure,
    NationalDay,
    OutsideSpan,
    WorkingCalendar,
)
from hub.domain.errors import Conflict, InvalidInput, NotFound
from hub.services import audit
from hub.services.records import record

log = structlog.get_logger("hub.services.calendar")

Executor: TypeAlias = "asyncpg.Connection | asyncpg.Pool"

# Days that can be changed or asked about through the API.
MIN_YEAR = 2000
MAX_YEAR = 2100
# The longest range one calendar request returns.
MAX_RANGE_DAYS = 400

DayName = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Note = Annotated[str, msgspec.Meta(max_length=200)]


class DayOverride(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A national day set by an admin: working or not, and its name (``春节``, ``调休上班``)."""

    working: bool
    name: DayName | None = None


class ClosureNew(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Why a hall does not work on a day (shown as the day's name)."""

    reason: Reason


class AnnouncedDay(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One exception of an announced year: a holiday, or a make-up working day."""

    day: date
    working: bool
    name: DayName | None = None


class YearAnnouncement(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A year's national schedule as announced: every day that departs from the weekday rule
    (holidays, weekend days inside a holiday span if they should carry its name, make-up
    working days)."""

    days: Annotated[list[AnnouncedDay], msgspec.Meta(max_length=366)]
    note: Note = ""


class NationalDayRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored ``calendar_day`` row."""

    day: date
    source: Literal["official", "admin"]
    working: bool
    name: str | None
    updated_by: int | None
    updated_at: datetime


class ClosureRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored ``hall_closure`` row."""

    hall_id: int
    day: date
    reason: str
    updated_by: int | None
    updated_at: datetime


class CalendarYear(msgspec.Struct, frozen=True, kw_only=True):
    """A year whose national schedule is known (``official`` data or an ``admin``
    announcement)."""

    year: int
    source: Literal["official", "admin"]
    note: str
    updated_by: int | None
    updated_at: datetime


class YearSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """A year's admin-entered national schedule, as an audit row records it."""

    year: CalendarYear | None
    days: list[NationalDayRecord]


class CalendarView(msgspec.Struct, frozen=True, kw_only=True):
    """Every day of a range for a hall (or the nation), and which of its years are
    provisional."""

    hall_id: int | None
    start: date
    end: date
    provisional_years: list[int]
    days: list[CalendarDay]


_NATIONAL = "day, source, working, name, updated_by, updated_at"
_CLOSURE = "hall_id, day, reason, updated_by, updated_at"
_YEAR = "year, source, note, updated_by, updated_at"


@asynccontextmanager
async def _transaction(db: Executor) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on a connection of ``db`` (a savepoint if ``db`` is already in one)."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db


def check_day(day: date, field: str) -> date:
    """``day`` if it lies in the years the calendar can be changed for.

    Raises:
        InvalidInput: the day is before ``MIN_YEAR`` or after ``MAX_YEAR``.
    """
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InvalidInput(f"the calendar covers {MIN_YEAR}-{MAX_YEAR}, not {day}", field=field)
    return day


# --- questions ----------------------------------------------------------------------------


async def load_calendar(
    db: Executor, hall_id: int | None, start: date | None = None, end: date | None = None
) -> WorkingCalendar:
    """The calendar of ``hall_id`` (None: national) with the rows of ``start``..``end``.

    Without ``start`` and ``end`` every row is loaded and the calendar answers for any day.
    """
    span = (start, end) if start is not None and end is not None else None
    lo, hi = span if span is not None else (date.min, date.max)
    national = await db.fetch(
        "SELECT day, working, name, source FROM calendar_day WHERE day BETWEEN $1 AND $2",
        lo,
        hi,
    )
    closures = (
        await db.fetch(
            "SELECT hall_id, day, reason FROM hall_closure "
            "WHERE hall_id = $1 AND day BETWEEN $2 AND $3",
            hall_id,
            lo,
            hi,
        )
        if hall_id is not None
        else []
    )
    if span is None:
        years = await db.fetch("SELECT year FROM calendar_year")
    else:
        years = await db.fetch(
            "SELECT year FROM calendar_year WHERE year BETWEEN $1 AND $2", lo.year, hi.year
        )
    return WorkingCalendar(
        [record(NationalDay, r) for r in national],
        [r["year"] for r in years],
        [record(Closure, r) for r in closures],
        hall_id=hall_id,
        span=span,
    )


async def calendar_view(db: Executor, hall_id: int | None, start: date, end: date) -> CalendarView:
    """Every day of ``start``..``end`` for ``hall_id`` (None: the national calendar).

    Raises:
        InvalidInput: ``end`` before ``start`` or more than ``MAX_RANGE_DAYS`` days after it
            (field ``query.to``), a day outside ``MIN_YEAR``..``MAX_YEAR``.
    """
    check_day(start, "query.from")
    check_day(end, "query.to")
    if end < start:
        raise InvalidInput(f"the range ends ({end}) before it starts ({start})", field="query.to")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(f"a range is at most {MAX_RANGE_DAYS} days", field="query.to")
    calendar = await load_calendar(db, hall_id, start, end)
    years = range(start.year, end.year + 1)
    return CalendarView(
        hall_id=hall_id,
        start=start,
        end=end,
        provisional_years=[y for y in years if not calendar.is_known_year(y)],
        days=calendar.days(start, end),
    )


async def day_of(db: Executor, hall_id: int | None, day: date) -> CalendarDay:
    """The answer for one day of ``hall_id`` (None: national)."""
    return (await load_calendar(db, hall_id, day, day)).day(day)


async def is_working_day(db: Executor, hall_id: int | None, day: date) -> bool:
    """Whether ``day`` is a working day of ``hall_id`` (None: national)."""
    return (await day_of(db, hall_id, day)).working


def _window(start: date, n: int) -> tuple[date, date]:
    # Eleven calendar days for every seven working days, plus a long holiday, either way.
    reach = abs(n) * 11 // 7 + 40
    return (
        date.fromordinal(max(1, start.toordinal() - reach)),
        date.fromordinal(min(date.max.toordinal(), start.toordinal() + reach)),
    )


async def add_working_days(db: Executor, hall_id: int | None, start: date, n: int) -> date:
    """The ``n``-th working day after ``start`` (not counted) for ``hall_id`` (O11)."""
    lo, hi = _window(start, n)
    try:
        return (await load_calendar(db, hall_id, lo, hi)).add_working_days(start, n)
    except OutsideSpan:
        log.info("calendar_window_exceeded", hall_id=hall_id, start=str(start), n=n)
        return (await load_calendar(db, hall_id)).add_working_days(start, n)


async def next_working_day(
    db: Executor, hall_id: int | None, day: date, *, inclusive: bool = False
) -> date:
    """The first working day after ``day`` (from ``day`` on, when ``inclusive``)."""
    if inclusive and await is_working_day(db, hall_id, day):
        return day
    return await add_working_days(db, hall_id, day, 1)


async def count_working_days(db: Executor, hall_id: int | None, start: date, end: date) -> int:
    """The working days after ``start`` up to and including ``end`` (0 if ``end <= start``)."""
    if end <= start:
        return 0
    return (await load_calendar(db, hall_id, start, end)).count_working_days(start, end)


async def working_days(db: Executor, hall_id: int | None, start: date, end: date) -> list[date]:
    """The working days of ``hall_id`` from ``start`` to ``end``, both included."""
    if end < start:
        return []
    return (await load_calendar(db, hall_id, start, end)).working_days(start, end)


async def list_years(db: Executor) -> list[CalendarYear]:
    """The years whose national schedule is known, in order."""
    rows = await db.fetch(f"SELECT {_YEAR} FROM calendar_year ORDER BY year")
    return [record(CalendarYear, r) for r in rows]


async def national_places(db: Executor) -> list[Place]:
    """The places of the top-level regions (provinces): where ``calendar.manage`` is checked
    for the national calendar, which no lower scope may change."""
    rows = await db.fetch("SELECT path FROM region WHERE parent_id IS NULL ORDER BY id")
    return [Place(region_path=r["path"]) for r in rows]


# --- national changes ---------------------------------------------------------------------


async def _admin_row(conn: asyncpg.Connection, day: date) -> NationalDayRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_NATIONAL} FROM calendar_day WHERE day = $1 AND source = 'admin' FOR UPDATE",
        day,
    )
    return None if row is None else record(NationalDayRecord, row)


async def set_day(
    db: Executor, actor: audit.Actor, place: Place, day: date, change: DayOverride
) -> CalendarDay:
    """Set ``day`` of the national calendar (an admin row, overriding any official one).

    Args:
        db: the pool, or a connection (the change then joins its transaction).
        actor: who changes it (already checked for ``calendar.manage``).
        place: the place the permission was checked at (a top-level region), for the audit row.
        day: the day (field ``path.day``).
        change: working or not, and the day's name.

    Returns:
        The national answer for the day after the change.
    """
    check_day(day, "path.day")
    if change.name is not None and not change.name.strip():
        raise InvalidInput("a name needs some visible text", field="body.name")
    async with _transaction(db) as conn:
        before = await _admin_row(conn, day)
        row = await conn.fetchrow(
            f"""INSERT INTO calendar_day (day, source, working, name, updated_by)
                VALUES ($1, 'admin', $2, $3, $4)
                ON CONFLICT (day, source) DO UPDATE
                    SET working = EXCLUDED.working, name = EXCLUDED.name,
                        updated_by = EXCLUDED.updated_by, updated_at = now()
                RETURNING {_NATIONAL}""",
            day,
            change.working,
            change.name,
            actor.staff_id,
        )
        after = record(NationalDayRecord, row)
        await audit.record(
            conn,
            actor,
            "calendar.set_day",
            "calendar_day",
            day.isoformat(),
            place=place,
            before=before,
            after=after,
        )
        answer = await day_of(conn, None, day)
    log.info("calendar_day_set", day=str(day), working=change.working, actor=actor.label)
    return answer


async def clear_day(db: Executor, actor: audit.Actor, place: Place, day: date) -> CalendarDay:
    """Remove the admin row of ``day``: the official row, or the rule, answers again.

    Raises:
        NotFound: the day has no admin row (field ``path.day``).
    """
    check_day(day, "path.day")
    async with _transaction(db) as conn:
        before = await _admin_row(conn, day)
        if before is None:
            raise NotFound(f"{day} has no admin entry", field="path.day")
        await conn.execute("DELETE FROM calendar_day WHERE day = $1 AND source = 'admin'", day)
        await audit.record(
            conn,
            actor,
            "calendar.clear_day",
            "calendar_day",
            day.isoformat(),
            place=place,
            before=before,
        )
        answer = await day_of(conn, None, day)
    log.info("calendar_day_cleared", day=str(day), actor=actor.label)
    return answer


async def announce_year(
    db: Executor, actor: audit.Actor, place: Place, year: int, announcement: YearAnnouncement
) -> CalendarYear:
    """Enter the announced national schedule of ``year``, which stops being provisional.

    The year's admin rows are replaced by the announced days (announcing again corrects an
    announcement). A year with official data is not announced: override its days one by one.

    Raises:
        InvalidInput: the year is out of range (``path.year``); a day lies in another year or
            repeats (``body.days[i].day``).
        Conflict: the year has official data (``path.year``).
    """
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidInput(f"the calendar covers {MIN_YEAR}-{MAX_YEAR}", field="path.year")
    seen: set[date] = set()
    for i, entry in enumerate(announcement.days):
        if entry.day.year != year or entry.day in seen:
            why = "repeats" if entry.day in seen else f"is not in {year}"
            raise InvalidInput(f"{entry.day} {why}", field=f"body.days[{i}].day")
        seen.add(entry.day)
    async with _transaction(db) as conn:
        held = await conn.fetchrow(
            f"SELECT {_YEAR} FROM calendar_year WHERE year = $1 FOR UPDATE", year
        )
        if held is not None and held["source"] == "official":
            raise Conflict(f"{year} has official data; set single days instead", field="path.year")
        first, last = date(year, 1, 1), date(year, 12, 31)
        old_days = await conn.fetch(
            f"""DELETE FROM calendar_day WHERE source = 'admin' AND day BETWEEN $1 AND $2
                RETURNING {_NATIONAL}""",
            first,
            last,
        )
        new_days = await conn.fetch(
            f"""INSERT INTO calendar_day (day, source, working, name, updated_by)
                SELECT d, 'admin', w, n, $4
                FROM unnest($1::date[], $2::boolean[], $3::text[]) AS t(d, w, n)
                RETURNING {_NATIONAL}""",
            [d.day for d in announcement.days],
            [d.working for d in announcement.days],
            [d.name for d in announcement.days],
            actor.staff_id,
        )
        row = await conn.fetchrow(
            f"""INSERT INTO calendar_year (year, source, note, updated_by)
                VALUES ($1, 'admin', $2, $3)
                ON CONFLICT (year) DO UPDATE
                    SET note = EXCLUDED.note, updated_by = EXCLUDED.updated_by,
                        updated_at = now()
                RETURNING {_YEAR}""",
            year,
            announcement.note,
            actor.staff_id,
        )
        announced = record(CalendarYear, row)

        def schedule(year_row: CalendarYear | None, rows: list[asyncpg.Record]) -> YearSchedule:
            days = sorted((record(NationalDayRecord, r) for r in rows), key=lambda r: r.day)
            return YearSchedule(year=year_row, days=days)

        await audit.record(
            conn,
            actor,
            "calendar.announce",
            "calendar_year",
            year,
            place=place,
            before=schedule(None if held is None else record(CalendarYear, held), old_days),
            after=schedule(announced, new_days),
        )
    log.info("calendar_year_announced", year=year, days=len(new_days), actor=actor.label)
    return announced


# --- hall closures ------------------------------------------------------------------------


async def close_day(
    db: Executor, actor: audit.Actor, place: Place, day: date, closure: ClosureNew
) -> CalendarDay:
    """Close the hall of ``place`` on ``day`` (or change the reason of its closure).

    Args:
        place: the hall's place; ``place.hall_id`` must be set.

    Returns:
        The hall's answer for the day: not working, source ``closure``.

    Raises:
        InvalidInput: the reason is only white space (``body.reason``), the day is out of
            range (``path.day``).
    """
    check_day(day, "path.day")
    if not closure.reason.strip():
        raise InvalidInput("a closure needs a reason", field="body.reason")
    assert place.hall_id is not None, "a closure belongs to a hall"
    async with _transaction(db) as conn:
        held = await conn.fetchrow(
            f"SELECT {_CLOSURE} FROM hall_closure WHERE hall_id = $1 AND day = $2 FOR UPDATE",
            place.hall_id,
            day,
        )
        row = await conn.fetchrow(
            f"""INSERT INTO hall_closure (hall_id, day, reason, updated_by)
                VALUES ($1, $2, $3, $4)
                ON CONFLICT (hall_id, day) DO UPDATE
                    SET reason = EXCLUDED.reason, updated_by = EXCLUDED.updated_by,
                        updated_at = now()
                RETURNING {_CLOSURE}""",
            place.hall_id,
            day,
            closure.reason.strip(),
            actor.staff_id,
        )
        await audit.record(
            conn,
            actor,
            "calendar.close",
            "hall_closure",
            f"{place.hall_id}:{day.isoformat()}",
            place=place,
            before=None if held is None else record(ClosureRecord, held),
            after=record(ClosureRecord, row),
        )
        answer = await day_of(conn, place.hall_id, day)
    log.info("hall_closed", hall_id=place.hall_id, day=str(day), actor=actor.label)
    return answer


async def reopen_day(db: Executor, actor: audit.Actor, place: Place, day: date) -> CalendarDay:
    """Remove the closure of the hall of ``place`` on ``day``.

    Raises:
        NotFound: the hall is not closed that day (field ``path.day``).
    """
    check_day(day, "path.day")
    assert place.hall_id is not None, "a closure belongs to a hall"
    async with _transaction(db) as conn:
        held = await conn.fetchrow(
            f"DELETE FROM hall_closure WHERE hall_id = $1 AND day = $2 RETURNING {_CLOSURE}",
            place.hall_id,
            day,
        )
        if held is None:
            raise NotFound(f"hall {place.hall_id} is not closed on {day}", field="path.day")
        await audit.record(
            conn,
            actor,
            "calendar.reopen",
            "hall_closure",
            f"{place.hall_id}:{day.isoformat()}",
            place=place,
            before=record(ClosureRecord, held),
        )
        answer = await day_of(conn, place.hall_id, day)
    log.info("hall_reopened", hall_id=place.hall_id, day=str(day), actor=actor.label)
    return answer


async def closures(db: Executor, hall_id: int, start: date, end: date) -> list[ClosureRecord]:
    """The closures of ``hall_id`` from ``start`` to ``end``, in order."""
    rows = await db.fetch(
        f"SELECT {_CLOSURE} FROM hall_closure WHERE hall_id = $1 AND day BETWEEN $2 AND $3 "
        "ORDER BY day",
        hall_id,
        start,
        end,
    )
    return [record(ClosureRecord, r) for r in rows]
