"""Appointments (O2, 预约) over HTTP.

Public (rate-limited; the citizen's booking page)
    ``GET /api/halls/{hall_id}/groups/{group_id}/slots?from=&days=``: the group's slots on
    the working days of a range (default: from the hall's today, 7 days), seats left.
    ``POST /api/halls/{hall_id}/appointments``: book (BookingRequest) → 201 with the
    check-in ``code``.
    ``POST /api/halls/{hall_id}/appointments/{code}/cancel``: cancel, body
    ``{service_day, id_document}``; staff (``appointment.manage``) need no document. (A POST
    with a body rather than ``DELETE …?``: the document number never goes into a URL, where
    access logs keep it.)

Check-in (a kiosk, ticket machine or ID reader of the hall, or staff with
``appointment.manage``)
    ``POST /api/halls/{hall_id}/appointments/{code}/check-in``: by the code;
    ``POST /api/halls/{hall_id}/appointments/check-in`` body ``{id_document}``: by the card.
    → 201 ``{appointment, ticket}``; outside the window 409 ``checkin_too_early`` /
    ``checkin_too_late`` and nothing changes.

Staff
    ``GET /api/halls/{hall_id}/appointments?day=&group_id=&status=`` (``appointment.read``).
    ``GET|PUT /api/halls/{hall_id}/groups/{group_id}/slot-templates`` and
    ``PUT /api/halls/{hall_id}/groups/{group_id}/slots/{day}`` (``queue.configure``): the
    slots of every working day, and the explicit slots of one day.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import asyncpg
from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from hub.api.calendar import parse_day
from hub.api.deps import any_caller, events_of, require
from hub.api.ratelimit import public_rate_guard
from hub.domain.access import Place, Principal
from hub.domain.appointment import AppointmentStatus
from hub.domain.errors import NotAllowed, NotSignedIn
from hub.domain.queue import service_day
from hub.runtime import Hub
from hub.services import appointment_slots, appointments
from hub.services.access import hall_place
from hub.services.audit import Actor
from hub.services.events import EventWriter

# Devices at which a citizen checks in.
_CHECKIN_DEVICES = frozenset({"kiosk", "ticket_machine", "id_reader"})


def _events(hub: Hub) -> EventWriter:
    if hub.queue is None:
        raise RuntimeError("Hub.start() has not run")
    return events_of(hub)


def _id_key(hub: Hub) -> bytes:
    return hub.settings.id_hmac_key.encode()


async def _check_in_caller(
    request: Request[Any, Any, Any], pool: asyncpg.Pool, hall_id: int
) -> tuple[int | None, Actor | None, Place]:
    """(device id, staff actor, place) of a check-in: a check-in device of the hall or staff
    with ``appointment.manage``."""
    caller = await any_caller(request, pool)
    place = await hall_place(pool, hall_id, field="path.hall_id")
    if caller.kind == "device":
        if caller.device_kind not in _CHECKIN_DEVICES or caller.hall_id != hall_id:
            raise NotAllowed("this device does not check appointments in at this hall")
        return int(caller.id.removeprefix("device:")), None, place
    if caller.kind == "staff":
        return None, require(caller, "appointment.manage", place), place
    raise NotSignedIn("check-in is made at the hall's kiosk or by its staff")


class AppointmentController(Controller):
    path = "/api/halls/{hall_id:int}"
    tags = ["appointments"]  # noqa: RUF012

    @get("/groups/{group_id:int}/slots", guards=[public_rate_guard])
    async def slots(
        self,
        hall_id: FromPath[int],
        group_id: FromPath[int],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
        start: Annotated[str | None, QueryParameter(name="from")] = None,
        days: FromQuery[int] = 7,
    ) -> list[appointment_slots.DaySlots]:
        """The group's slots on the working days of ``from`` (default: today) and the
        ``days - 1`` days after it (at most 31), with seats booked and left (public)."""
        first = parse_day(start, "query.from") if start is not None else None
        return await appointment_slots.available_slots(
            pool, hall_id, group_id, first, days, hub.now()
        )

    @post("/appointments", guards=[public_rate_guard], status_code=201)
    async def book(
        self,
        hall_id: FromPath[int],
        data: JSONBody[appointments.BookingRequest],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> appointments.AppointmentView:
        """Book a seat in a slot (public): the identity document is checked (Q4); the answer
        carries the ``code`` to check in with at the kiosk."""
        await hall_place(pool, hall_id, field="path.hall_id")
        return await appointments.book(pool, hub.now(), _id_key(hub), hall_id, data)

    @post("/appointments/{code:str}/cancel", guards=[public_rate_guard], status_code=200)
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        hall_id: FromPath[int],
        code: FromPath[str],
        data: JSONBody[appointments.CancelRequest],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> appointments.AppointmentView:
        """Cancel an appointment: the citizen with the document it was booked with, or staff
        (``appointment.manage``)."""
        caller = await any_caller(request, pool)
        place = await hall_place(pool, hall_id, field="path.hall_id")
        actor = None
        if caller.kind == "staff":
            actor = require(caller, "appointment.manage", place)
        elif caller.kind == "device":
            raise NotAllowed("devices do not cancel appointments")
        return await appointments.cancel(
            pool, hub.now(), _id_key(hub), hall_id, code, data, actor=actor, place=place
        )

    @post("/appointments/{code:str}/check-in", status_code=201)
    async def check_in_by_code(
        self,
        request: Request[Any, Any, Any],
        hall_id: FromPath[int],
        code: FromPath[str],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> appointments.CheckedIn:
        """Check in by the appointment's code (a kiosk of the hall, or staff): inside the
        check-in window a ticket of priority ``appointment`` is issued."""
        device_id, actor, place = await _check_in_caller(request, pool, hall_id)
        assert hub.queue is not None
        return await appointments.check_in(
            _events(hub),
            hub.now(),
            _id_key(hub),
            hub.queue.policy,
            hall_id,
            code=code,
            device_id=device_id,
            actor=actor,
            place=place,
            print_base_url=str(request.base_url) if device_id is not None else None,
        )

    @post("/appointments/check-in", status_code=201)
    async def check_in_by_document(
        self,
        request: Request[Any, Any, Any],
        hall_id: FromPath[int],
        data: JSONBody[appointments.DocumentCheckIn],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> appointments.CheckedIn:
        """Check in by the identity card read at the kiosk or ID reader (or by staff)."""
        device_id, actor, place = await _check_in_caller(request, pool, hall_id)
        assert hub.queue is not None
        return await appointments.check_in(
            _events(hub),
            hub.now(),
            _id_key(hub),
            hub.queue.policy,
            hall_id,
            document=data.id_document,
            device_id=device_id,
            actor=actor,
            place=place,
            print_base_url=str(request.base_url) if device_id is not None else None,
        )

    @get("/appointments")
    async def list_appointments(
        self,
        hall_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
        day: FromQuery[str | None] = None,
        group_id: FromQuery[int | None] = None,
        status: FromQuery[AppointmentStatus | None] = None,
    ) -> appointments.AppointmentList:
        """The hall's appointments of ``day`` (default: today), counts per status included."""
        place = await hall_place(pool, hall_id, field="path.hall_id")
        require(principal, "appointment.read", place)
        if day is not None:
            the_day = parse_day(day, "query.day")
        else:
            timezone = await pool.fetchval("SELECT timezone FROM hall WHERE id = $1", hall_id)
            the_day = service_day(hub.now(), timezone)
        return await appointments.hall_appointments(
            pool, hall_id, the_day, group_id=group_id, status=status
        )

    @get("/groups/{group_id:int}/slot-templates")
    async def slot_templates(
        self,
        hall_id: FromPath[int],
        group_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> list[appointment_slots.SlotRecord]:
        """Every stored slot of the group: templates, then explicit slots by day."""
        require(principal, "org.read", await hall_place(pool, hall_id, field="path.hall_id"))
        return await appointment_slots.slot_records(pool, hall_id, group_id)

    @put("/groups/{group_id:int}/slot-templates")
    async def set_templates(
        self,
        hall_id: FromPath[int],
        group_id: FromPath[int],
        data: JSONBody[list[appointment_slots.SlotIn]],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> list[appointment_slots.SlotRecord]:
        """Replace the group's slots of every working day."""
        place = await hall_place(pool, hall_id, field="path.hall_id")
        actor = require(principal, "queue.configure", place)
        return await appointment_slots.set_slots(pool, actor, place, group_id, None, data)

    @put("/groups/{group_id:int}/slots/{day:str}")
    async def set_day_slots(
        self,
        hall_id: FromPath[int],
        group_id: FromPath[int],
        day: FromPath[str],
        data: JSONBody[list[appointment_slots.SlotIn]],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> list[appointment_slots.SlotRecord]:
        """Set the explicit slots of one day (they replace the templates that day; an empty
        list restores the templates)."""
        the_day: date = parse_day(day, "path.day")
        place = await hall_place(pool, hall_id, field="path.hall_id")
        actor = require(principal, "queue.configure", place)
        return await appointment_slots.set_slots(pool, actor, place, group_id, the_day, data)
