"""The queue service (Q1–Q4): issue tickets, and every window action.

Each operation is one transaction on the hub's :class:`~hub.services.events.EventWriter`:
the change, its audit row (staff actions) and one event on ``hall:<hall_id>`` commit together
and the event is published after commit, so no screen hears of a change that could still be
rolled back. The event is written last, after :meth:`Tx.claim` locked the hall topic, so
the waiting counts it carries are read while no other queue change of the hall can commit.

Call next takes the ticket in one statement (hub/services/queue_pick.py): it locks the
window's state row (open, idle, signed in by the caller), picks the first waiting ticket in
the priority order of hub.domain.queue with ``FOR UPDATE SKIP LOCKED``, marks it called and
seats it at the window. Two windows calling at once never get the same ticket: the second skips the
first's locked row, and a row whose status changed under it no longer matches.

Ticket numbers come from ``ticket_counter`` (one row per group and hall-local day) inside
the issuing transaction: never duplicated (the row lock), never skipped (a rollback returns
the number), reset at the hall's midnight (a new day is a new row).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated

import asyncpg
import msgspec
import structlog

from hub.domain.access import Place
from hub.domain.errors import InvalidInput, NotAllowed, NotFound
from hub.domain.queue import (
    DEFAULT_POLICY,
    AlreadySignedIn,
    GroupClosed,
    PriorityPolicy,
    SkipPolicy,
    TicketSource,
    WindowBusy,
    WindowClosed,
    WindowNotSignedIn,
    WindowTaken,
    order_at,
    require_current,
    require_idle,
    require_window_open,
    service_day,
)
from hub.services import audit
from hub.services.events import EventWriter, Tx
from hub.services.queue_events import announce, rating_request
from hub.services.queue_pick import call_fast_sql, call_full_sql
from hub.services.queue_views import (
    CallView,
    ServingTicket,
    WindowView,
    serving_ticket,
    window_view,
)
from hub.services.tickets import IdDocumentIn, IssuedTicket, TicketRequest, issue_ticket
from hub.services.turn_near import notify_turn_near
from realtime.topics import topic

# Ticket requests are issued through QueueService.issue; their types live in tickets.py.
__all__ = [
    "IdDocumentIn",
    "IssuedTicket",
    "QueueService",
    "TicketRequest",
    "Transfer",
    "WindowResult",
]

log = structlog.get_logger("hub.services.queue")

Phone = Annotated[str, msgspec.Meta(pattern=r"^1[3-9][0-9]{9}$")]


class Transfer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a transferred ticket goes: one window, or another group's queue."""

    window_id: Annotated[int, msgspec.Meta(ge=1)] | None = None
    group_id: Annotated[int, msgspec.Meta(ge=1)] | None = None


class WindowResult(msgspec.Struct, frozen=True, kw_only=True):
    """A window after an action: its public view and, for its staff, the tickets there."""

    window: WindowView
    serving: list[ServingTicket]
    called: str | None = None  # the number called by this action, if any


class WindowRow(msgspec.Struct, frozen=True, kw_only=True):
    window_id: int
    number: int
    hall_id: int
    timezone: str
    requeue_limit: int
    status: str
    staff_id: int | None
    current_ticket_id: int | None
    current_number: str | None
    current_group_id: int | None


