"""Sign-in, sign-out and "who am I" (H5)."""

from __future__ import annotations

from typing import Annotated

import asyncpg
import msgspec
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody

from hub.api.ratelimit import public_rate_guard
from hub.domain.access import Grant, Principal
from hub.domain.errors import NotSignedIn
from hub.runtime import Hub
from hub.services import auth


class SignIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    staff_no: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Me(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    staff_id: int | None
    label: str
    grants: tuple[Grant, ...]


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]  # noqa: RUF012 - Litestar reads a class attribute

    @post("/sign-in", guards=[public_rate_guard], status_code=200)
    async def sign_in(
        self, data: JSONBody[SignIn], pool: NamedDependency[asyncpg.Pool], state: State
    ) -> auth.Session:
        """Exchange a staff number and password for a session token (shown once)."""
        hub: NamedDependency[Hub] = state.hub
        return await auth.sign_in(pool, data.staff_no, data.password, hub.settings.session_hours)

    @post("/sign-out", status_code=204)
    async def sign_out(
        self, token: NamedDependency[str], pool: NamedDependency[asyncpg.Pool]
    ) -> None:
        """Revoke the session of the bearer token."""
        if not await auth.sign_out(pool, token):
            raise NotSignedIn("the session token is unknown or already revoked")

    @get("/me")
    async def me(self, principal: NamedDependency[Principal]) -> Me:
        """The signed-in staff member and their grants."""
        return Me(
            id=principal.id,
            staff_id=principal.staff_id,
            label=principal.label,
            grants=principal.grants,
        )
