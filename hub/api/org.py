"""Regions, departments, halls and windows (H5). Staff and grants live in hub/api/staff.py.

Reading needs any role whose scope reaches the record; creating needs ``admin`` covering the
parent region (regions, departments, halls) or ``admin``/``hall_manager`` covering the hall
(windows). Root regions are created by the system (CLI), not through the API.
"""

from __future__ import annotations

import asyncpg
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from hub.api.deps import require, require_visibility
from hub.domain.access import Principal
from hub.domain.errors import NotAllowed
from hub.services import org
from hub.services.access import AccessService, hall_place, region_place


class OrgController(Controller):
    path = "/api"
    tags = ["organisation"]  # noqa: RUF012

    @get("/regions")
    async def list_regions(
        self, principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool]
    ) -> list[org.RegionRecord]:
        """Regions within the caller's scopes, by path."""
        return await org.list_regions(pool, require_visibility(principal, "org.read"))

    @post("/regions")
    async def create_region(
        self,
        data: JSONBody[org.RegionNew],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> org.RegionRecord:
        """Create a region under a parent the caller administers."""
        if data.parent_id is None:
            raise NotAllowed("root regions are created with the CLI", field="body.parent_id")
        place = await region_place(pool, data.parent_id, field="body.parent_id")
        actor = require(principal, "region.manage", place)
        return await org.create_region(pool, actor, data)

    @get("/departments")
    async def list_departments(
        self, principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool]
    ) -> list[org.DepartmentRecord]:
        """Departments within the caller's scopes."""
        return await org.list_departments(pool, require_visibility(principal, "org.read"))

    @post("/departments")
    async def create_department(
        self,
        data: JSONBody[org.DepartmentNew],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> org.DepartmentRecord:
        """Create a department in a region the caller administers."""
        place = await region_place(pool, data.region_id, field="body.region_id")
        actor = require(principal, "department.manage", place)
        return await org.create_department(pool, actor, data)

    @get("/halls")
    async def list_halls(
        self, principal: NamedDependency[Principal], pool: NamedDependency[asyncpg.Pool]
    ) -> list[org.HallRecord]:
        """Halls within the caller's scopes."""
        return await org.list_halls(pool, require_visibility(principal, "org.read"))

    @post("/halls")
    async def create_hall(
        self,
        data: JSONBody[org.HallNew],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> org.HallRecord:
        """Create a hall in a region the caller administers."""
        place = await region_place(pool, data.region_id, field="body.region_id")
        actor = require(principal, "hall.manage", place)
        return await org.create_hall(pool, actor, data)

    @get("/halls/{hall_id:int}/windows")
    async def list_windows(
        self,
        hall_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> list[org.WindowRecord]:
        """The windows of a hall the caller's scope reaches."""
        require(principal, "org.read", await hall_place(pool, hall_id, field="path.hall_id"))
        return await org.list_windows(pool, hall_id)

    @post("/halls/{hall_id:int}/windows")
    async def create_window(
        self,
        hall_id: FromPath[int],
        data: JSONBody[org.WindowNew],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        access: NamedDependency[AccessService],
    ) -> org.WindowRecord:
        """Create a window in a hall the caller administers or manages."""
        place = await hall_place(pool, hall_id, field="path.hall_id")
        actor = require(principal, "window.manage", place)
        window = await org.create_window(pool, actor, hall_id, data)
        # The hall's departments may have changed: department scopes reach it now.
        access.forget_hall(hall_id)
        return window
