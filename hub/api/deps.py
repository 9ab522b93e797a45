"""Request dependencies shared by the controllers: the hub, the caller, permission checks."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from hub.domain.access import PUBLIC, Action, Place, Principal, covering_grant, visibility
from hub.domain.access import Visibility as _Visibility
from hub.domain.errors import NotAllowed, NotSignedIn
from hub.runtime import Hub
from hub.services import auth
from hub.services.access import AccessService
from hub.services.audit import Actor
from hub.services.events import EventWriter


def bearer_token(request: Request[Any, Any, Any]) -> str:
    """The token of ``Authorization: Bearer <token>``.

    Raises:
        NotSignedIn: the header is missing or not a bearer token.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotSignedIn("sign in and send Authorization: Bearer <session token>")
    return token.strip()


def provide_hub(state: State) -> Hub:
    hub: Hub = state.hub
    return hub


def provide_pool(state: State) -> asyncpg.Pool:
    hub: Hub = state.hub
    return hub.pool


def events_of(hub: Hub) -> EventWriter:
    """The hub's event writer (its services' transactions).

    Raises:
        RuntimeError: the hub has not been started.
    """
    if hub.events is None:
        raise RuntimeError("Hub.start() has not run")
    return hub.events


def provide_access(state: State) -> AccessService:
    hub: Hub = state.hub
    if hub.access is None:
        raise RuntimeError("Hub.start() has not run")
    return hub.access


async def provide_principal(request: Request[Any, Any, Any], state: State) -> Principal:
    """The staff principal of the request's session token.

    Raises:
        NotSignedIn: no token, or an unknown, revoked or expired one.
    """
    hub: Hub = state.hub
    principal = await auth.session_principal(hub.pool, bearer_token(request))
    if principal is None:
        raise NotSignedIn("the session token is unknown, revoked or expired")
    return principal


DEPENDENCIES = {
    "hub": Provide(provide_hub, sync_to_thread=False),
    "pool": Provide(provide_pool, sync_to_thread=False),
    "access": Provide(provide_access, sync_to_thread=False),
    "principal": Provide(provide_principal),
    "token": Provide(bearer_token, sync_to_thread=False),
}


async def any_caller(request: Request[Any, Any, Any], pool: asyncpg.Pool) -> Principal:
    """The caller of an endpoint open to devices, staff and the public alike: a device or a
    staff session by its bearer token, or the public without an Authorization header.

    Raises:
        NotSignedIn: a token that is neither a device's nor an open session's.
    """
    if not request.headers.get("authorization"):
        return PUBLIC
    token = bearer_token(request)
    principal = await auth.device_by_token(pool, token) or await auth.session_principal(pool, token)
    if principal is None:
        raise NotSignedIn("the token is unknown, revoked or expired")
    return principal


def require(principal: Principal, action: Action, place: Place) -> Actor:
    """The actor for an audit row if ``principal`` may perform ``action`` at ``place``.

    Raises:
        NotAllowed: no grant of a permitted role covers ``place``.
    """
    grant = covering_grant(principal, action, place)
    if grant is None:
        raise NotAllowed(f"{action}: no role of yours covers this target")
    return Actor.of(principal, grant)


def require_visibility(principal: Principal, action: Action) -> _Visibility:
    """The scopes through which ``principal`` may perform ``action`` on lists.

    Raises:
        NotAllowed: none of its roles permits ``action`` anywhere.
    """
    visible = visibility(principal, action)
    if visible.empty:
        raise NotAllowed(f"{action}: none of your roles permits it")
    return visible
