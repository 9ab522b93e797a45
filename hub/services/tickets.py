"""Issuing tickets (Q1, Q4): numbers from the daily counter, identity documents counted
against the hall's and the group's daily limits, one event on ``hall:<hall_id>``.

The number comes from ``ticket_counter`` (one row per group and hall-local day) inside the
issuing transaction: never duplicated (the row lock), never skipped (a rollback returns the
number), reset at the hall's midnight (a new day is a new row).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated

import asyncpg
import msgspec
import structlog

from hub.domain import identity
from hub.domain.access import Place
from hub.domain.errors import NotAllowed, NotFound
from hub.domain.queue import (
    GroupClosed,
    HallClosed,
    Priority,
    PriorityPolicy,
    TicketLimitReached,
    TicketSource,
    order_at,
    service_day,
    ticket_number,
    within_hours,
)
from hub.services import audit
from hub.services.events import EventWriter, Tx
from hub.services.printing import PrintMode, print_ticket
from hub.services.queue_events import announce
from hub.services.queue_views import TicketStatusView, ticket_status
from hub.services.turn_near import notify_turn_near

log = structlog.get_logger("hub.services.tickets")

Phone = Annotated[str, msgspec.Meta(pattern=r"^1[3-9][0-9]{9}$")]


class IdDocumentIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An identity document as read by a card reader or typed at a kiosk (Q4)."""

    kind: str
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class TicketRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request for a ticket of one service group."""

    group_id: Annotated[int, msgspec.Meta(ge=1)]
    priority: Priority = "normal"
    id_document: IdDocumentIn | None = None
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)] | None = None
    phone: Phone | None = None


class IssuedTicket(msgspec.Struct, frozen=True, kw_only=True):
    """A new ticket: its public token (the QR on paper and screen) and its status.

    ``print``: ``queued`` when a printer attached to the issuing device prints it (D1),
    ``e_ticket`` when the page shows it as a QR code instead (hub/services/printing.py)."""

    ticket_id: int
    token: str
    ticket: TicketStatusView
    print: PrintMode = "e_ticket"


# Sources from which each kind of caller may ask for a priority (Q3): the public only for
# normal tickets, devices for the green channel (a button on the machine), staff for any.
_PRIORITIES_BY_CALLER: dict[str, frozenset[str]] = {
    "public": frozenset({"normal"}),
    "device": frozenset({"normal", "green_channel"}),
    "staff": frozenset({"normal", "green_channel", "vip"}),
    # O2: an appointment's check-in (hub/services/appointments.py) issues its own priority.
    "appointment": frozenset({"appointment"}),
}


async def issue_ticket(
    events: EventWriter,
    now: datetime,
    id_key: bytes,
    policy: PriorityPolicy,
    hall_id: int,
    request: TicketRequest,
    *,
    source: TicketSource,
    caller: str,
    device_id: int | None = None,
    actor: audit.Actor | None = None,
    place: Place | None = None,
    within: Callable[[Tx, int], Awaitable[None]] | None = None,
    print_base_url: str | None = None,
) -> IssuedTicket:
    """Issue a ticket of ``request.group_id`` in ``hall_id`` (Q1, Q4).

    Args:
        caller: ``public``, ``device`` or ``staff``: which priorities it may ask for
            (``appointment``: the check-in of an appointment, priority ``appointment``).
        actor, place: for the audit row when staff issue the ticket.
        within: called in the issuing transaction with the new ticket's id, before the
            event (an appointment's check-in records it); raising rolls the ticket back.
        print_base_url: with ``device_id``, the hub's address as that device reached it:
            the ticket is printed by a printer attached to the device, if one can print
            (hub/services/printing.py), its QR code on this base.

    Raises:
        NotFound: the group is not one of the hall's (``body.group_id``).
        HallClosed, GroupClosed: outside issuing hours; an inactive or full group.
        InvalidIdDocument: a malformed document or a bad check digit.
        TicketLimitReached: the document's tickets today reach the hall's or group's limit.
        NotAllowed: a priority the caller may not ask for.
    """
    if request.priority not in _PRIORITIES_BY_CALLER[caller]:
        raise NotAllowed(
            f"a {caller} cannot issue {request.priority} tickets", field="body.priority"
        )
    document = key = None
    if request.id_document is not None:
        document = identity.parse_document(
            request.id_document.kind, request.id_document.number, field="body.id_document"
        )
        key = identity.lookup_key(document, id_key)
    token = secrets.token_urlsafe(16)
    async with events.transaction() as tx:
        conn = tx.conn
        # FOR KEY SHARE: a prefix change in flight (it locks the group FOR UPDATE) is waited
        # for and its new prefix read; a change that comes after waits for this ticket and
        # then sees it (hub/services/queue_config.py). The counter's foreign key would take
        # the same lock, but only after the prefix had been read.
        hall = await conn.fetchrow(
            """SELECT h.timezone, h.opens_minute, h.closes_minute, h.id_daily_limit,
                      g.prefix, g.active, g.daily_quota, g.id_daily_limit AS group_limit
               FROM service_group g JOIN hall h ON h.id = g.hall_id
               WHERE g.id = $1 AND g.hall_id = $2
               FOR KEY SHARE OF g""",
            request.group_id,
            hall_id,
        )
        if hall is None:
            raise NotFound(
                f"hall {hall_id} has no service group {request.group_id}",
                field="body.group_id",
            )
        if not within_hours(now, hall["timezone"], hall["opens_minute"], hall["closes_minute"]):
            raise HallClosed("the hall issues no tickets at this hour")
        if not hall["active"]:
            raise GroupClosed("this service takes no tickets now", field="body.group_id")
        day = service_day(now, hall["timezone"])
        if key is not None:
            await _check_limits(conn, hall_id, request.group_id, day, key, hall)
        seq = await conn.fetchval(
            """INSERT INTO ticket_counter AS c (group_id, service_day, last) VALUES ($1, $2, 1)
               ON CONFLICT (group_id, service_day) DO UPDATE SET last = c.last + 1
               RETURNING last""",
            request.group_id,
            day,
        )
        if hall["daily_quota"] is not None and seq > hall["daily_quota"]:
            raise GroupClosed("today's tickets for this service are all taken")
        number = ticket_number(hall["prefix"], seq)
        ticket_id = await conn.fetchval(
            """INSERT INTO ticket (hall_id, group_id, service_day, seq, number, public_token,
                                   source, priority, issued_at, queued_at, order_at, id_kind,
                                   id_key, id_masked, name_masked, phone, device_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $16, $10, $11, $12, $13, $14,
                       $15)
               RETURNING id""",
            hall_id,
            request.group_id,
            day,
            seq,
            number,
            token,
            source,
            request.priority,
            now,
            document.kind if document else None,
            key,
            identity.mask_number(document.number) if document else None,
            identity.mask_name(request.name) if request.name else None,
            request.phone,
            device_id,
            order_at(now, request.priority, policy),
        )
        if actor is not None:
            await audit.record(
                conn,
                actor,
                "ticket.issue",
                "ticket",
                ticket_id,
                place=place,
                after={"number": number, "group_id": request.group_id, "source": source},
            )
        if request.phone is not None:
            await notify_turn_near(conn, hall_id, day, request.group_id, now)
        if within is not None:
            await within(tx, ticket_id)
        printed: PrintMode = "e_ticket"
        if device_id is not None and print_base_url is not None:
            printed = await print_ticket(tx, device_id, ticket_id, token, print_base_url, now)
        await announce(
            tx, now, hall_id, day, "ticket_issued", ticket=number, group_id=request.group_id
        )
    log.info("ticket_issued", hall=hall_id, ticket=number, source=source)
    return IssuedTicket(
        ticket_id=ticket_id,
        token=token,
        ticket=await ticket_status(events.pool, token),
        print=printed,
    )


async def _check_limits(
    conn: asyncpg.Connection,
    hall_id: int,
    group_id: int,
    day: date,
    key: str,
    hall: asyncpg.Record,
) -> None:
    # One document's requests are serialised, so two kiosks cannot both pass the count.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))", key, hall_id)
    row = await conn.fetchrow(
        """SELECT count(*) AS day_total,
                  count(*) FILTER (WHERE group_id = $4) AS group_total
           FROM ticket WHERE hall_id = $1 AND service_day = $2 AND id_key = $3""",
        hall_id,
        day,
        key,
        group_id,
    )
    if row["day_total"] >= hall["id_daily_limit"]:
        raise TicketLimitReached(
            f"this document already has {row['day_total']} tickets today "
            f"(the hall allows {hall['id_daily_limit']})",
            field="body.id_document.number",
        )
    if row["group_total"] >= hall["group_limit"]:
        raise TicketLimitReached(
            f"this document already has {row['group_total']} tickets for this service "
            f"today (allowed: {hall['group_limit']})",
            field="body.id_document.number",
        )


async def expire_past_days(conn: asyncpg.Connection, now: datetime) -> int:
    """Tickets still waiting from an earlier service day end as ``expired`` (each hall's own
    midnight). They are never called anyway (calls take today's tickets only); this records
    their end for the KPIs. Returns how many expired."""
    expired = await conn.fetchval(
        """WITH gone AS (
               UPDATE ticket t SET status = 'expired', finished_at = $1
               FROM hall h
               WHERE h.id = t.hall_id AND t.status = 'waiting'
                 AND t.service_day < ($1::timestamptz AT TIME ZONE h.timezone)::date
               RETURNING 1)
           SELECT count(*) FROM gone""",
        now,
    )
    if expired:
        log.info("tickets_expired", count=expired)
    return int(expired)
