"""Appointments (O2, 预约) on PostgreSQL: slots, booking, cancelling, check-in, no-shows and
reminders. The rules are hub/domain/appointment.py; the working days hub/services/calendar.py.

Capacity under concurrency
    A booking takes a transaction-level advisory lock on its slot (group, day, start), then
    counts the slot's appointments that are not cancelled: two bookings of the last seat are
    serialised, and the second sees the first's row (READ COMMITTED reads what committed
    before each statement) and gets :class:`~hub.domain.appointment.SlotFull`. One active
    appointment per document, group and day is a partial unique index.

Check-in is one transaction
    :func:`check_in` checks the state and the window first (a refusal changes nothing), then
    issues the ticket through hub.services.tickets.issue_ticket (priority and source
    ``appointment``) and, inside that same transaction, locks the appointment, checks it
    again (a concurrent check-in of the same code waits and then finds it checked in) and
    records the ticket on it. The ticket, its ``ticket_issued`` event and the check-in
    commit together or not at all; the ticket carries the appointment's masked name,
    document and phone.

Jobs (leader, hub/runtime.py)
    :func:`mark_no_shows`: ``booked`` appointments whose check-in window closed become
    ``no_show`` (counted per document: the booking limit of BookingPolicy).
    :func:`enqueue_reminders`: the day before (hall-local 09:00-20:00), an
    ``appointment_reminder`` SMS for each booking with a phone, through the notification
    outbox (hub/services/notify.py; the key ``appointment_reminder:<id>:<day>`` makes it
    once only).
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta
from typing import Annotated, TypeAlias

import asyncpg
import msgspec
import structlog

from hub.domain import identity
from hub.domain.access import Place
from hub.domain.appointment import (
    APPOINTMENT_STATUSES,
    AlreadyBooked,
    AlreadyCheckedIn,
    AppointmentCancelled,
    AppointmentStatus,
    BookingPolicy,
    CheckInPolicy,
    NotAWorkingDay,
    SlotClosed,
    SlotDef,
    SlotFull,
    check_code,
    day_slots,
    find_slot,
    make_code,
    require_bookable,
    require_booked,
    slot_start_at,
)
from hub.domain.errors import Conflict, InvalidInput, NotFound
from hub.domain.notification import mask_phone
from hub.domain.queue import GroupClosed, PriorityPolicy, service_day
from hub.services import audit, calendar, notify
from hub.services.appointment_slots import hall_group, slots_between
from hub.services.events import EventWriter, Tx
from hub.services.tickets import IdDocumentIn, IssuedTicket, Phone, TicketRequest, issue_ticket

log = structlog.get_logger("hub.services.appointments")

Executor: TypeAlias = "asyncpg.Connection | asyncpg.Pool"

# A check-in code typed on another day than its appointment's is looked for this far.
NEARBY_DAYS = 14
CODE_ATTEMPTS = 20
# Reminders go out the day before, hall-local, within these hours (no SMS at night).
REMINDER_FROM_HOUR = 9
REMINDER_UNTIL_HOUR = 20


class BookingRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A citizen's booking: the group, the day and the slot's start, the identity document
    (Q4 rules), a name, and optionally a mobile number for the reminder."""

    group_id: Annotated[int, msgspec.Meta(ge=1)]
    service_day: date
    slot_start: time
    id_document: IdDocumentIn
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    phone: Phone | None = None


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A cancellation: the day of the appointment (codes are unique per day), and the
    document it was booked with (not needed when staff cancel)."""

    service_day: date
    id_document: IdDocumentIn | None = None


class DocumentCheckIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A check-in by the identity card read at a kiosk or reader."""

    id_document: IdDocumentIn


class AppointmentView(msgspec.Struct, frozen=True, kw_only=True):
    """An appointment with masked personal data only, and its check-in window."""

    id: int
    code: str
    hall_id: int
    group_id: int
    group_name: str
    service_day: date
    slot_start: time
    slot_end: time
    status: AppointmentStatus
    id_masked: str
    name_masked: str | None
    phone_masked: str | None
    checkin_opens: datetime
    checkin_closes: datetime
    ticket_number: str | None
    created_at: datetime
    checked_in_at: datetime | None
    cancelled_at: datetime | None


