"""Ratings (O9, 好差评): a citizen rates a served ticket once; the rating is linked to the
window and the staff member that served it.

Where ratings come from
    :func:`rate_by_token`: the citizen's ticket page (``web``), the page an SMS links to
    (``sms``) or a kiosk (``kiosk``), all by the ticket's public token.
    :func:`rate_at_window`: the window's evaluation pad (``evaluator``), by ticket id, for a
    ticket served at that window.

Each rating is one transaction on the hub's event writer: the ``rating`` row, then
``rating_received`` on ``window:<window_id>`` (:class:`WindowRating`: the grade only, the
topic is public) and on ``staff:<staff_id>`` (:class:`StaffRating`: grade and reasons, for
the staff member's own console). The events are published after commit (durable before
announced). ``rating.ticket_id`` is unique: of two ratings of one ticket at once, one is
stored and the other gets :class:`~hub.domain.rating.AlreadyRated`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated

import asyncpg
import msgspec
import structlog

from hub.domain.errors import InvalidInput, NotAllowed, NotFound
from hub.domain.rating import (
    COMMENT_MAX,
    GRADES,
    REASONS,
    AlreadyRated,
    Grade,
    Reason,
    Source,
    TicketNotFinished,
    check_rating,
    satisfaction,
)
from hub.services.events import EventWriter, Tx
from hub.services.queue_events import RatingRequest, rating_request
from realtime.topics import topic

log = structlog.get_logger("hub.services.ratings")

EVENT_RECEIVED = "rating_received"
# A hall's rating list returns at most this many ratings (newest first); counts cover all.
LIST_LIMIT = 1000
MAX_RANGE_DAYS = 366
# How long after a finish the window's pad may still ask for that ticket's rating (after a
# reconnect, the pad asks :func:`pending_request`).
REQUEST_SECONDS = 120


class RatingNew(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A rating as a citizen gives it: the grade, the reasons of a bad grade, a comment."""

    grade: Grade
    reasons: Annotated[list[Reason], msgspec.Meta(max_length=len(REASONS))] = []
    comment: Annotated[str, msgspec.Meta(max_length=COMMENT_MAX)] | None = None


