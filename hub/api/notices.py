"""Hall notices (Q5): ``/api/halls/{hall_id}/notices``.

Posting needs ``admin`` or ``hall_manager`` covering the hall (action ``notice.post``, as
windows are managed); listing needs any role whose scope reaches the hall (``org.read``).
"""

from __future__ import annotations

import asyncpg
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from hub.api.deps import require
from hub.domain.access import Principal
from hub.runtime import Hub
from hub.services import notices
from hub.services.access import hall_place


class NoticeController(Controller):
    path = "/api/halls/{hall_id:int}/notices"
    tags = ["notices"]  # noqa: RUF012

    @post("/")
    async def post_notice(
        self,
        hall_id: FromPath[int],
        data: JSONBody[notices.NoticeNew],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
        hub: NamedDependency[Hub],
    ) -> notices.NoticeRecord:
        """Post a notice to a hall the caller administers or manages; its display shows it
        at once (event ``notice_posted`` on ``hall:<hall_id>``)."""
        place = await hall_place(pool, hall_id, field="path.hall_id")
        actor = require(principal, "notice.post", place)
        if hub.events is None:
            raise RuntimeError("Hub.start() has not run")
        return await notices.post_notice(hub.events, actor, place, data)

    @get("/")
    async def list_notices(
        self,
        hall_id: FromPath[int],
        principal: NamedDependency[Principal],
        pool: NamedDependency[asyncpg.Pool],
    ) -> list[notices.NoticeRecord]:
        """The hall's current (unexpired) notices, newest first, for staff of its scope."""
        require(principal, "org.read", await hall_place(pool, hall_id, field="path.hall_id"))
        return await notices.current_notices(pool, hall_id)