class CheckedIn(msgspec.Struct, frozen=True, kw_only=True):
    """A check-in: the appointment, now ``checked_in``, and its ticket (print it)."""

    appointment: AppointmentView
    ticket: IssuedTicket


class StatusCount(msgspec.Struct, frozen=True, kw_only=True):
    status: AppointmentStatus
    count: int


class AppointmentList(msgspec.Struct, frozen=True, kw_only=True):
    """A hall's appointments of one day for its staff, with a count per status (no-shows
    included)."""

    hall_id: int
    service_day: date
    counts: list[StatusCount]
    appointments: list[AppointmentView]


class _Row(msgspec.Struct, frozen=True, kw_only=True):
    """An appointment with what its checks need."""

    id: int
    hall_id: int
    group_id: int
    service_day: date
    slot_start: time
    status: AppointmentStatus
    id_key: str
    timezone: str
    checkin_early_minutes: int
    checkin_late_minutes: int

    @property
    def checkin(self) -> CheckInPolicy:
        return CheckInPolicy(
            early_minutes=self.checkin_early_minutes, late_minutes=self.checkin_late_minutes
        )


_VIEW = """
    SELECT a.id, a.code, a.hall_id, a.group_id, g.name AS group_name, a.service_day,
           a.slot_start, a.slot_end, a.status, a.id_masked, a.name_masked, a.phone,
           t.number AS ticket_number, a.created_at, a.checked_in_at, a.cancelled_at,
           h.timezone, h.checkin_early_minutes, h.checkin_late_minutes
    FROM appointment a JOIN service_group g ON g.id = a.group_id
    JOIN hall h ON h.id = a.hall_id
    LEFT JOIN ticket t ON t.id = a.ticket_id
"""
_ROW = """
    SELECT a.id, a.hall_id, a.group_id, a.service_day, a.slot_start, a.status, a.id_key,
           h.timezone, h.checkin_early_minutes, h.checkin_late_minutes
    FROM appointment a JOIN hall h ON h.id = a.hall_id
"""


def _view(row: asyncpg.Record) -> AppointmentView:
    policy = CheckInPolicy(
        early_minutes=row["checkin_early_minutes"], late_minutes=row["checkin_late_minutes"]
    )
    opens, closes = policy.window(row["service_day"], row["slot_start"], row["timezone"])
    values = dict(row)
    phone = values.pop("phone")
    values.pop("timezone")
    values.update(
        phone_masked=mask_phone(phone) if phone else None,
        checkin_opens=opens,
        checkin_closes=closes,
    )
    return msgspec.convert(values, AppointmentView)


async def get_appointment(db: Executor, appointment_id: int) -> AppointmentView:
    row = await db.fetchrow(f"{_VIEW} WHERE a.id = $1", appointment_id)
    if row is None:
        raise NotFound(f"appointment {appointment_id} does not exist", field="path.code")
    return _view(row)


# --- booking and cancelling ---------------------------------------------------------------


