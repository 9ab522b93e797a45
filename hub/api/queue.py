"""Queue and calling (Q1–Q6) over HTTP.

Tickets
    ``POST /api/halls/{hall_id}/tickets``: issue a ticket. The caller decides the source:
    a ticket machine's or kiosk's device token (that hall's devices only), a staff session
    (``queue.issue``), or no token at all (online, rate-limited per IP).
    ``GET /api/tickets/{ticket_token}``: the citizen's page (public, by the ticket's QR token).

Service groups (configuration, ``queue.configure``: admin and hall_manager of the hall)
    ``GET|POST /api/halls/{hall_id}/groups``;
    ``PUT /api/halls/{hall_id}/windows/{window_id}/groups``.
    Listing is public: kiosks and the citizen's page show them.

Window actions (``queue.operate``: window_staff, hall_manager, admin covering the hall; the
actions other than sign-in need the caller to be the staff member signed in at the window)
    ``POST /api/halls/{hall_id}/windows/{window_id}/<action>`` with action one of
    sign-in, sign-out, pause, resume, call, recall, skip, hold, return, transfer, finish;
    ``GET …/windows/{window_id}/console``: the window, its tickets and its queue.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from hub.api.deps import any_caller, require
from hub.api.ratelimit import count_public, public_rate_guard
from hub.domain.access import Place, Principal
from hub.domain.errors import NotAllowed, NotFound, NotSignedIn
from hub.domain.queue import TicketSource
from hub.runtime import Hub
from hub.services import queue_config
from hub.services.access import hall_place
from hub.services.queue import IssuedTicket, QueueService, TicketRequest, Transfer, WindowResult
from hub.services.queue_views import (
    GroupView,
    QueuedTicket,
    TicketStatusView,
    group_views,
    hall_day,
    ticket_status,
    window_queue,
)

# The device kinds that issue tickets, and the source they record.
_DEVICE_SOURCES: dict[str, TicketSource] = {
    "ticket_machine": "ticket_machine",
    "kiosk": "kiosk",
    "id_reader": "id_card",
}


class Console(msgspec.Struct, frozen=True, kw_only=True):
    """What a window's staff console shows: the window, its tickets, its queue."""

    state: WindowResult
    queue: list[QueuedTicket]


