"""Audit log (S10): every staff operation, written in the transaction of the change it records.

A row says who acted (:class:`Actor`: staff id and label, or a system label such as ``cli``),
under which role and scope, what they did (``action``, e.g. ``hall.create``), to what
(``target_kind``/``target_id``), the record before and after, and where the target lives
(region path, hall, department) so that scoped readers see exactly their rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from hub.domain.access import Grant, Place, Principal, Visibility
from storage.pool import as_json

MAX_LIMIT = 1000


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who performs a change, and the role and scope that allowed it."""

    staff_id: int | None
    label: str
    role: str
    scope_kind: str
    scope_id: int | None = None

    @classmethod
    def system(cls, label: str = "cli") -> Actor:
        """A process acting without a staff account (``hallhub device add``, migrations)."""
        return cls(staff_id=None, label=label, role="system", scope_kind="system")

    @classmethod
    def of(cls, principal: Principal, grant: Grant) -> Actor:
        """A staff principal acting under ``grant``."""
        return cls(
            staff_id=principal.staff_id,
            label=principal.label,
            role=grant.role,
            scope_kind=grant.scope_kind,
            scope_id=grant.scope_id,
        )

    @classmethod
    def self_service(cls, staff_id: int, label: str) -> Actor:
        """A staff member acting on their own account (sign-in, sign-out)."""
        return cls(
            staff_id=staff_id, label=label, role="self", scope_kind="staff", scope_id=staff_id
        )


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the audit log."""

    id: int
    at: datetime
    actor_id: int | None
    actor_label: str
    role: str
    scope_kind: str
    scope_id: int | None
    action: str
    target_kind: str
    target_id: str
    before: Any
    after: Any
    region_path: str | None
    hall_id: int | None
    department_id: int | None


class AuditQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters of an audit log query; all optional, combined with AND.

    ``actor`` matches a staff id (``"5"`` or ``"staff:5"``) or an actor label (``"cli"``).
    ``action`` matches exactly, or as a prefix when it ends with ``.`` (``"hall."``).
    Rows come newest first; ``before_id`` pages further back.
    """

    actor: str | None = None
    action: str | None = None
    target_kind: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None
    limit: int = 100


async def record(
    conn: asyncpg.Connection,
    actor: Actor,
    action: str,
    target_kind: str,
    target_id: object,
    *,
    place: Place | None,
    before: Any = None,
    after: Any = None,
) -> None:
    """Append one audit row on ``conn``; call it inside the transaction of the change."""
    department_id = place.department_ids[0] if place and len(place.department_ids) == 1 else None
    await conn.execute(
        """INSERT INTO audit_log (actor_id, actor_label, role, scope_kind, scope_id, action,
                                  target_kind, target_id, before, after,
                                  region_path, hall_id, department_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        actor.staff_id,
        actor.label,
        actor.role,
        actor.scope_kind,
        actor.scope_id,
        action,
        target_kind,
        str(target_id),
        None if before is None else as_json(before),
        None if after is None else as_json(after),
        place.region_path if place else None,
        place.hall_id if place else None,
        department_id,
    )


async def query(
    pool: asyncpg.Pool, visible: Visibility | None, filters: AuditQuery
) -> list[AuditEntry]:
    """Audit rows matching ``filters`` within ``visible`` (None: every row, for the system).

    A row is visible when its region path lies under a visible region, or its hall or its
    department is visible (the coverage rules of hub.domain.access).
    """
    where: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if visible is not None:
        regions, halls, departments = (
            arg(list(visible.region_ids)),
            arg(list(visible.hall_ids)),
            arg(list(visible.department_ids)),
        )
        where.append(
            f"""(EXISTS (SELECT 1 FROM region g WHERE g.id = ANY({regions}::bigint[])
                          AND a.region_path LIKE g.path || '%')
                 OR a.hall_id = ANY({halls}::bigint[])
                 OR a.department_id = ANY({departments}::bigint[]))"""
        )
    if filters.actor:
        who = filters.actor.removeprefix("staff:")
        if who.isdigit():
            where.append(f"a.actor_id = {arg(int(who))}")
        else:
            where.append(f"a.actor_label = {arg(filters.actor)}")
    if filters.action:
        if filters.action.endswith("."):
            where.append(f"starts_with(a.action, {arg(filters.action)})")
        else:
            where.append(f"a.action = {arg(filters.action)}")
    if filters.target_kind:
        where.append(f"a.target_kind = {arg(filters.target_kind)}")
    if filters.target_id:
        where.append(f"a.target_id = {arg(filters.target_id)}")
    if filters.since:
        where.append(f"a.at >= {arg(filters.since)}")
    if filters.until:
        where.append(f"a.at < {arg(filters.until)}")
    if filters.before_id:
        where.append(f"a.id < {arg(filters.before_id)}")
    limit = arg(max(1, min(filters.limit, MAX_LIMIT)))
    sql = (
        "SELECT a.id, a.at, a.actor_id, a.actor_label, a.role, a.scope_kind, a.scope_id, "
        "a.action, a.target_kind, a.target_id, a.before, a.after, a.region_path, a.hall_id, "
        "a.department_id FROM audit_log a"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY a.id DESC LIMIT {limit}"
    )
    rows = await pool.fetch(sql, *args)
    return [AuditEntry(**dict(row)) for row in rows]
