"""Ratings (O9, 好差评) over HTTP.

``POST /api/tickets/{token}/rating``
    The citizen rates a served ticket by its public token (the token is the secret; public,
    rate-limited). Source ``web``; ``?via=sms`` (the link of an SMS leads to the page) gives
    ``sms``; a kiosk's or touch terminal's device token of the ticket's hall gives ``kiosk``.
``GET /api/tickets/{token}/rating``
    The ticket's rating (404 ``not_found`` while it has none): the page shows "已评价".
``POST /api/halls/{hall_id}/windows/{window_id}/ratings``
    The window's evaluation pad: an ``evaluator`` device token of that hall; body
    ``{ticket_id, grade, reasons, comment}``; the ticket must have been served at that window.
``GET /api/halls/{hall_id}/windows/{window_id}/rating-request``
    For the pad after a reconnect: the ticket it should still ask about, or null.
``GET /api/halls/{hall_id}/ratings?from=&to=``
    The hall's ratings of a range of hall-local dates, with counts per grade
    (``rating.read``: admin, hall_manager, supervisor covering the hall).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import asyncpg
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from hub.api.calendar import parse_day
from hub.api.deps import bearer_token, events_of, require
from hub.api.ratelimit import public_rate_guard
from hub.domain.access import Principal
from hub.domain.errors import NotAllowed, NotFound, NotSignedIn
from hub.domain.rating import Source
from hub.runtime import Hub
from hub.services import auth, ratings
from hub.services.access import hall_place
from hub.services.queue_events import RatingRequest

# Devices through which a citizen rates by the ticket's token.
_KIOSK_KINDS = frozenset({"kiosk", "info_terminal"})
_TOKEN_MAX = 64


async def _device(request: Request[Any, Any, Any], pool: asyncpg.Pool) -> Principal:
    principal = await auth.device_by_token(pool, bearer_token(request))
    if principal is None:
        raise NotSignedIn("the device token is unknown or revoked")
    return principal


async def _evaluator(
    request: Request[Any, Any, Any], pool: asyncpg.Pool, hall_id: int, window_id: int
) -> int:
    """The id of the calling evaluator device of ``hall_id``, after checking the window."""
    device = await _device(request, pool)
    if device.device_kind != "evaluator" or device.hall_id != hall_id:
        raise NotAllowed("only an evaluation pad of this hall rates at its windows")
    found = await pool.fetchval(
        'SELECT 1 FROM "window" WHERE id = $1 AND hall_id = $2', window_id, hall_id
    )
    if found is None:
        raise NotFound(f"hall {hall_id} has no window {window_id}", field="path.window_id")
    return int(device.id.removeprefix("device:"))


class RatingController(Controller):
    tags = ["ratings"]  # noqa: RUF012

    @post("/api/tickets/{ticket_token:str}/rating", guards=[public_rate_guard], status_code=201)
    async def rate_ticket(
        self,
        request: Request[Any, Any, Any],
        ticket_token: FromPath[str],
        data: JSONBody[ratings.RatingNew],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
        via: FromQuery[Literal["sms", "web"] | None] = None,
    ) -> ratings.RatingReceipt:
        """Rate a served ticket once (public, by its token): five grades, reasons for a bad
        grade, an optional comment."""
        if len(ticket_token) > _TOKEN_MAX:
            raise NotFound("no ticket has this code", field="path.token")
        source: Source = "sms" if via == "sms" else "web"
        device_id = hall_id = None
        if request.headers.get("authorization"):
            device = await _device(request, pool)
            if device.device_kind not in _KIOSK_KINDS:
                raise NotAllowed("only a kiosk or touch terminal rates for a citizen")
            source, hall_id = "kiosk", device.hall_id
            device_id = int(device.id.removeprefix("device:"))
        return await ratings.rate_by_token(
            events_of(hub),
            hub.now,
            ticket_token,
            data,
            source=source,
            device_id=device_id,
            hall_id=hall_id,
        )

    @get("/api/tickets/{ticket_token:str}/rating", guards=[public_rate_guard])
    async def ticket_rating(
        self, ticket_token: FromPath[str], pool: NamedDependency[asyncpg.Pool]
    ) -> ratings.RatingReceipt:
        """The ticket's rating, if it has one (404 ``not_found`` otherwise)."""
        if len(ticket_token) > _TOKEN_MAX:
            raise NotFound("no ticket has this code", field="path.token")
        return await ratings.ticket_rating(pool, ticket_token)

    @post("/api/halls/{hall_id:int}/windows/{window_id:int}/ratings", status_code=201)
    async def rate_at_window(
        self,
        request: Request[Any, Any, Any],
        hall_id: FromPath[int],
        window_id: FromPath[int],
        data: JSONBody[ratings.WindowRatingNew],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> ratings.RatingReceipt:
        """A rating from the window's evaluation pad (an evaluator device of the hall)."""
        device_id = await _evaluator(request, pool, hall_id, window_id)
        return await ratings.rate_at_window(
            events_of(hub), hub.now, hall_id, window_id, data, device_id=device_id
        )

    @get("/api/halls/{hall_id:int}/windows/{window_id:int}/rating-request")
    async def rating_request(
        self,
        request: Request[Any, Any, Any],
        hall_id: FromPath[int],
        window_id: FromPath[int],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> RatingRequest | None:
        """The finished ticket the pad should still ask about (null: none)."""
        await _evaluator(request, pool, hall_id, window_id)
        return await ratings.pending_request(pool, window_id, hub.now())

    @get("/api/halls/{hall_id:int}/ratings")
    async def hall_ratings(
        self,
        hall_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        start: Annotated[str, QueryParameter(name="from")],
        end: Annotated[str, QueryParameter(name="to")],
    ) -> ratings.RatingReport:
        """The hall's ratings of ``from``..``to`` (hall-local dates, at most 366 days), counts
        per grade and the satisfaction rate."""
        first = parse_day(start, "query.from")
        last = parse_day(end, "query.to")
        require(principal, "rating.read", await hall_place(pool, hall_id, field="path.hall_id"))
        return await ratings.hall_ratings(pool, hall_id, first, last)
