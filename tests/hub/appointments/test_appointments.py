"""Appointments (O2) on real PostgreSQL, with the official 2025 calendar (National Day:
2025-10-01..08 off, Sunday 2025-09-28 and Saturday 2025-10-11 make-up working days) and an
injected clock: slots, booking under concurrency, check-in into the queue, no-shows."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from hub.domain.appointment import (
    AlreadyBooked,
    AlreadyCheckedIn,
    CheckinTooLate,
    NotAWorkingDay,
    SlotFull,
    TooManyNoShows,
)
from hub.domain.errors import NotFound
from hub.domain.identity import check_character
from hub.services import appointment_slots, appointments
from hub.services.appointment_slots import SlotIn
from hub.services.appointments import BookingRequest, CancelRequest
from hub.services.audit import Actor
from hub.services.queue import TicketRequest
from hub.services.tickets import IdDocumentIn
from storage.pool import create_pool
from tests.hub.api.conftest import Client, assert_problem, bearer, error_fields
from tests.hub.queue.world import QueueWorld

SHANGHAI = ZoneInfo("Asia/Shanghai")
SYSTEM = Actor.system("test")


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """Hall-local (Shanghai) wall time as an aware UTC instant."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def resident_id(n: int) -> IdDocumentIn:
    first17 = f"11010119900101{n:03d}"
    return IdDocumentIn(kind="resident_id", number=first17 + check_character(first17))


FRIDAY = date(2025, 9, 26)
MAKEUP_SUNDAY = date(2025, 9, 28)
TUESDAY = date(2025, 9, 30)


async def _templates(w: QueueWorld, *slots: tuple[time, time, int], group: str = "A") -> None:
    await appointment_slots.set_slots(
        w.hub.pool,
        SYSTEM,
        w.place,
        w.groups[group],
        None,
        [SlotIn(start=s, end=e, capacity=c) for s, e, c in slots],
    )


def _request(
    w: QueueWorld, day: date, start: time, person: int = 1, group: str = "A", **kw: object
) -> BookingRequest:
    return BookingRequest(
        group_id=w.groups[group],
        service_day=day,
        slot_start=start,
        id_document=resident_id(person),
        name="张三丰",
        **kw,  # type: ignore[arg-type]
    )


async def _book(w: QueueWorld, day: date, start: time, person: int = 1, **kw: object):  # type: ignore[no-untyped-def]
    return await appointments.book(
        w.hub.pool, w.clock(), _key(w), w.hall_id, _request(w, day, start, person, **kw)
    )


def _key(w: QueueWorld) -> bytes:
    return w.hub.settings.id_hmac_key.encode()


# -- slots and the calendar ------------------------------------------------------------------


