"""Appointment slots (O2): what a service group offers per working day, as configured
(templates for every working day, explicit slots for one day) and as the booking page
lists them with their seats left. The rules are hub/domain/appointment.py; booking and
check-in are hub/services/appointments.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Annotated, TypeAlias

import asyncpg
import msgspec

from hub.domain.access import Place
from hub.domain.appointment import (
    CAPACITY_MAX,
    CheckInPolicy,
    SlotDef,
    check_slots,
    day_slots,
    slot_start_at,
)
from hub.domain.errors import InvalidInput, NotFound
from hub.domain.queue import service_day
from hub.services import audit, calendar

Executor: TypeAlias = "asyncpg.Connection | asyncpg.Pool"

# The longest range of days one slot listing covers.
MAX_LIST_DAYS = 31


class SlotIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A slot as configured: hall-local ``HH:MM:SS`` start and end, and a capacity."""

    start: time
    end: time
    capacity: Annotated[int, msgspec.Meta(ge=0, le=CAPACITY_MAX)]


class SlotRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored slot: a template (``service_day`` null) or an explicit slot of one day."""

    group_id: int
    service_day: date | None
    start: time
    end: time
    capacity: int


class SlotView(msgspec.Struct, frozen=True, kw_only=True):
    """A slot of a day as the booking page shows it. ``open``: it may be booked now (not
    started, within the booking horizon); ``available``: seats left."""

    start: time
    end: time
    capacity: int
    booked: int
    available: int
    open: bool


class DaySlots(msgspec.Struct, frozen=True, kw_only=True):
    """A working day with its slots. ``name`` names a make-up working day (调休上班);
    ``provisional``: the year's national schedule is not announced yet."""

    day: date
    name: str | None
    provisional: bool
    slots: list[SlotView]


class HallGroup(msgspec.Struct, frozen=True, kw_only=True):
    timezone: str
    checkin_early_minutes: int
    checkin_late_minutes: int
    appointment_days: int
    group_name: str
    active: bool

    @property
    def checkin(self) -> CheckInPolicy:
        return CheckInPolicy(
            early_minutes=self.checkin_early_minutes, late_minutes=self.checkin_late_minutes
        )


async def hall_group(db: Executor, hall_id: int, group_id: int, field: str) -> HallGroup:
    row = await db.fetchrow(
        """SELECT h.timezone, h.checkin_early_minutes, h.checkin_late_minutes,
                  h.appointment_days, g.name AS group_name, g.active
           FROM service_group g JOIN hall h ON h.id = g.hall_id
           WHERE g.id = $1 AND g.hall_id = $2""",
        group_id,
        hall_id,
    )
    if row is None:
        raise NotFound(f"hall {hall_id} has no service group {group_id}", field=field)
    return msgspec.convert(dict(row), HallGroup)


async def slots_between(
    db: Executor, group_id: int, first: date, last: date
) -> tuple[list[SlotDef], dict[date, list[SlotDef]]]:
    """The group's templates, and its explicit slots of ``first``..``last`` by day."""
    rows = await db.fetch(
        """SELECT service_day, slot_start AS start, slot_end AS "end", capacity
           FROM appointment_slot
           WHERE group_id = $1 AND (service_day IS NULL OR service_day BETWEEN $2 AND $3)
           ORDER BY service_day NULLS FIRST, slot_start""",
        group_id,
        first,
        last,
    )
    templates: list[SlotDef] = []
    explicit: dict[date, list[SlotDef]] = {}
    for r in rows:
        slot = SlotDef(start=r["start"], end=r["end"], capacity=r["capacity"])
        if r["service_day"] is None:
            templates.append(slot)
        else:
            explicit.setdefault(r["service_day"], []).append(slot)
    return templates, explicit


# --- configuration ------------------------------------------------------------------------