async def book(
    pool: asyncpg.Pool, now: datetime, id_key: bytes, hall_id: int, request: BookingRequest
) -> AppointmentView:
    """Book a seat in a slot (O2).

    Raises:
        InvalidIdDocument: a malformed document (``body.id_document``).
        NotFound: no such group (``body.group_id``) or slot that day (``body.slot_start``).
        GroupClosed: the group takes no bookings (inactive).
        InvalidInput: a past day or one beyond the hall's horizon (``body.service_day``).
        NotAWorkingDay: a holiday, weekend or closure (``body.service_day``).
        SlotClosed: the slot has started.
        TooManyNoShows: the document missed too many appointments lately.
        AlreadyBooked: the document holds an appointment for this group that day.
        SlotFull: no seat left.
    """
    document = identity.parse_document(
        request.id_document.kind, request.id_document.number, field="body.id_document"
    )
    key = identity.lookup_key(document, id_key)
    day = request.service_day
    async with pool.acquire() as conn, conn.transaction():
        hall = await hall_group(conn, hall_id, request.group_id, field="body.group_id")
        if not hall.active:
            raise GroupClosed("this service takes no appointments now", field="body.group_id")
        policy = BookingPolicy(days_ahead=hall.appointment_days)
        policy.check_day(day, service_day(now, hall.timezone))
        answer = await calendar.day_of(conn, hall_id, day)
        if not answer.working:
            why = f" ({answer.name})" if answer.name else ""
            raise NotAWorkingDay(
                f"{day} is not a working day of the hall{why}", field="body.service_day"
            )
        templates, explicit = await slots_between(conn, request.group_id, day, day)
        slot = find_slot(day_slots(True, templates, explicit.get(day, [])), request.slot_start)
        if slot is None:
            raise NotFound(
                f"no slot starts at {request.slot_start:%H:%M} that day", field="body.slot_start"
            )
        require_bookable(now, day, slot.start, hall.timezone)
        no_shows = await conn.fetchval(
            """SELECT count(*) FROM appointment WHERE hall_id = $1 AND id_key = $2
               AND status = 'no_show' AND service_day > $3""",
            hall_id,
            key,
            service_day(now, hall.timezone) - timedelta(days=policy.no_show_days),
        )
        policy.check_no_shows(no_shows)
        if await conn.fetchval(
            """SELECT 1 FROM appointment WHERE group_id = $1 AND service_day = $2
               AND id_key = $3 AND status IN ('booked', 'checked_in')""",
            request.group_id,
            day,
            key,
        ):
            raise AlreadyBooked(
                "this document has an appointment for this service that day",
                field="body.id_document.number",
            )
        # The slot's seats are counted by one booking at a time.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"appointment:{request.group_id}:{day.isoformat()}:{slot.start.isoformat()}",
        )
        taken = await conn.fetchval(
            """SELECT count(*) FROM appointment WHERE group_id = $1 AND service_day = $2
               AND slot_start = $3 AND status <> 'cancelled'""",
            request.group_id,
            day,
            slot.start,
        )
        if taken >= slot.capacity:
            raise SlotFull(
                f"the {slot.start:%H:%M}-{slot.end:%H:%M} slot is fully booked",
                field="body.slot_start",
            )
        appointment_id = await _insert(conn, now, hall_id, request, slot, document, key)
        view = await get_appointment(conn, appointment_id)
    log.info(
        "appointment_booked",
        hall=hall_id,
        group=request.group_id,
        day=day.isoformat(),
        slot=slot.start.isoformat(),
        appointment=appointment_id,
    )
    return view


async def _insert(
    conn: asyncpg.Connection,
    now: datetime,
    hall_id: int,
    request: BookingRequest,
    slot: SlotDef,
    document: identity.IdDocument,
    key: str,
) -> int:
    """Insert the appointment with a fresh check-in code (retried on a code taken that day)."""
    for _ in range(CODE_ATTEMPTS):
        code = make_code(secrets.randbelow(1_000_000))
        try:
            async with conn.transaction():  # a savepoint: a taken code costs only this insert
                appointment_id: int = await conn.fetchval(
                    """INSERT INTO appointment (hall_id, group_id, service_day, slot_start,
                           slot_end, code, id_kind, id_key, id_masked, name_masked, phone,
                           created_at)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                       RETURNING id""",
                    hall_id,
                    request.group_id,
                    request.service_day,
                    slot.start,
                    slot.end,
                    code,
                    document.kind,
                    key,
                    identity.mask_number(document.number),
                    identity.mask_name(request.name),
                    request.phone,
                    now,
                )
            return appointment_id
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "appointment_document_idx":
                raise AlreadyBooked(
                    "this document has an appointment for this service that day",
                    field="body.id_document.number",
                ) from exc
            if exc.constraint_name != "appointment_hall_id_service_day_code_key":
                raise
    raise Conflict("no free check-in code was found for that day; try again")