async def test_slots_skip_the_national_day_holiday_and_open_on_its_make_up_working_days(
    db: asyncpg.Pool, api: tuple[Client, QueueWorld]
):
    client, w = api
    w.clock.now = at(FRIDAY, 10)
    templates = [
        {"start": "10:00:00", "end": "11:00:00", "capacity": 2},
        {"start": "14:00:00", "end": "15:00:00", "capacity": 5},
    ]
    _, manager = await _manager(db, w)
    url = f"/api/halls/{w.hall_id}/groups/{w.groups['A']}"
    put = await client.put(f"{url}/slot-templates", json=templates, headers=bearer(manager))
    assert put.status_code == 200, put.text

    listed = await client.get(f"{url}/slots?from=2025-09-27&days=16")
    assert listed.status_code == 200, listed.text
    days = {d["day"]: d for d in listed.json()}
    assert sorted(days) == [
        "2025-09-28",  # Sunday, 国庆节调休上班
        "2025-09-29",
        "2025-09-30",
        "2025-10-09",
        "2025-10-10",
        "2025-10-11",  # Saturday, 国庆节调休上班
    ]
    assert days["2025-09-28"]["name"] == "国庆节调休上班"
    assert [s["start"] for s in days["2025-09-28"]["slots"]] == ["10:00:00", "14:00:00"]
    assert days["2025-09-28"]["slots"][0] == {
        "start": "10:00:00",
        "end": "11:00:00",
        "capacity": 2,
        "booked": 0,
        "available": 2,
        "open": True,
    }
    # Fourteen days ahead from Friday 26 September: 10 October, not 11 October.
    assert all(s["open"] for s in days["2025-10-10"]["slots"])
    assert not any(s["open"] for s in days["2025-10-11"]["slots"])

    # Booking on the make-up Sunday works; on a holiday it is refused and stores nothing.
    person = {"kind": "resident_id", "number": resident_id(7).number}
    body = {"group_id": w.groups["A"], "slot_start": "10:00:00", "id_document": person}
    booked = await client.post(
        f"/api/halls/{w.hall_id}/appointments",
        json={**body, "service_day": "2025-09-28", "name": "李四"},
    )
    assert booked.status_code == 201, booked.text
    assert booked.json()["name_masked"] == "李*"
    assert resident_id(7).number not in booked.text
    holiday = await client.post(
        f"/api/halls/{w.hall_id}/appointments",
        json={**body, "service_day": "2025-10-03", "name": "李四"},
    )
    problem = assert_problem(holiday, 409, "not_a_working_day")
    assert error_fields(problem) == ["body.service_day"]
    assert await db.fetchval("SELECT count(*) FROM appointment") == 1
    again = await client.get(f"{url}/slots?from=2025-09-28&days=1")
    assert again.json()[0]["slots"][0]["available"] == 1


async def test_an_explicit_day_replaces_the_templates_and_a_closure_removes_the_day(
    db: asyncpg.Pool, qworld: QueueWorld
):
    w = qworld
    w.clock.now = at(FRIDAY, 10)
    await _templates(w, (time(10), time(11), 2))
    await appointment_slots.set_slots(
        w.hub.pool,
        SYSTEM,
        w.place,
        w.groups["A"],
        TUESDAY,
        [SlotIn(start=time(15), end=time(16, 30), capacity=1)],
    )
    await db.execute(
        "INSERT INTO hall_closure (hall_id, day, reason) VALUES ($1, $2, '设备检修')",
        w.hall_id,
        date(2025, 9, 29),
    )
    days = await appointment_slots.available_slots(
        w.hub.pool, w.hall_id, w.groups["A"], MAKEUP_SUNDAY, 3, w.clock()
    )
    assert [(d.day, [s.start for s in d.slots]) for d in days] == [
        (MAKEUP_SUNDAY, [time(10)]),
        (TUESDAY, [time(15)]),
    ]
    with pytest.raises(NotFound) as no_slot:
        await _book(w, TUESDAY, time(10))
    assert no_slot.value.field == "body.slot_start"
    with pytest.raises(NotAWorkingDay):
        await _book(w, date(2025, 9, 29), time(10))


# -- booking ---------------------------------------------------------------------------------


async def test_two_bookings_of_the_last_seat_get_one_seat(
    db: asyncpg.Pool, database_url: str, qworld: QueueWorld
):
    w = qworld
    w.clock.now = at(FRIDAY, 10)
    await _templates(w, (time(10), time(11), 2))
    await _book(w, MAKEUP_SUNDAY, time(10), person=1)
    # Four bookings at once, each on its own open connection: they reach the seat count
    # together, and only the slot's lock lets one of them through.
    pool = await create_pool(database_url, min_size=4, max_size=4)
    try:
        results = await asyncio.gather(
            *(
                appointments.book(
                    pool, w.clock(), _key(w), w.hall_id, _request(w, MAKEUP_SUNDAY, time(10), p)
                )
                for p in (2, 3, 4, 5)
            ),
            return_exceptions=True,
        )
    finally:
        await pool.close()
    assert sum(isinstance(r, SlotFull) for r in results) == 3, results
    assert sum(isinstance(r, appointments.AppointmentView) for r in results) == 1
    assert await db.fetchval("SELECT count(*) FROM appointment") == 2
    codes = await db.fetch("SELECT code FROM appointment")
    assert len({r["code"] for r in codes}) == 2


