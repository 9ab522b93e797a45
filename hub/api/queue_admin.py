"""The hall's queue configuration over HTTP (Q1, Q2, Q6): the manager console's endpoints.

Every change needs ``queue.configure`` (admin, hall_manager) covering the hall, is audited,
and is announced on ``hall:<hall_id>`` as ``queue_configured`` with the new QueueState.

    PATCH /api/halls/{hall_id}/groups/{group_id}          GroupPatch → GroupRecord
    GET   /api/halls/{hall_id}/queue-settings             → QueueSettings
    PATCH /api/halls/{hall_id}/queue-settings             QueueSettingsPatch → QueueSettings
    PUT   /api/halls/{hall_id}/windows/{window_id}/red-flag   RedFlag → WindowView
    GET   /api/halls/{hall_id}/queue-config               → QueueConfig (groups, windows with
                                                            their groups by rank, settings, staff)
    PUT   /api/staff/{staff_id}/star                      StarStaff → HallStaff
          (``staff.manage`` or ``queue.configure`` covering the staff member's home)

Creating groups and setting a window's groups stay in hub/api/queue.py.
"""

from __future__ import annotations

import asyncpg
from litestar import Controller, get, patch, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from hub.api.deps import events_of, require
from hub.domain.access import Principal, covering_grant
from hub.domain.errors import NotAllowed
from hub.runtime import Hub
from hub.services import honours, queue_config
from hub.services.access import hall_place, staff_place
from hub.services.audit import Actor
from hub.services.queue_views import WindowView


class QueueAdminController(Controller):
    path = "/api/halls/{hall_id:int}"
    tags = ["queue configuration"]  # noqa: RUF012

    @patch("/groups/{group_id:int}")
    async def update_group(
        self,
        hall_id: FromPath[int],
        group_id: FromPath[int],
        data: JSONBody[queue_config.GroupPatch],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> queue_config.GroupRecord:
        """Change a service group: name, active, daily quota, per-document limit, service
        time; the prefix only while the group has issued no ticket (409 prefix_in_use)."""
        place = await hall_place(pool, hall_id, field="path.hall_id")
        actor = require(principal, "queue.configure", place)
        return await queue_config.update_group(
            events_of(hub), hub.now, actor, place, group_id, data
        )

    @get("/queue-settings")
    async def read_settings(
        self,
        hall_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> queue_config.QueueSettings:
        """The hall's issuing hours, limits and time zone."""
        require(principal, "queue.configure", await hall_place(pool, hall_id, field="path.hall_id"))
        return await queue_config.queue_settings(pool, hall_id)

    @patch("/queue-settings")
    async def update_settings(
        self,
        hall_id: FromPath[int],
        data: JSONBody[queue_config.QueueSettingsPatch],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> queue_config.QueueSettings:
        """Change issuing hours (hall-local minutes, opens before closes), the per-document
        daily ticket limit, re-queues of a skipped ticket, or the time zone."""
        place = await hall_place(pool, hall_id, field="path.hall_id")
        actor = require(principal, "queue.configure", place)
        return await queue_config.update_settings(events_of(hub), hub.now, actor, place, data)

    @put("/windows/{window_id:int}/red-flag")
    async def set_red_flag(
        self,
        hall_id: FromPath[int],
        window_id: FromPath[int],
        data: JSONBody[honours.RedFlag],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> WindowView:
        """Mark a window as a red-flag window (红旗窗口), or remove the mark."""
        place = await hall_place(pool, hall_id, field="path.hall_id")
        actor = require(principal, "queue.configure", place)
        return await honours.set_red_flag(
            events_of(hub), hub.now, actor, place, window_id, data.red_flag
        )

    @get("/queue-config")
    async def read_config(
        self,
        hall_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> queue_config.QueueConfig:
        """Groups, windows with their groups by rank, settings and staff of the hall."""
        require(principal, "queue.configure", await hall_place(pool, hall_id, field="path.hall_id"))
        return await queue_config.queue_config(pool, hall_id)


class StaffHonourController(Controller):
    path = "/api/staff/{staff_id:int}"
    tags = ["queue configuration"]  # noqa: RUF012

    @put("/star")
    async def set_star(
        self,
        staff_id: FromPath[int],
        data: JSONBody[honours.StarStaff],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> queue_config.HallStaff:
        """Mark a staff member as star staff (先进个人), or remove the mark; the displays of
        their hall (and of the window they work) show it at once."""
        place = await staff_place(pool, staff_id, field="path.staff_id")
        grant = covering_grant(principal, "staff.manage", place) or covering_grant(
            principal, "queue.configure", place
        )
        if grant is None:
            raise NotAllowed("staff.star: the staff member is outside your scope")
        return await honours.set_star_staff(
            events_of(hub), hub.now, Actor.of(principal, grant), place, staff_id, data.star_staff
        )