async def cancel(
    pool: asyncpg.Pool,
    now: datetime,
    id_key: bytes,
    hall_id: int,
    code: str,
    request: CancelRequest,
    *,
    actor: audit.Actor | None = None,
    place: Place | None = None,
) -> AppointmentView:
    """Cancel the appointment with ``code`` on ``request.service_day``: by the citizen
    (the document it was booked with) or by staff (``actor``, audited). Its seat is free
    again.

    Raises:
        InvalidInput: a citizen's request without a document (``body.id_document``).
        NotFound: no such appointment, or another document's (``path.code``).
        AppointmentCancelled, AlreadyCheckedIn: already so.
        SlotClosed: its check-in window has closed (a no-show is not cancelled).
    """
    check_code(code)
    key = None
    if actor is None:
        if request.id_document is None:
            raise InvalidInput(
                "the document the appointment was booked with is needed",
                field="body.id_document",
            )
        document = identity.parse_document(
            request.id_document.kind, request.id_document.number, field="body.id_document"
        )
        key = identity.lookup_key(document, id_key)
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchrow(
            f"""{_ROW} WHERE a.hall_id = $1 AND a.service_day = $2 AND a.code = $3
                FOR UPDATE OF a""",
            hall_id,
            request.service_day,
            code,
        )
        if found is None or (key is not None and found["id_key"] != key):
            raise NotFound("no appointment has this code on that day", field="path.code")
        row = msgspec.convert(dict(found), _Row)
        if row.status == "no_show":
            raise SlotClosed("this appointment was missed; it cannot be cancelled any more")
        if row.status == "cancelled":
            raise AppointmentCancelled("this appointment was cancelled already")
        if row.status == "checked_in":
            raise AlreadyCheckedIn("this appointment has checked in: it is served, not cancelled")
        _, closes = row.checkin.window(row.service_day, row.slot_start, row.timezone)
        if now > closes:
            raise SlotClosed("this appointment's time has passed")
        await conn.execute(
            "UPDATE appointment SET status = 'cancelled', cancelled_at = $2 WHERE id = $1",
            row.id,
            now,
        )
        if actor is not None:
            await audit.record(
                conn,
                actor,
                "appointment.cancel",
                "appointment",
                row.id,
                place=place,
                before={"status": row.status},
                after={"status": "cancelled"},
            )
        view = await get_appointment(conn, row.id)
    log.info("appointment_cancelled", hall=hall_id, appointment=row.id, by_staff=actor is not None)
    return view


# --- check-in -----------------------------------------------------------------------------


async def _by_code(db: Executor, hall_id: int, code: str, today: date) -> _Row:
    """Today's appointment with ``code``, else the nearest other day's (whose window then
    tells too early or too late)."""
    found = await db.fetchrow(
        f"""{_ROW} WHERE a.hall_id = $1 AND a.code = $2
                   AND a.service_day BETWEEN $3::date - {NEARBY_DAYS} AND $3::date + {NEARBY_DAYS}
            ORDER BY a.service_day = $3 DESC, abs(a.service_day - $3), a.id DESC
            LIMIT 1""",
        hall_id,
        code,
        today,
    )
    if found is None:
        raise NotFound("no appointment has this check-in code", field="path.code")
    return msgspec.convert(dict(found), _Row)


async def _by_document(db: Executor, hall_id: int, key: str, today: date, now: datetime) -> _Row:
    """The document's appointment to check in today: a booked one whose window is open,
    else the next booked one (too early) or the last (too late), else any (its state)."""
    rows = [
        msgspec.convert(dict(r), _Row)
        for r in await db.fetch(
            f"{_ROW} WHERE a.hall_id = $1 AND a.id_key = $2 AND a.service_day = $3 "
            "ORDER BY a.slot_start, a.id",
            hall_id,
            key,
            today,
        )
    ]
    if not rows:
        raise NotFound("this document has no appointment here today", field="body.id_document")
    booked = [r for r in rows if r.status == "booked"]
    for row in booked:
        opens, closes = row.checkin.window(row.service_day, row.slot_start, row.timezone)
        if opens <= now <= closes:
            return row
    for row in booked:
        opens, _ = row.checkin.window(row.service_day, row.slot_start, row.timezone)
        if now < opens:
            return row
    return booked[-1] if booked else rows[-1]