async def test_one_active_appointment_per_document_and_a_cancel_frees_its_seat(
    db: asyncpg.Pool, qworld: QueueWorld
):
    w = qworld
    w.clock.now = at(FRIDAY, 10)
    await _templates(w, (time(10), time(11), 1), (time(14), time(15), 1))
    first = await _book(w, MAKEUP_SUNDAY, time(10), person=1)
    with pytest.raises(AlreadyBooked):
        await _book(w, MAKEUP_SUNDAY, time(14), person=1)
    with pytest.raises(SlotFull):
        await _book(w, MAKEUP_SUNDAY, time(10), person=2)
    # Another group the same day is another appointment.
    await _templates(w, (time(10), time(11), 1), group="B")
    await _book(w, MAKEUP_SUNDAY, time(10), person=1, group="B")
    # Someone else's document does not cancel it.
    with pytest.raises(NotFound):
        await appointments.cancel(
            w.hub.pool,
            w.clock(),
            _key(w),
            w.hall_id,
            first.code,
            CancelRequest(service_day=MAKEUP_SUNDAY, id_document=resident_id(2)),
        )
    cancelled = await appointments.cancel(
        w.hub.pool,
        w.clock(),
        _key(w),
        w.hall_id,
        first.code,
        CancelRequest(service_day=MAKEUP_SUNDAY, id_document=resident_id(1)),
    )
    assert cancelled.status == "cancelled"
    await _book(w, MAKEUP_SUNDAY, time(10), person=2)
    await _book(w, MAKEUP_SUNDAY, time(14), person=1)


# -- check-in --------------------------------------------------------------------------------


async def test_check_in_outside_the_window_is_a_problem_and_changes_nothing(
    db: asyncpg.Pool, api: tuple[Client, QueueWorld]
):
    client, w = api
    w.clock.now = at(TUESDAY, 9)
    _, manager = await _manager(db, w)
    kiosk = await _kiosk(db, w)
    url = f"/api/halls/{w.hall_id}/groups/{w.groups['A']}/slot-templates"
    slots = [{"start": "10:00:00", "end": "11:00:00", "capacity": 5}]
    assert (await client.put(url, json=slots, headers=bearer(manager))).status_code == 200
    person = {"kind": "resident_id", "number": resident_id(1).number}
    booked = await client.post(
        f"/api/halls/{w.hall_id}/appointments",
        json={
            "group_id": w.groups["A"],
            "service_day": "2025-09-30",
            "slot_start": "10:00:00",
            "id_document": person,
            "name": "王五",
        },
    )
    assert booked.status_code == 201, booked.text
    code = booked.json()["code"]
    check_in = f"/api/halls/{w.hall_id}/appointments/{code}/check-in"

    async def unchanged() -> None:
        row = await db.fetchrow("SELECT status, ticket_id, checked_in_at FROM appointment")
        assert tuple(row) == ("booked", None, None)
        assert await db.fetchval("SELECT count(*) FROM ticket") == 0
        assert await db.fetchval("SELECT count(*) FROM ticket_counter") == 0

    w.clock.now = at(TUESDAY, 9, 29)  # the window opens at 09:30
    early = await client.post(check_in, headers=bearer(kiosk))
    problem = assert_problem(early, 409, "checkin_too_early")
    assert "09:30-10:15" in problem["detail"]
    await unchanged()
    by_card = await client.post(
        f"/api/halls/{w.hall_id}/appointments/check-in",
        json={"id_document": person},
        headers=bearer(kiosk),
    )
    assert_problem(by_card, 409, "checkin_too_early")
    await unchanged()
    w.clock.now = at(TUESDAY, 10, 16)  # it closed at 10:15
    late = await client.post(check_in, headers=bearer(kiosk))
    assert_problem(late, 409, "checkin_too_late")
    await unchanged()
    # Nobody but the hall's check-in devices and staff checks in.
    w.clock.now = at(TUESDAY, 10)
    assert_problem(await client.post(check_in), 401, "unauthenticated")
    assert await db.fetchval("SELECT count(*) FROM ticket") == 0
    inside = await client.post(check_in, headers=bearer(kiosk))
    assert inside.status_code == 201, inside.text
    assert inside.json()["appointment"]["status"] == "checked_in"
    assert inside.json()["ticket"]["ticket"]["priority"] == "appointment"
    again = await client.post(check_in, headers=bearer(kiosk))
    assert_problem(again, 409, "already_checked_in")
    assert await db.fetchval("SELECT count(*) FROM ticket") == 1
    listed = await client.get(
        f"/api/halls/{w.hall_id}/appointments?day=2025-09-30", headers=bearer(w.tokens[0])
    )
    assert listed.status_code == 200, listed.text
    counts = {c["status"]: c["count"] for c in listed.json()["counts"]}
    assert counts == {"booked": 0, "cancelled": 0, "checked_in": 1, "no_show": 0}
    assert listed.json()["appointments"][0]["ticket_number"] == "A001"


