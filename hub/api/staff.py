"""Staff accounts and role grants (H5).

A hall manager creates staff of its own hall and grants them ``window_staff`` there; an admin
does both anywhere within its region. Grants are read by admins, hall managers and
supervisors whose scope reaches the staff member, and by the staff member themselves.
"""

from __future__ import annotations

import asyncpg
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from hub.api.deps import require, require_visibility
from hub.domain.access import Grant, Principal, covering_grant, may_grant
from hub.domain.errors import NotAllowed
from hub.services import staff as staff_service
from hub.services.access import home_place, scope_place, staff_place
from hub.services.audit import Actor


class StaffController(Controller):
    path = "/api"
    tags = ["staff"]  # noqa: RUF012

    @get("/staff")
    async def list_staff(
        self, principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool]
    ) -> list[staff_service.StaffRecord]:
        """Staff whose hall, department or region the caller's scope reaches."""
        return await staff_service.list_staff(pool, require_visibility(principal, "org.read"))

    @post("/staff")
    async def create_staff(
        self,
        data: JSONBody[staff_service.StaffNew],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> staff_service.StaffRecord:
        """Create a staff account in a hall, department or region the caller manages."""
        place = await home_place(pool, data.hall_id, data.department_id, data.region_id)
        actor = require(principal, "staff.manage", place)
        return await staff_service.create_staff(pool, actor, data)

    @get("/staff/{staff_id:int}/grants")
    async def list_grants(
        self,
        staff_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> list[staff_service.GrantRecord]:
        """A staff member's grants."""
        place = await staff_place(pool, staff_id, field="path.staff_id")
        if principal.staff_id != staff_id:
            require(principal, "grant.read", place)
        return await staff_service.list_grants(pool, staff_id)

    @post("/grants")
    async def create_grant(
        self,
        data: JSONBody[staff_service.GrantNew],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> staff_service.GrantRecord:
        """Give a staff member the caller manages a role within a scope the caller may grant."""
        staff_home = await staff_place(pool, data.staff_id, field="body.staff_id")
        if covering_grant(principal, "staff.manage", staff_home) is None:
            raise NotAllowed("grant.create: the staff member is outside your scope")
        new = Grant(data.role, data.scope_kind, data.scope_id)
        place = await scope_place(pool, data.scope_kind, data.scope_id, field="body.scope_id")
        granting = may_grant(principal, new, place)
        if granting is None:
            raise NotAllowed(f"grant.create: you may not grant {data.role} in this scope")
        return await staff_service.create_grant(pool, Actor.of(principal, granting), data)