async def check_in(
    events: EventWriter,
    now: datetime,
    id_key: bytes,
    policy: PriorityPolicy,
    hall_id: int,
    *,
    code: str | None = None,
    document: IdDocumentIn | None = None,
    device_id: int | None = None,
    actor: audit.Actor | None = None,
    place: Place | None = None,
    print_base_url: str | None = None,
) -> CheckedIn:
    """Check an appointment in by its code or the document it was booked with; inside its
    window a ticket of priority ``appointment`` is issued (module docstring), printed by the
    kiosk's printer when ``print_base_url`` is given and one can print (hub/services/printing).

    Raises:
        NotFound: no such code (``path.code``) or no appointment today for the document
            (``body.id_document``).
        CheckinTooEarly, CheckinTooLate: outside the window (nothing changes).
        AppointmentCancelled, AlreadyCheckedIn: see hub.domain.appointment.
        HallClosed, GroupClosed: the queue issues no ticket now (hub.services.tickets).
    """
    if (code is None) == (document is None):
        raise InvalidInput("check in by a code or by a document", field="body")
    timezone = await events.pool.fetchval("SELECT timezone FROM hall WHERE id = $1", hall_id)
    if timezone is None:
        raise NotFound(f"hall {hall_id} does not exist", field="path.hall_id")
    today = service_day(now, timezone)
    if code is not None:
        row = await _by_code(events.pool, hall_id, check_code(code), today)
    else:
        assert document is not None
        parsed = identity.parse_document(document.kind, document.number, field="body.id_document")
        row = await _by_document(
            events.pool, hall_id, identity.lookup_key(parsed, id_key), today, now
        )
    # Refusals before anything is written.
    require_booked(row.status)
    row.checkin.check(now, row.service_day, row.slot_start, row.timezone)

    async def record(tx: Tx, ticket_id: int) -> None:
        status = await tx.conn.fetchval(
            "SELECT status FROM appointment WHERE id = $1 FOR UPDATE", row.id
        )
        require_booked(status)  # a concurrent check-in of the same appointment won
        await tx.conn.execute(
            """UPDATE appointment SET status = 'checked_in', ticket_id = $2, checked_in_at = $3
               WHERE id = $1""",
            row.id,
            ticket_id,
            now,
        )
        await tx.conn.execute(
            """UPDATE ticket t SET id_kind = a.id_kind, id_key = a.id_key,
                      id_masked = a.id_masked, name_masked = a.name_masked, phone = a.phone
               FROM appointment a WHERE a.id = $1 AND t.id = $2""",
            row.id,
            ticket_id,
        )
        if actor is not None:
            await audit.record(
                tx.conn,
                actor,
                "appointment.check_in",
                "appointment",
                row.id,
                place=place,
                after={"ticket_id": ticket_id},
            )

    ticket = await issue_ticket(
        events,
        now,
        id_key,
        policy,
        hall_id,
        TicketRequest(group_id=row.group_id, priority="appointment"),
        source="appointment",
        caller="appointment",
        device_id=device_id,
        actor=actor,
        place=place,
        within=record,
        print_base_url=print_base_url,
    )
    log.info(
        "appointment_checked_in", hall=hall_id, appointment=row.id, ticket=ticket.ticket.number
    )
    return CheckedIn(appointment=await get_appointment(events.pool, row.id), ticket=ticket)


# --- lists and jobs -----------------------------------------------------------------------