class QueueService:
    """Tickets and window actions of every hall, on the hub's event writer.

    Args:
        events: the event writer (transactions announced after commit).
        clock: the current time (aware); tests inject one.
        id_key: the HMAC key for identity-document lookup keys (Q4).
        policy: the priority policy.
    """

    def __init__(
        self,
        events: EventWriter,
        clock: Callable[[], datetime],
        id_key: bytes,
        policy: PriorityPolicy = DEFAULT_POLICY,
    ) -> None:
        self._events = events
        self._clock = clock
        self._id_key = id_key
        self.policy = policy
        self._call_fast = call_fast_sql(policy)
        self._call_full = call_full_sql(policy)

    async def issue(
        self,
        hall_id: int,
        request: TicketRequest,
        *,
        source: TicketSource,
        caller: str,
        device_id: int | None = None,
        actor: audit.Actor | None = None,
        place: Place | None = None,
        print_base_url: str | None = None,
    ) -> IssuedTicket:
        """Issue a ticket (hub/services/tickets.py :func:`issue_ticket`) at the clock's now;
        a device's ticket is printed by its printer when one can (``print_base_url``)."""
        return await issue_ticket(
            self._events,
            self._clock(),
            self._id_key,
            self.policy,
            hall_id,
            request,
            source=source,
            caller=caller,
            device_id=device_id,
            actor=actor,
            place=place,
            print_base_url=print_base_url,
        )

    # -- window sessions -----------------------------------------------------------------

    async def sign_in(self, actor: audit.Actor, place: Place, window_id: int) -> WindowResult:
        """Staff ``actor`` opens ``window_id`` (Q2). Idempotent for the same staff member.

        Raises:
            Conflict ``window_taken``: someone else works the window.
            Conflict ``already_signed_in``: the staff member works another window.
        """
        async with self._events.transaction() as tx:
            row = await self._lock(tx.conn, window_id)
            if row.staff_id is not None and row.staff_id != actor.staff_id:
                raise WindowTaken("another staff member works this window; they sign out first")
            elsewhere = await tx.conn.fetchval(
                """SELECT w.number FROM window_state ws JOIN "window" w ON w.id = ws.window_id
                   WHERE ws.staff_id = $1 AND ws.window_id <> $2""",
                actor.staff_id,
                window_id,
            )
            if elsewhere is not None:
                raise AlreadySignedIn(f"you work window {elsewhere}: sign out there first")
            if row.staff_id == actor.staff_id:
                return await self.view(tx.conn, window_id)
            await self._set_status(tx, row, "open", actor.staff_id)
            await audit.record(tx.conn, actor, "window.sign_in", "window", window_id, place=place)
            return await self._window_changed(tx, row)

    async def sign_out(self, actor: audit.Actor, place: Place, window_id: int) -> WindowResult:
        """Close the window. Its staff member, or a manager (``force``), may do it; a window
        with a ticket at it (called or held) cannot close."""
        async with self._events.transaction() as tx:
            row = await self._lock(tx.conn, window_id)
            if row.status == "closed":
                return await self.view(tx.conn, window_id)
            if row.staff_id != actor.staff_id and actor.role not in ("admin", "hall_manager"):
                raise NotAllowed("only the staff member at the window or a manager closes it")
            require_idle(row.current_number)
            held = await tx.conn.fetchval(
                "SELECT count(*) FROM ticket WHERE window_id = $1 AND status = 'held'", window_id
            )
            if held:
                raise WindowBusy(f"{held} held ticket(s) wait at this window: return them first")
            await self._set_status(tx, row, "closed", None)
            await audit.record(tx.conn, actor, "window.sign_out", "window", window_id, place=place)
            return await self._window_changed(tx, row)

    async def pause(self, actor: audit.Actor, place: Place, window_id: int) -> WindowResult:
        return await self._pause(actor, place, window_id, paused=True)

    async def resume(self, actor: audit.Actor, place: Place, window_id: int) -> WindowResult:
        return await self._pause(actor, place, window_id, paused=False)

    async def _pause(
        self, actor: audit.Actor, place: Place, window_id: int, *, paused: bool
    ) -> WindowResult:
        async with self._events.transaction() as tx:
            row = await self._own(tx.conn, actor, window_id)
            want = "paused" if paused else "open"
            if row.status == want:
                return await self.view(tx.conn, window_id)
            await self._set_status(tx, row, want, actor.staff_id)
            action = "window.pause" if paused else "window.resume"
            await audit.record(tx.conn, actor, action, "window", window_id, place=place)
            return await self._window_changed(tx, row)

    # -- calls ---------------------------------------------------------------------------

    async def call_next(self, actor: audit.Actor, place: Place, window_id: int) -> WindowResult:
        """Call the next ticket to the window (Q2, Q3); ``called`` is None when nobody
        waits for it.

        Raises:
            WindowNotOpen: the window is paused or closed.
            WindowBusy: a ticket is at the window.
            NotAllowed: the caller does not work this window.
        """
        now = self._clock()
        async with self._events.transaction() as tx:
            picked = await tx.conn.fetchrow(self._call_fast, window_id, actor.staff_id, now)
            if picked is None:
                # Nobody waits, the window may not call, or each ticket of the short list is
                # being taken by another window right now: decide on every candidate.
                picked = await tx.conn.fetchrow(self._call_full, window_id, actor.staff_id, now)
            if picked is None:
                row = await self._own(tx.conn, actor, window_id)
                require_window_open(row.status)  # type: ignore[arg-type]
                require_idle(row.current_number)
                return await self.view(tx.conn, window_id)
            await audit.record(
                tx.conn,
                actor,
                "ticket.call",
                "ticket",
                picked["id"],
                place=place,
                after={"number": picked["number"], "window_id": window_id},
            )
            await notify_turn_near(
                tx.conn,
                picked["hall_id"],
                picked["service_day"],
                picked["group_id"],
                now,
            )
            result = await self.view(tx.conn, window_id, called=picked["number"])
            await self._announce_call(
                tx,
                picked["hall_id"],
                picked["service_day"],
                result,
                picked["group_id"],
                now,
                "call",
            )
            return result

    async def recall(self, actor: audit.Actor, place: Place, window_id: int) -> WindowResult:
        """Call the window's current ticket again (重呼)."""
        now = self._clock()
        async with self._events.transaction() as tx:
            row = await self._own(tx.conn, actor, window_id)
            number = require_current(row.current_number)
            await tx.conn.execute(
                "UPDATE ticket SET call_count = call_count + 1 WHERE id = $1",
                row.current_ticket_id,
            )
            await audit.record(
                tx.conn, actor, "ticket.recall", "ticket", row.current_ticket_id, place=place
            )
            day = service_day(now, row.timezone)
            result = await self.view(tx.conn, window_id, called=number)
            await self._announce_call(
                tx, row.hall_id, day, result, row.current_group_id, now, "recall"
            )
            return result

    async def skip(self, actor: audit.Actor, place: Place, window_id: int) -> WindowResult:
        """The citizen did not come (过号): re-queue behind those waiting now while the hall's
        re-queue limit allows, else the ticket ends as ``no_show``."""
        now = self._clock()
        async with self._events.transaction() as tx:
            row = await self._own(tx.conn, actor, window_id)
            number = require_current(row.current_number)
            ticket = await tx.conn.fetchrow(
                "SELECT skip_count, priority FROM ticket WHERE id = $1", row.current_ticket_id
            )
            requeue = SkipPolicy(requeue_limit=row.requeue_limit).requeues(ticket["skip_count"])
            await tx.conn.execute(
                """UPDATE ticket SET skip_count = skip_count + 1,
                          status = CASE WHEN $2 THEN 'waiting' ELSE 'no_show' END,
                          queued_at = CASE WHEN $2 THEN $3 ELSE queued_at END,
                          order_at = CASE WHEN $2 THEN $4 ELSE order_at END,
                          finished_at = CASE WHEN $2 THEN NULL ELSE $3 END
                   WHERE id = $1""",
                row.current_ticket_id,
                requeue,
                now,
                order_at(now, ticket["priority"], self.policy),
            )
            return await self._release(
                tx,
                actor,
                place,
                row,
                now,
                number,
                "ticket.skip",
                "ticket_skipped",
                after={"requeued": requeue},
            )

    async def hold(self, actor: audit.Actor, place: Place, window_id: int) -> WindowResult:
        """Park the current ticket at the window (挂起): the window may call the next one."""
        now = self._clock()
        async with self._events.transaction() as tx:
            row = await self._own(tx.conn, actor, window_id)
            number = require_current(row.current_number)
            await tx.conn.execute(
                "UPDATE ticket SET status = 'held' WHERE id = $1", row.current_ticket_id
            )
            return await self._release(
                tx, actor, place, row, now, number, "ticket.hold", "ticket_held"
            )

    async def return_held(
        self, actor: audit.Actor, place: Place, window_id: int, ticket_id: int
    ) -> WindowResult:
        """Bring a held ticket back to the window; it is called again."""
        now = self._clock()
        async with self._events.transaction() as tx:
            row = await self._own(tx.conn, actor, window_id)
            require_window_open(row.status)  # type: ignore[arg-type]
            require_idle(row.current_number)
            ticket = await tx.conn.fetchrow(
                """UPDATE ticket SET status = 'called', called_at = $3,
                          call_count = call_count + 1
                   WHERE id = $1 AND window_id = $2 AND status = 'held'
                   RETURNING number, group_id""",
                ticket_id,
                window_id,
                now,
            )
            if ticket is None:
                raise NotFound(
                    f"ticket {ticket_id} is not held at this window", field="body.ticket_id"
                )
            await self._seat(tx.conn, window_id, ticket_id, now)
            await audit.record(tx.conn, actor, "ticket.return", "ticket", ticket_id, place=place)
            result = await self.view(tx.conn, window_id, called=ticket["number"])
            await self._announce_call(
                tx,
                row.hall_id,
                service_day(now, row.timezone),
                result,
                ticket["group_id"],
                now,
                "return",
            )
            return result

    async def transfer(
        self, actor: audit.Actor, place: Place, window_id: int, to: Transfer
    ) -> WindowResult:
        """Send the current ticket to another window or group (转移); it keeps its number,
        priority and place by arrival time (hub.domain.queue)."""
        if (to.window_id is None) == (to.group_id is None):
            raise InvalidInput("transfer to exactly one of window_id or group_id", field="body")
        now = self._clock()
        async with self._events.transaction() as tx:
            row = await self._own(tx.conn, actor, window_id)
            number = require_current(row.current_number)
            group_id = row.current_group_id
            if to.window_id is not None:
                if to.window_id == window_id:
                    raise InvalidInput(
                        "a ticket cannot go to its own window", field="body.window_id"
                    )
                target = await tx.conn.fetchrow(
                    """SELECT w.hall_id, coalesce(ws.status, 'closed') AS status
                       FROM "window" w LEFT JOIN window_state ws ON ws.window_id = w.id
                       WHERE w.id = $1""",
                    to.window_id,
                )
                if target is None or target["hall_id"] != row.hall_id:
                    raise NotFound(f"no window {to.window_id} in this hall", field="body.window_id")
                if target["status"] == "closed":
                    raise WindowClosed("the target window is closed", field="body.window_id")
            else:
                target = await tx.conn.fetchrow(
                    "SELECT hall_id, active FROM service_group WHERE id = $1", to.group_id
                )
                if target is None or target["hall_id"] != row.hall_id:
                    raise NotFound(f"no service group {to.group_id} here", field="body.group_id")
                if not target["active"]:
                    raise GroupClosed("the target service takes no tickets", field="body.group_id")
                group_id = to.group_id
            await tx.conn.execute(
                """UPDATE ticket SET status = 'waiting', group_id = $2, target_window_id = $3
                   WHERE id = $1""",
                row.current_ticket_id,
                group_id,
                to.window_id,
            )
            return await self._release(
                tx,
                actor,
                place,
                row,
                now,
                number,
                "ticket.transfer",
                "ticket_transferred",
                group_id=group_id,
                before={"group_id": row.current_group_id, "window_id": window_id},
                after={"group_id": group_id, "window_id": to.window_id},
            )

    async def finish(self, actor: audit.Actor, place: Place, window_id: int) -> WindowResult:
        """The current ticket is served (办结); the window's evaluator is asked for a rating
        (``rating_requested`` on ``window:<id>``)."""
        now = self._clock()
        async with self._events.transaction() as tx:
            row = await self._own(tx.conn, actor, window_id)
            number = require_current(row.current_number)
            await tx.conn.execute(
                "UPDATE ticket SET status = 'done', finished_at = $2 WHERE id = $1",
                row.current_ticket_id,
                now,
            )
            request = await rating_request(
                tx.conn, row.current_ticket_id or 0, number, window_id, actor.staff_id
            )
            await tx.emit(topic("window", window_id), "rating_requested", request)
            return await self._release(
                tx, actor, place, row, now, number, "ticket.finish", "ticket_finished"
            )

    # -- helpers -------------------------------------------------------------------------

    async def _release(
        self,
        tx: Tx,
        actor: audit.Actor,
        place: Place,
        row: WindowRow,
        now: datetime,
        number: str,
        action: str,
        event: str,
        *,
        group_id: int | None = None,
        before: object = None,
        after: object = None,
    ) -> WindowResult:
        """The current ticket leaves the window (skip, hold, transfer, finish) after its own
        update: the window is free, the action audited, the hall told."""
        await self._unseat(tx.conn, row.window_id, now)
        await audit.record(
            tx.conn,
            actor,
            action,
            "ticket",
            row.current_ticket_id,
            place=place,
            before=before,
            after=after,
        )
        result = await self.view(tx.conn, row.window_id)
        await announce(
            tx,
            now,
            row.hall_id,
            service_day(now, row.timezone),
            event,
            ticket=number,
            group_id=row.current_group_id if group_id is None else group_id,
            window=result.window,
        )
        return result

    async def _lock(self, conn: asyncpg.Connection, window_id: int) -> WindowRow:
        """The window's state row, created closed on first use, locked until commit."""
        await conn.execute(
            """INSERT INTO window_state (window_id, hall_id)
               SELECT id, hall_id FROM "window" WHERE id = $1
               ON CONFLICT (window_id) DO NOTHING""",
            window_id,
        )
        row = await conn.fetchrow(
            """SELECT ws.window_id, w.number, ws.hall_id, h.timezone, h.requeue_limit, ws.status,
                      ws.staff_id, ws.current_ticket_id, t.number AS current_number,
                      t.group_id AS current_group_id
               FROM window_state ws JOIN "window" w ON w.id = ws.window_id
               JOIN hall h ON h.id = ws.hall_id
               LEFT JOIN ticket t ON t.id = ws.current_ticket_id
               WHERE ws.window_id = $1
               FOR UPDATE OF ws""",
            window_id,
        )
        if row is None:
            raise NotFound(f"window {window_id} does not exist", field="path.window_id")
        return msgspec.convert(dict(row), WindowRow)

    async def _own(self, conn: asyncpg.Connection, actor: audit.Actor, window_id: int) -> WindowRow:
        row = await self._lock(conn, window_id)
        if row.staff_id is None:
            raise WindowNotSignedIn("nobody works this window: sign in first")
        if row.staff_id != actor.staff_id:
            raise NotAllowed("another staff member works this window")
        return row

    async def _set_status(self, tx: Tx, row: WindowRow, status: str, staff_id: int | None) -> None:
        await tx.conn.execute(
            "UPDATE window_state SET status = $2, staff_id = $3, changed_at = $4 "
            "WHERE window_id = $1",
            row.window_id,
            status,
            staff_id,
            self._clock(),
        )

    async def _seat(
        self, conn: asyncpg.Connection, window_id: int, ticket_id: int, now: datetime
    ) -> None:
        await conn.execute(
            "UPDATE window_state SET current_ticket_id = $2, changed_at = $3 WHERE window_id = $1",
            window_id,
            ticket_id,
            now,
        )

    async def _unseat(self, conn: asyncpg.Connection, window_id: int, now: datetime) -> None:
        await conn.execute(
            "UPDATE window_state SET current_ticket_id = NULL, changed_at = $2 "
            "WHERE window_id = $1",
            window_id,
            now,
        )

    async def view(
        self, conn: asyncpg.Connection, window_id: int, called: str | None = None
    ) -> WindowResult:
        return WindowResult(
            window=await window_view(conn, window_id),
            serving=await serving_ticket(conn, window_id),
            called=called,
        )

    async def _window_changed(self, tx: Tx, row: WindowRow) -> WindowResult:
        now = self._clock()
        result = await self.view(tx.conn, row.window_id)
        await announce(
            tx,
            now,
            row.hall_id,
            service_day(now, row.timezone),
            "window_changed",
            window=result.window,
        )
        return result

    async def _announce_call(
        self,
        tx: Tx,
        hall_id: int,
        day: date,
        result: WindowResult,
        group_id: int | None,
        now: datetime,
        action: str,
    ) -> None:
        """``ticket_called`` for ``result.called`` at ``result.window``."""
        assert result.called is not None
        call = CallView(
            number=result.called,
            window_id=result.window.window_id,
            window_number=result.window.number,
            called_at=now,
            recall=action == "recall",
        )
        await announce(
            tx,
            now,
            hall_id,
            day,
            "ticket_called",
            ticket=result.called,
            group_id=group_id,
            window=result.window,
            call=call,
            action=action,
        )
