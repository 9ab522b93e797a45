"""The working-day calendar (O11): ``/api/calendar`` and ``/api/halls/{hall_id}/closures``.

Reading (``GET /api/calendar``) is for any signed-in staff member: the national calendar, or
a hall's (closures included) with ``org.read`` covering the hall. Every day comes with
``working``, ``name``, ``source`` and ``provisional``.

The national calendar (``PUT``/``DELETE /api/calendar/days/{day}``,
``POST /api/calendar/years/{year}/announce``) applies to every hall, so it needs
``calendar.manage`` (admin) through a grant that covers a top-level region (a province): a
city admin may not move the nation's holidays. Closures of one hall
(``PUT``/``DELETE /api/halls/{hall_id}/closures/{day}``) need ``calendar.close`` (admin or
hall manager) covering that hall. Dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

import asyncpg
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from hub.api.deps import require
from hub.domain.access import Place, Principal, covering_grant
from hub.domain.calendar import CalendarDay
from hub.domain.errors import InvalidInput, NotAllowed
from hub.services import calendar
from hub.services.access import hall_place
from hub.services.audit import Actor

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def parse_day(text: str | None, field: str) -> date:
    """A ``YYYY-MM-DD`` date, within the years the calendar covers.

    Raises:
        InvalidInput: missing, another form, an impossible date, or a year out of range
            (``field``).
    """
    if text is None:
        raise InvalidInput("a date (YYYY-MM-DD) is required", field=field)
    try:
        if not _ISO_DATE.match(text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text[:40]!r} is not a date (YYYY-MM-DD)", field=field) from None
    return calendar.check_day(day, field)


async def require_national(pool: asyncpg.Pool, principal: Principal) -> tuple[Actor, Place]:
    """The actor and place for a change of the national calendar.

    Raises:
        NotAllowed: no admin grant of the caller covers a top-level region.
    """
    for place in await calendar.national_places(pool):
        grant = covering_grant(principal, "calendar.manage", place)
        if grant is not None:
            return Actor.of(principal, grant), place
    raise NotAllowed("calendar.manage: the national calendar is kept by a province's admins")


class CalendarController(Controller):
    path = "/api/calendar"
    tags = ["calendar"]  # noqa: RUF012

    @get("/")
    async def read(
        self,
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        start: Annotated[str | None, QueryParameter(name="from")] = None,
        end: Annotated[str | None, QueryParameter(name="to")] = None,
        hall_id: FromQuery[int | None] = None,
    ) -> calendar.CalendarView:
        """Every day of ``from``..``to`` (both included, at most 400 days): the national
        calendar, or with ``hall_id`` that hall's (its closures included)."""
        first = parse_day(start, "query.from")
        last = parse_day(end, "query.to")
        if hall_id is not None:
            require(principal, "org.read", await hall_place(pool, hall_id, field="query.hall_id"))
        return await calendar.calendar_view(pool, hall_id, first, last)

    @get("/years")
    async def years(
        self, principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool]
    ) -> list[calendar.CalendarYear]:
        """The years whose national schedule is known; every other year is provisional."""
        return await calendar.list_years(pool)

    @put("/days/{day:str}")
    async def set_day(
        self,
        day: FromPath[str],
        data: JSONBody[calendar.DayOverride],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> CalendarDay:
        """Make a day of the national calendar a holiday or a working day (overrides the
        official data; the official answer returns when the override is deleted)."""
        the_day = parse_day(day, "path.day")
        actor, place = await require_national(pool, principal)
        return await calendar.set_day(pool, actor, place, the_day, data)

    @delete("/days/{day:str}", status_code=200)
    async def clear_day(
        self,
        day: FromPath[str],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> CalendarDay:
        """Remove an admin override; returns the day's answer without it."""
        the_day = parse_day(day, "path.day")
        actor, place = await require_national(pool, principal)
        return await calendar.clear_day(pool, actor, place, the_day)

    @post("/years/{year:int}/announce", status_code=200)
    async def announce(
        self,
        year: FromPath[int],
        data: JSONBody[calendar.YearAnnouncement],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> calendar.CalendarYear:
        """Enter a year's announced national schedule (its holidays and make-up working
        days); the year stops being provisional."""
        actor, place = await require_national(pool, principal)
        return await calendar.announce_year(pool, actor, place, year, data)


class HallClosureController(Controller):
    path = "/api/halls/{hall_id:int}/closures"
    tags = ["calendar"]  # noqa: RUF012

    @put("/{day:str}")
    async def close(
        self,
        hall_id: FromPath[int],
        day: FromPath[str],
        data: JSONBody[calendar.ClosureNew],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> CalendarDay:
        """Close the hall on a day (a local closure: other halls are not affected)."""
        the_day = parse_day(day, "path.day")
        place = await hall_place(pool, hall_id, field="path.hall_id")
        actor = require(principal, "calendar.close", place)
        return await calendar.close_day(pool, actor, place, the_day, data)

    @delete("/{day:str}", status_code=200)
    async def reopen(
        self,
        hall_id: FromPath[int],
        day: FromPath[str],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> CalendarDay:
        """Remove a closure; returns the hall's answer for the day without it."""
        the_day = parse_day(day, "path.day")
        place = await hall_place(pool, hall_id, field="path.hall_id")
        actor = require(principal, "calendar.close", place)
        return await calendar.reopen_day(pool, actor, place, the_day)