class WindowRatingNew(RatingNew, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A rating from a window's evaluation pad: for which ticket."""

    ticket_id: Annotated[int, msgspec.Meta(ge=1)]


class RatingRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored rating, as the hall's managers and supervisors see it."""

    id: int
    ticket_id: int
    number: str
    hall_id: int
    window_id: int | None
    window_number: int | None
    staff_id: int | None
    staff_name: str | None
    grade: Grade
    reasons: list[Reason]
    comment: str | None
    source: Source
    device_id: int | None
    created_at: datetime
    case_id: int | None


class RatingReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What the rater gets back: the ticket's number and the rating given."""

    number: str
    grade: Grade
    reasons: list[Reason]
    source: Source
    created_at: datetime


class WindowRating(msgspec.Struct, frozen=True, kw_only=True):
    """``rating_received`` on ``window:<id>`` (public): which ticket, which grade."""

    ticket_id: int
    number: str
    window_id: int
    grade: Grade


class StaffRating(msgspec.Struct, frozen=True, kw_only=True):
    """``rating_received`` on ``staff:<id>``: the staff member's own rating, with reasons."""

    rating_id: int
    ticket_id: int
    number: str
    window_id: int | None
    grade: Grade
    reasons: list[Reason]
    source: Source
    created_at: datetime


class GradeCount(msgspec.Struct, frozen=True, kw_only=True):
    grade: Grade
    count: int


class RatingReport(msgspec.Struct, frozen=True, kw_only=True):
    """A hall's ratings of ``start``..``end`` (hall-local dates, both included).

    ``counts`` has every grade (zeros included), ``satisfaction`` is the share of good
    grades (None without ratings), ``ratings`` the newest :data:`LIST_LIMIT` of them.
    """

    hall_id: int
    start: date
    end: date
    total: int
    counts: list[GradeCount]
    satisfaction: float | None
    ratings: list[RatingRecord]
    truncated: bool


class _Ticket(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    hall_id: int
    number: str
    status: str
    window_id: int | None
    staff_id: int | None


_TICKET = "SELECT id, hall_id, number, status, window_id, staff_id FROM ticket"
_RECORD = """
    SELECT r.id, r.ticket_id, t.number, r.hall_id, r.window_id, w.number AS window_number,
           r.staff_id, s.name AS staff_name, r.grade, r.reasons, r.comment, r.source,
           r.device_id, r.created_at, r.case_id
    FROM rating r JOIN ticket t ON t.id = r.ticket_id
    LEFT JOIN "window" w ON w.id = r.window_id
    LEFT JOIN staff s ON s.id = r.staff_id
"""


def _ticket(row: asyncpg.Record | None, missing: str, field: str) -> _Ticket:
    if row is None:
        raise NotFound(missing, field=field)
    return msgspec.convert(dict(row), _Ticket)


async def rate_by_token(
    events: EventWriter,
    clock: Callable[[], datetime],
    token: str,
    new: RatingNew,
    *,
    source: Source,
    device_id: int | None = None,
    hall_id: int | None = None,
) -> RatingReceipt:
    """Rate the ticket whose public token is ``token`` (the citizen's page, an SMS link, a
    kiosk).

    Args:
        source: ``web``, ``sms`` or ``kiosk``.
        device_id, hall_id: the kiosk that sends the rating and its hall (its tickets only).

    Raises:
        InvalidInput: see :func:`hub.domain.rating.check_rating`.
        NotFound: no ticket has this token (``path.token``).
        NotAllowed: the kiosk is in another hall than the ticket.
        TicketNotFinished: the ticket has not been served yet.
        AlreadyRated: the ticket has its rating.
    """
    grade, reasons, comment = check_rating(new.grade, new.reasons, new.comment)
    async with events.transaction() as tx:
        row = await tx.conn.fetchrow(f"{_TICKET} WHERE public_token = $1", token)
        ticket = _ticket(row, "no ticket has this code", "path.token")
        if hall_id is not None and ticket.hall_id != hall_id:
            raise NotAllowed("this device rates tickets of its own hall only")
        receipt = await _store(tx, clock(), ticket, grade, reasons, comment, source, device_id)
    return receipt


async def rate_at_window(
    events: EventWriter,
    clock: Callable[[], datetime],
    hall_id: int,
    window_id: int,
    new: WindowRatingNew,
    *,
    device_id: int | None,
) -> RatingReceipt:
    """Rate a ticket from the evaluation pad of ``window_id`` (source ``evaluator``).

    Raises:
        InvalidInput: see :func:`hub.domain.rating.check_rating`.
        NotFound: the ticket was not served at this window of this hall (``body.ticket_id``).
        TicketNotFinished, AlreadyRated: as :func:`rate_by_token`.
    """
    check_rating(new.grade, new.reasons, new.comment)
    async with events.transaction() as tx:
        return await rate_at_window_in(tx, clock(), hall_id, window_id, new, device_id=device_id)


async def rate_at_window_in(
    tx: Tx,
    now: datetime,
    hall_id: int,
    window_id: int,
    new: WindowRatingNew,
    *,
    device_id: int | None,
) -> RatingReceipt:
    """:func:`rate_at_window` inside the caller's transaction (an evaluator's ``rating``
    device event, hub/services/device_events.py). Raises as :func:`rate_at_window`."""
    grade, reasons, comment = check_rating(new.grade, new.reasons, new.comment)
    row = await tx.conn.fetchrow(
        f"{_TICKET} WHERE id = $1 AND hall_id = $2 AND window_id = $3",
        new.ticket_id,
        hall_id,
        window_id,
    )
    ticket = _ticket(row, f"ticket {new.ticket_id} was not served at this window", "body.ticket_id")
    return await _store(tx, now, ticket, grade, reasons, comment, "evaluator", device_id)


async def _store(
    tx: Tx,
    now: datetime,
    ticket: _Ticket,
    grade: Grade,
    reasons: list[Reason],
    comment: str | None,
    source: Source,
    device_id: int | None,
) -> RatingReceipt:
    if ticket.status != "done":
        raise TicketNotFinished(f"ticket {ticket.number} is not served yet: rate it afterwards")
    rating_id = await tx.conn.fetchval(
        """INSERT INTO rating (ticket_id, hall_id, window_id, staff_id, grade, reasons, comment,
                               source, device_id, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (ticket_id) DO NOTHING
           RETURNING id""",
        ticket.id,
        ticket.hall_id,
        ticket.window_id,
        ticket.staff_id,
        grade,
        reasons,
        comment,
        source,
        device_id,
        now,
    )
    if rating_id is None:
        raise AlreadyRated(f"ticket {ticket.number} has been rated already")
    if ticket.window_id is not None:
        await tx.emit(
            topic("window", ticket.window_id),
            EVENT_RECEIVED,
            WindowRating(
                ticket_id=ticket.id, number=ticket.number, window_id=ticket.window_id, grade=grade
            ),
        )
    if ticket.staff_id is not None:
        await tx.emit(
            topic("staff", ticket.staff_id),
            EVENT_RECEIVED,
            StaffRating(
                rating_id=rating_id,
                ticket_id=ticket.id,
                number=ticket.number,
                window_id=ticket.window_id,
                grade=grade,
                reasons=reasons,
                source=source,
                created_at=now,
            ),
        )
    log.info(
        "rating_received",
        hall=ticket.hall_id,
        ticket=ticket.number,
        window=ticket.window_id,
        staff=ticket.staff_id,
        grade=grade,
        source=source,
    )
    return RatingReceipt(
        number=ticket.number, grade=grade, reasons=reasons, source=source, created_at=now
    )


async def ticket_rating(db: asyncpg.Pool | asyncpg.Connection, token: str) -> RatingReceipt:
    """The rating of the ticket whose public token is ``token``.

    Raises:
        NotFound: no such ticket, or it has no rating yet (``path.token``).
    """
    row = await db.fetchrow(
        """SELECT t.number, r.grade, r.reasons, r.source, r.created_at
           FROM ticket t JOIN rating r ON r.ticket_id = t.id WHERE t.public_token = $1""",
        token,
    )
    if row is None:
        raise NotFound("this ticket has no rating", field="path.token")
    return msgspec.convert(dict(row), RatingReceipt)


async def pending_request(
    db: asyncpg.Pool | asyncpg.Connection, window_id: int, now: datetime
) -> RatingRequest | None:
    """The ticket the window's pad should still ask about: the window's last finished
    ticket, finished at most :data:`REQUEST_SECONDS` ago, neither rated nor recorded as
    unrated. A pad that was offline when ``rating_requested`` went out asks for it after
    reconnecting."""
    row = await db.fetchrow(
        """SELECT t.id AS ticket_id, t.number, t.window_id, t.staff_id
           FROM ticket t
           WHERE t.window_id = $1 AND t.status = 'done' AND t.finished_at > $2
             AND NOT EXISTS (SELECT 1 FROM rating r WHERE r.ticket_id = t.id)
             AND NOT EXISTS (SELECT 1 FROM rating_unrated u WHERE u.ticket_id = t.id)
           ORDER BY t.finished_at DESC, t.id DESC LIMIT 1""",
        window_id,
        now - timedelta(seconds=REQUEST_SECONDS),
    )
    if row is None:
        return None
    return await rating_request(
        db, row["ticket_id"], row["number"], row["window_id"], row["staff_id"]
    )


async def hall_ratings(
    db: asyncpg.Pool | asyncpg.Connection, hall_id: int, start: date, end: date
) -> RatingReport:
    """The ratings of ``hall_id`` made on ``start``..``end`` (hall-local dates).

    Raises:
        NotFound: no such hall (``path.hall_id``).
        InvalidInput: ``end`` before ``start``, or more than :data:`MAX_RANGE_DAYS` days
            (``query.to``).
    """
    if end < start:
        raise InvalidInput(f"the range ends ({end}) before it starts ({start})", field="query.to")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(f"a range is at most {MAX_RANGE_DAYS} days", field="query.to")
    timezone = await db.fetchval("SELECT timezone FROM hall WHERE id = $1", hall_id)
    if timezone is None:
        raise NotFound(f"hall {hall_id} does not exist", field="path.hall_id")
    span = """r.hall_id = $1 AND r.created_at >= ($2::date::timestamp AT TIME ZONE $4)
              AND r.created_at < (($3::date + 1)::timestamp AT TIME ZONE $4)"""
    counted = await db.fetch(
        f"SELECT r.grade, count(*) AS n FROM rating r WHERE {span} GROUP BY r.grade",
        hall_id,
        start,
        end,
        timezone,
    )
    by_grade: dict[Grade, int] = {g: 0 for g in GRADES}
    for row in counted:
        by_grade[row["grade"]] = row["n"]
    total = sum(by_grade.values())
    rows = await db.fetch(
        f"{_RECORD} WHERE {span} ORDER BY r.created_at DESC, r.id DESC LIMIT {LIST_LIMIT}",
        hall_id,
        start,
        end,
        timezone,
    )
    return RatingReport(
        hall_id=hall_id,
        start=start,
        end=end,
        total=total,
        counts=[GradeCount(grade=g, count=n) for g, n in by_grade.items()],
        satisfaction=satisfaction(by_grade),
        ratings=[msgspec.convert(dict(r), RatingRecord) for r in rows],
        truncated=total > len(rows),
    )