class ReturnHeld(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ticket_id: Annotated[int, msgspec.Meta(ge=1)]


def _queue(hub: Hub) -> QueueService:
    if hub.queue is None:
        raise RuntimeError("Hub.start() has not run")
    return hub.queue


async def _window_place(pool: asyncpg.Pool, hall_id: int, window_id: int) -> Place:
    place = await hall_place(pool, hall_id, field="path.hall_id")
    found = await pool.fetchval(
        'SELECT 1 FROM "window" WHERE id = $1 AND hall_id = $2', window_id, hall_id
    )
    if found is None:
        raise NotFound(f"hall {hall_id} has no window {window_id}", field="path.window_id")
    return place


class TicketController(Controller):
    tags = ["queue"]  # noqa: RUF012

    @post("/api/halls/{hall_id:int}/tickets", status_code=201)
    async def issue(
        self,
        request: Request[Any, Any, Any],
        hall_id: FromPath[int],
        data: JSONBody[TicketRequest],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> IssuedTicket:
        """Issue a ticket (Q1): by a ticket machine or kiosk (device token), by staff, or
        online (no token). An identity document is checked (Q4) and counted against the
        hall's and group's daily limits; the ticket's ``token`` is its QR code.

        Only the anonymous public and unknown tokens count against the per-address rate:
        the kiosks and ticket machines of a hall often share one address."""
        try:
            caller = await any_caller(request, pool)
        except NotSignedIn:
            count_public(request)
            raise
        if caller.kind == "public":
            count_public(request)
        service = _queue(hub)
        if caller.kind == "device":
            source = _DEVICE_SOURCES.get(caller.device_kind or "")
            if source is None or caller.hall_id != hall_id:
                raise NotAllowed("this device does not issue tickets in this hall")
            device_id = int(caller.id.removeprefix("device:"))
            if data.id_document is not None and source == "ticket_machine":
                source = "id_card"
            # D1: a ticket of a kiosk or ticket machine is printed by its printer, the QR
            # code pointing at this hub as the device reached it (as hub/api/ticket_qr.py).
            return await service.issue(
                hall_id,
                data,
                source=source,
                caller="device",
                device_id=device_id,
                print_base_url=str(request.base_url),
            )
        if caller.kind == "staff":
            place = await hall_place(pool, hall_id, field="path.hall_id")
            actor = require(caller, "queue.issue", place)
            return await service.issue(
                hall_id, data, source="staff", caller="staff", actor=actor, place=place
            )
        await hall_place(pool, hall_id, field="path.hall_id")
        return await service.issue(hall_id, data, source="online", caller="public")

    @get("/api/tickets/{ticket_token:str}", guards=[public_rate_guard])
    async def status(
        self,
        ticket_token: FromPath[str],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> TicketStatusView:
        """The citizen's view of one ticket (Q8): number, position, estimate, window when
        called. Public: the token is the secret; no personal data is returned."""
        if len(ticket_token) > 64:
            raise NotFound("no ticket has this code", field="path.ticket_token")
        return await ticket_status(pool, ticket_token)


class GroupController(Controller):
    path = "/api/halls/{hall_id:int}"
    tags = ["queue"]  # noqa: RUF012

    @get("/groups", guards=[public_rate_guard])
    async def list_groups(
        self, hall_id: FromPath[int], pool: NamedDependency[asyncpg.Pool], hub: NamedDependency[Hub]
    ) -> list[GroupView]:
        """The hall's service groups with waiting counts and estimates (public)."""
        day = await hall_day(pool, hall_id, hub.now())
        return await group_views(pool, hall_id, day)

    @post("/groups", status_code=201)
    async def create_group(
        self,
        hall_id: FromPath[int],
        data: JSONBody[queue_config.GroupNew],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> queue_config.GroupRecord:
        """Add a service group (ticket prefix and name) to the hall."""
        place = await hall_place(pool, hall_id, field="path.hall_id")
        actor = require(principal, "queue.configure", place)
        assert hub.events is not None
        return await queue_config.create_group(hub.events, hub.now, actor, place, data)

    @put("/windows/{window_id:int}/groups")
    async def set_window_groups(
        self,
        hall_id: FromPath[int],
        window_id: FromPath[int],
        data: JSONBody[list[queue_config.WindowGroup]],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> list[queue_config.WindowGroup]:
        """Set which groups the window serves, in its order of preference."""
        place = await _window_place(pool, hall_id, window_id)
        actor = require(principal, "queue.configure", place)
        assert hub.events is not None
        return await queue_config.set_window_groups(
            hub.events, hub.now, actor, place, window_id, data
        )


class WindowController(Controller):
    """Window actions (Q2). Each returns the window's new state for its console."""

    path = "/api/halls/{hall_id:int}/windows/{window_id:int}"
    tags = ["queue"]  # noqa: RUF012

    @get("/console")
    async def console(
        self,
        hall_id: FromPath[int],
        window_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> Console:
        """The window's state, its current and held tickets, and its queue in calling order."""
        place = await _window_place(pool, hall_id, window_id)
        require(principal, "queue.operate", place)
        service = _queue(hub)
        async with pool.acquire() as conn:
            state = await service.view(conn, window_id)
            day = await hall_day(conn, hall_id, hub.now())
            return Console(
                state=state, queue=await window_queue(conn, window_id, day, service.policy)
            )

    @post("/sign-in", status_code=200)
    async def sign_in(self, hall_id: FromPath[int], window_id: FromPath[int],
                      principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool],
                      hub: NamedDependency[Hub]) -> WindowResult:  # fmt: skip
        """Start working at the window (it opens for calls)."""
        actor, place = await self._operate(principal, pool, hall_id, window_id)
        return await _queue(hub).sign_in(actor, place, window_id)

    @post("/sign-out", status_code=200)
    async def sign_out(self, hall_id: FromPath[int], window_id: FromPath[int],
                       principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool],
                       hub: NamedDependency[Hub]) -> WindowResult:  # fmt: skip
        """Close the window (its staff member, or a manager)."""
        actor, place = await self._operate(principal, pool, hall_id, window_id)
        return await _queue(hub).sign_out(actor, place, window_id)

    @post("/pause", status_code=200)
    async def pause(self, hall_id: FromPath[int], window_id: FromPath[int],
                    principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool],
                    hub: NamedDependency[Hub]) -> WindowResult:  # fmt: skip
        """Pause: no calls until resumed."""
        actor, place = await self._operate(principal, pool, hall_id, window_id)
        return await _queue(hub).pause(actor, place, window_id)

    @post("/resume", status_code=200)
    async def resume(self, hall_id: FromPath[int], window_id: FromPath[int],
                     principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool],
                     hub: NamedDependency[Hub]) -> WindowResult:  # fmt: skip
        actor, place = await self._operate(principal, pool, hall_id, window_id)
        return await _queue(hub).resume(actor, place, window_id)

    @post("/call", status_code=200)
    async def call(self, hall_id: FromPath[int], window_id: FromPath[int],
                   principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool],
                   hub: NamedDependency[Hub]) -> WindowResult:  # fmt: skip
        """Call the next ticket (``called`` is null when nobody waits for this window)."""
        actor, place = await self._operate(principal, pool, hall_id, window_id)
        return await _queue(hub).call_next(actor, place, window_id)

    @post("/recall", status_code=200)
    async def recall(self, hall_id: FromPath[int], window_id: FromPath[int],
                     principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool],
                     hub: NamedDependency[Hub]) -> WindowResult:  # fmt: skip
        actor, place = await self._operate(principal, pool, hall_id, window_id)
        return await _queue(hub).recall(actor, place, window_id)

    @post("/skip", status_code=200)
    async def skip(self, hall_id: FromPath[int], window_id: FromPath[int],
                   principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool],
                   hub: NamedDependency[Hub]) -> WindowResult:  # fmt: skip
        actor, place = await self._operate(principal, pool, hall_id, window_id)
        return await _queue(hub).skip(actor, place, window_id)

    @post("/hold", status_code=200)
    async def hold(self, hall_id: FromPath[int], window_id: FromPath[int],
                   principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool],
                   hub: NamedDependency[Hub]) -> WindowResult:  # fmt: skip
        actor, place = await self._operate(principal, pool, hall_id, window_id)
        return await _queue(hub).hold(actor, place, window_id)

    @post("/return", status_code=200)
    async def return_held(self, hall_id: FromPath[int], window_id: FromPath[int],
                          data: JSONBody[ReturnHeld], principal: NamedDependency[Principal],
                          pool: NamedDependency[asyncpg.Pool],
                          hub: NamedDependency[Hub]) -> WindowResult:  # fmt: skip
        actor, place = await self._operate(principal, pool, hall_id, window_id)
        return await _queue(hub).return_held(actor, place, window_id, data.ticket_id)

    @post("/transfer", status_code=200)
    async def transfer(self, hall_id: FromPath[int], window_id: FromPath[int],
                       data: JSONBody[Transfer], principal: NamedDependency[Principal],
                       pool: NamedDependency[asyncpg.Pool],
                       hub: NamedDependency[Hub]) -> WindowResult:  # fmt: skip
        actor, place = await self._operate(principal, pool, hall_id, window_id)
        return await _queue(hub).transfer(actor, place, window_id, data)

    @post("/finish", status_code=200)
    async def finish(self, hall_id: FromPath[int], window_id: FromPath[int],
                     principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool],
                     hub: NamedDependency[Hub]) -> WindowResult:  # fmt: skip
        actor, place = await self._operate(principal, pool, hall_id, window_id)
        return await _queue(hub).finish(actor, place, window_id)

    @staticmethod
    async def _operate(
        principal: Principal, pool: asyncpg.Pool, hall_id: int, window_id: int
    ) -> tuple[Any, Place]:
        place = await _window_place(pool, hall_id, window_id)
        return require(principal, "queue.operate", place), place