async def set_slots(
    pool: asyncpg.Pool,
    actor: audit.Actor,
    place: Place,
    group_id: int,
    day: date | None,
    slots: Sequence[SlotIn],
) -> list[SlotRecord]:
    """Replace the group's templates (``day`` None) or the explicit slots of ``day`` (an
    empty list removes them: the templates apply again). The caller checked
    ``queue.configure`` at the hall of ``place``.

    Raises:
        NotFound: the group is not the hall's (``path.group_id``).
        InvalidInput: see :func:`hub.domain.appointment.check_slots`.
    """
    assert place.hall_id is not None
    ordered = check_slots(
        [SlotDef(start=s.start, end=s.end, capacity=s.capacity) for s in slots], field="body"
    )
    async with pool.acquire() as conn, conn.transaction():
        await hall_group(conn, place.hall_id, group_id, field="path.group_id")
        before = await conn.fetch(
            """DELETE FROM appointment_slot
               WHERE group_id = $1 AND service_day IS NOT DISTINCT FROM $2
               RETURNING slot_start, slot_end, capacity""",
            group_id,
            day,
        )
        await conn.executemany(
            """INSERT INTO appointment_slot (group_id, service_day, slot_start, slot_end, capacity)
               VALUES ($1, $2, $3, $4, $5)""",
            [(group_id, day, s.start, s.end, s.capacity) for s in ordered],
        )
        records = [
            SlotRecord(
                group_id=group_id, service_day=day, start=s.start, end=s.end, capacity=s.capacity
            )
            for s in ordered
        ]
        await audit.record(
            conn,
            actor,
            "appointment.slots",
            "service_group",
            group_id,
            place=place,
            before={"day": day, "slots": [dict(r) for r in before]},
            after={"day": day, "slots": records},
        )
    return records


async def slot_records(db: Executor, hall_id: int, group_id: int) -> list[SlotRecord]:
    """Every stored slot of the group: templates first, then explicit ones by day.

    Raises:
        NotFound: the group is not the hall's (``path.group_id``).
    """
    await hall_group(db, hall_id, group_id, field="path.group_id")
    rows = await db.fetch(
        """SELECT group_id, service_day, slot_start AS start, slot_end AS "end", capacity
           FROM appointment_slot WHERE group_id = $1
           ORDER BY service_day NULLS FIRST, slot_start""",
        group_id,
    )
    return [msgspec.convert(dict(r), SlotRecord) for r in rows]


# --- availability -------------------------------------------------------------------------


async def available_slots(
    db: Executor, hall_id: int, group_id: int, first: date | None, days: int, now: datetime
) -> list[DaySlots]:
    """The group's slots on the working days of ``first`` (default: the hall's today) and
    the ``days - 1`` calendar days after it, with seats booked and left. Non-working days
    are skipped; make-up working days are listed (with their name).

    Raises:
        NotFound: no such group in the hall (``path.group_id``).
        InvalidInput: ``days`` outside 1..MAX_LIST_DAYS (``query.days``).
    """
    if not 1 <= days <= MAX_LIST_DAYS:
        raise InvalidInput(f"days is 1 to {MAX_LIST_DAYS}", field="query.days")
    hall = await hall_group(db, hall_id, group_id, field="path.group_id")
    today = service_day(now, hall.timezone)
    start = first or today
    calendar.check_day(start, "query.from")
    last = start + timedelta(days=days - 1)
    horizon = today + timedelta(days=hall.appointment_days)
    working = await calendar.load_calendar(db, hall_id, start, last)
    templates, explicit = await slots_between(db, group_id, start, last)
    taken = {
        (r["service_day"], r["slot_start"]): r["n"]
        for r in await db.fetch(
            """SELECT service_day, slot_start, count(*) AS n FROM appointment
               WHERE group_id = $1 AND service_day BETWEEN $2 AND $3 AND status <> 'cancelled'
               GROUP BY service_day, slot_start""",
            group_id,
            start,
            last,
        )
    }
    result = []
    for answer in working.days(start, last):
        if not answer.working:
            continue
        views = []
        for slot in day_slots(True, templates, explicit.get(answer.day, [])):
            booked = taken.get((answer.day, slot.start), 0)
            views.append(
                SlotView(
                    start=slot.start,
                    end=slot.end,
                    capacity=slot.capacity,
                    booked=booked,
                    available=max(0, slot.capacity - booked),
                    open=hall.active
                    and today <= answer.day <= horizon
                    and now < slot_start_at(answer.day, slot.start, hall.timezone),
                )
            )
        result.append(
            DaySlots(day=answer.day, name=answer.name, provisional=answer.provisional, slots=views)
        )
    return result