async def test_check_in_issues_a_priority_ticket_called_before_later_normal_tickets(
    db: asyncpg.Pool, qworld: QueueWorld
):
    w = qworld
    w.clock.now = at(TUESDAY, 9)
    await _templates(w, (time(10), time(11), 5))
    booked = await _book(w, TUESDAY, time(10), person=1, phone="13812345678")

    async def normal() -> str:
        issued = await w.queue.issue(
            w.hall_id, TicketRequest(group_id=w.groups["A"]), source="kiosk", caller="device"
        )
        return issued.ticket.number

    w.clock.now = at(TUESDAY, 9, 30)
    early_bird = await normal()  # queued 09:30
    w.clock.now = at(TUESDAY, 9, 50)
    later = await normal()  # queued 09:50
    w.clock.now = at(TUESDAY, 9, 55)
    checked = await appointments.check_in(
        w.hub.events,  # type: ignore[arg-type]
        w.clock(),
        _key(w),
        w.queue.policy,
        w.hall_id,
        code=booked.code,
    )
    assert checked.ticket.ticket.priority == "appointment"
    ticket = await db.fetchrow(
        "SELECT source, priority, name_masked, id_masked, phone FROM ticket WHERE id = $1",
        checked.ticket.ticket_id,
    )
    assert tuple(ticket) == ("appointment", "appointment", "张**", booked.id_masked, "13812345678")
    # The appointment's boost (15 minutes) puts it before the 09:50 ticket, not before 09:30.
    await w.queue.sign_in(w.actors[0], w.place, w.windows[0])
    order = []
    for _ in range(3):
        w.clock.advance(seconds=10)
        result = await w.queue.call_next(w.actors[0], w.place, w.windows[0])
        order.append(result.called)
        await w.queue.finish(w.actors[0], w.place, w.windows[0])
    assert order == [early_bird, checked.ticket.ticket.number, later]


async def test_check_in_by_identity_card_and_a_concurrent_second_check_in(
    db: asyncpg.Pool, qworld: QueueWorld
):
    w = qworld
    w.clock.now = at(TUESDAY, 9)
    await _templates(w, (time(10), time(11), 5), (time(14), time(15), 5))
    await _book(w, TUESDAY, time(14), person=1)
    w.clock.now = at(TUESDAY, 13, 40)
    results = await asyncio.gather(
        *(
            appointments.check_in(
                w.hub.events,  # type: ignore[arg-type]
                w.clock(),
                _key(w),
                w.queue.policy,
                w.hall_id,
                document=resident_id(1),
            )
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, appointments.CheckedIn) for r in results) == 1, results
    assert sum(isinstance(r, AlreadyCheckedIn) for r in results) == 1
    assert await db.fetchval("SELECT count(*) FROM ticket") == 1
    assert await db.fetchval("SELECT last FROM ticket_counter") == 1  # the loser's number returned
    with pytest.raises(NotFound) as nobody:
        await appointments.check_in(
            w.hub.events,  # type: ignore[arg-type]
            w.clock(),
            _key(w),
            w.queue.policy,
            w.hall_id,
            document=resident_id(2),
        )
    assert nobody.value.field == "body.id_document"


