"""``GET /api/audit``: the audit log (S10), filtered and limited to the caller's scopes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import asyncpg
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from hub.api.deps import require_visibility
from hub.domain.access import Principal
from hub.services import audit


@get("/api/audit", tags=["audit"])
async def query_audit(
    principal: NamedDependency[Principal],
    pool: NamedDependency[asyncpg.Pool],
    actor: FromQuery[str | None] = None,
    action: FromQuery[str | None] = None,
    target_kind: FromQuery[str | None] = None,
    target_id: FromQuery[str | None] = None,
    since: FromQuery[datetime | None] = None,
    until: FromQuery[datetime | None] = None,
    before_id: FromQuery[int | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=audit.MAX_LIMIT)] = 100,
) -> list[audit.AuditEntry]:
    """Audit rows, newest first, that admins, hall managers and supervisors may see.

    ``actor``: a staff id or label; ``action``: exact, or a prefix ending in ``.``;
    ``since``/``until``: ISO 8601 times; ``before_id``: page further back.
    """
    visible = require_visibility(principal, "audit.read")
    filters = audit.AuditQuery(
        actor=actor,
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    return await audit.query(pool, visible, filters)