async def hall_appointments(
    db: Executor,
    hall_id: int,
    day: date,
    *,
    group_id: int | None = None,
    status: AppointmentStatus | None = None,
) -> AppointmentList:
    """The hall's appointments of ``day`` by slot, with a count per status."""
    rows = await db.fetch(
        f"""{_VIEW} WHERE a.hall_id = $1 AND a.service_day = $2
                    AND ($3::bigint IS NULL OR a.group_id = $3)
                    AND ($4::text IS NULL OR a.status = $4)
            ORDER BY a.slot_start, a.group_id, a.id""",
        hall_id,
        day,
        group_id,
        status,
    )
    counted = await db.fetch(
        """SELECT status, count(*) AS n FROM appointment
           WHERE hall_id = $1 AND service_day = $2 AND ($3::bigint IS NULL OR group_id = $3)
           GROUP BY status""",
        hall_id,
        day,
        group_id,
    )
    by_status = {r["status"]: r["n"] for r in counted}
    return AppointmentList(
        hall_id=hall_id,
        service_day=day,
        counts=[StatusCount(status=s, count=by_status.get(s, 0)) for s in APPOINTMENT_STATUSES],
        appointments=[_view(r) for r in rows],
    )


async def mark_no_shows(conn: asyncpg.Connection, now: datetime) -> int:
    """Booked appointments whose check-in window has closed become ``no_show`` (each
    hall's time zone and window). Returns how many."""
    rows = await conn.fetch(
        """UPDATE appointment a SET status = 'no_show'
           FROM hall h
           WHERE h.id = a.hall_id AND a.status = 'booked'
             AND a.service_day <= ($1::timestamptz AT TIME ZONE h.timezone)::date
             AND ((a.service_day + a.slot_start) AT TIME ZONE h.timezone)
                 + make_interval(mins => h.checkin_late_minutes) < $1
           RETURNING a.hall_id""",
        now,
    )
    per_hall: dict[int, int] = {}
    for r in rows:
        per_hall[r["hall_id"]] = per_hall.get(r["hall_id"], 0) + 1
    for hall_id, n in sorted(per_hall.items()):
        log.info("appointments_no_show", hall=hall_id, count=n)
    return len(rows)


async def no_show_count(db: Executor, hall_id: int, key: str, since: date) -> int:
    """The no-shows of the document with lookup key ``key`` in the hall since ``since``."""
    count: int = await db.fetchval(
        """SELECT count(*) FROM appointment
           WHERE hall_id = $1 AND id_key = $2 AND status = 'no_show' AND service_day >= $3""",
        hall_id,
        key,
        since,
    )
    return count


async def enqueue_reminders(conn: asyncpg.Connection, now: datetime) -> int:
    """Enqueue the reminder SMS of tomorrow's booked appointments with a phone, for halls
    where it is now between REMINDER_FROM_HOUR and REMINDER_UNTIL_HOUR. Idempotent (one key
    per appointment and day). Returns how many were new."""
    rows = await conn.fetch(
        f"""SELECT a.id, a.hall_id, a.service_day, a.slot_start, a.phone, g.name AS group_name,
                   h.name AS hall_name, h.timezone
            FROM appointment a JOIN hall h ON h.id = a.hall_id
            JOIN service_group g ON g.id = a.group_id
            WHERE a.status = 'booked' AND a.phone IS NOT NULL
              AND a.service_day = ($1::timestamptz AT TIME ZONE h.timezone)::date + 1
              AND extract(hour FROM $1::timestamptz AT TIME ZONE h.timezone)
                  BETWEEN {REMINDER_FROM_HOUR} AND {REMINDER_UNTIL_HOUR - 1}
              AND NOT EXISTS (
                  SELECT 1 FROM notification n
                  WHERE n.key = 'appointment_reminder:' || a.id || ':'
                                || to_char(a.service_day, 'YYYY-MM-DD'))
            ORDER BY a.id""",
        now,
    )
    new = 0
    for r in rows:
        reminder = notify.appointment_reminder(
            appointment_id=r["id"],
            day=r["service_day"],
            start=r["slot_start"],
            group_name=r["group_name"],
            hall_name=r["hall_name"],
            phone=r["phone"],
            hall_id=r["hall_id"],
            expires_at=slot_start_at(r["service_day"], r["slot_start"], r["timezone"]),
        )
        new += await notify.enqueue(conn, reminder)
    if new:
        log.info("appointment_reminders", count=new)
    return new