# -- no-shows and reminders ------------------------------------------------------------------


async def test_no_shows_are_marked_after_the_window_and_counted(
    db: asyncpg.Pool, qworld: QueueWorld
):
    w = qworld
    w.clock.now = at(FRIDAY, 9)
    await _templates(w, (time(10), time(11), 5))
    days = [MAKEUP_SUNDAY, date(2025, 9, 29), TUESDAY]
    for day in days:
        await _book(w, day, time(10), person=1)
    await _book(w, TUESDAY, time(10), person=2)
    async with db.acquire() as conn:
        assert await appointments.mark_no_shows(conn, at(TUESDAY, 10, 15)) == 2
        assert await appointments.mark_no_shows(conn, at(TUESDAY, 10, 15)) == 0
        assert await appointments.mark_no_shows(conn, at(TUESDAY, 10, 16)) == 2
    statuses = await db.fetch("SELECT status FROM appointment")
    assert [r["status"] for r in statuses] == ["no_show"] * 4
    with pytest.raises(CheckinTooLate):
        await appointments.check_in(
            w.hub.events,  # type: ignore[arg-type]
            at(TUESDAY, 10, 20),
            _key(w),
            w.queue.policy,
            w.hall_id,
            document=resident_id(2),
        )
    listed = await appointments.hall_appointments(db, w.hall_id, TUESDAY)
    assert {c.status: c.count for c in listed.counts}["no_show"] == 2
    # Three no-shows: this document books no more for now; another still does.
    w.clock.now = at(date(2025, 10, 9), 9)
    with pytest.raises(TooManyNoShows) as barred:
        await _book(w, date(2025, 10, 10), time(10), person=1)
    assert barred.value.code == "too_many_no_shows"
    await _book(w, date(2025, 10, 10), time(10), person=2)


async def test_a_reminder_is_enqueued_once_the_day_before(db: asyncpg.Pool, qworld: QueueWorld):
    w = qworld
    w.clock.now = at(FRIDAY, 9)
    await _templates(w, (time(10), time(11), 5))
    with_phone = await _book(w, MAKEUP_SUNDAY, time(10), person=1, phone="13912345678")
    await _book(w, MAKEUP_SUNDAY, time(10), person=2)  # no phone: no reminder
    async with db.acquire() as conn:
        assert await appointments.enqueue_reminders(conn, at(FRIDAY, 12)) == 0  # two days before
        assert await appointments.enqueue_reminders(conn, at(date(2025, 9, 27), 8, 59)) == 0
        assert await appointments.enqueue_reminders(conn, at(date(2025, 9, 27), 9)) == 1
        assert await appointments.enqueue_reminders(conn, at(date(2025, 9, 27), 15)) == 0
    row = await db.fetchrow("SELECT key, kind, recipient, body, expires_at FROM notification")
    assert row["key"] == f"appointment_reminder:{with_phone.id}:2025-09-28"
    assert row["kind"] == "appointment_reminder" and row["recipient"] == "13912345678"
    assert "2025年9月28日 10:00" in row["body"] and "社保业务" in row["body"]
    assert row["expires_at"] == at(MAKEUP_SUNDAY, 10)


# -- helpers ---------------------------------------------------------------------------------


async def _manager(db: asyncpg.Pool, w: QueueWorld) -> tuple[int, str]:
    from tests.factories import make_staff

    return await make_staff(db, f"M-{w.hall_id}", [("hall_manager", "hall", w.hall_id)])


async def _kiosk(db: asyncpg.Pool, w: QueueWorld) -> str:
    from tests.factories import make_device

    _, token = await make_device(db, w.hall_id, "kiosk", "1号自助终端")
    return token
