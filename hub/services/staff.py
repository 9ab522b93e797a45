"""Staff accounts and their role grants (H5). Every change writes an audit row (S10) in its
own transaction; the caller has already checked that the actor may make it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import asyncpg
import msgspec

from hub.domain.access import Role, ScopeKind, Visibility
from hub.services import audit
from hub.services.access import home_place, scope_place
from hub.services.auth import hash_password
from hub.services.records import Code, Id, Name, VisibleScope, record, translated


class StaffNew(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new staff member, who belongs to a hall, else a department, else a region."""

    staff_no: Code
    name: Name
    password: Annotated[str, msgspec.Meta(min_length=8, max_length=200)]
    hall_id: Id | None = None
    department_id: Id | None = None
    region_id: Id | None = None


class StaffRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    staff_no: str
    name: str
    hall_id: int | None
    department_id: int | None
    region_id: int | None
    active: bool
    created_at: datetime


class GrantNew(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    staff_id: Id
    role: Role
    scope_kind: ScopeKind
    scope_id: Id


class GrantRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    staff_id: int
    role: Role
    scope_kind: ScopeKind
    scope_id: int


# --- staff and grants ---------------------------------------------------------------------


_STAFF_COLUMNS = "id, staff_no, name, hall_id, department_id, region_id, active, created_at"


async def create_staff(pool: asyncpg.Pool, actor: audit.Actor, new: StaffNew) -> StaffRecord:
    """Create a staff account; the password is stored as an argon2id hash only.

    Raises:
        NotFound: neither hall nor department given, or one does not exist.
        Conflict: the staff number is taken.
    """
    password_hash = await hash_password(new.password)
    async with pool.acquire() as conn, conn.transaction():
        place = await home_place(conn, new.hall_id, new.department_id, new.region_id)
        with translated({"staff_staff_no_key": "body.staff_no"}):
            row = await conn.fetchrow(
                "INSERT INTO staff (staff_no, name, department_id, hall_id, region_id, "
                f"password_hash) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_STAFF_COLUMNS}",
                new.staff_no,
                new.name,
                new.department_id,
                new.hall_id,
                new.region_id,
                password_hash,
            )
        staff = record(StaffRecord, row)
        await audit.record(conn, actor, "staff.create", "staff", staff.id, place=place, after=staff)
    return staff


async def list_staff(pool: asyncpg.Pool, visible: Visibility | None) -> list[StaffRecord]:
    """Staff whose hall, department or region is visible."""
    args: list[Any] = []
    where = ""
    if visible is not None:
        s = VisibleScope(visible, args)
        where = (
            "WHERE EXISTS (SELECT 1 FROM hall h JOIN region r ON r.id = h.region_id "
            f"WHERE h.id = s.hall_id AND {s.hall('h.id', 'r.path')}) "
            "OR EXISTS (SELECT 1 FROM department d JOIN region r ON r.id = d.region_id "
            f"WHERE d.id = s.department_id AND {s.department('d.id', 'r.path')}) "
            "OR EXISTS (SELECT 1 FROM region r "
            f"WHERE r.id = s.region_id AND {s.under('r.path')})"
        )
    rows = await pool.fetch(
        f"SELECT {_STAFF_COLUMNS} FROM staff s {where} ORDER BY s.id",
        *args,
    )
    return [record(StaffRecord, r) for r in rows]


async def create_grant(pool: asyncpg.Pool, actor: audit.Actor, new: GrantNew) -> GrantRecord:
    """Give a staff member a role in a scope.

    Raises:
        NotFound: the staff member or the scope does not exist.
        Conflict: the staff member already holds this grant.
    """
    async with pool.acquire() as conn, conn.transaction():
        place = await scope_place(conn, new.scope_kind, new.scope_id, field="body.scope_id")
        with translated(
            {
                "role_grant_staff_id_role_scope_kind_scope_id_key": "body.scope_id",
                "role_grant_staff_id_fkey": "body.staff_id",
            }
        ):
            row = await conn.fetchrow(
                "INSERT INTO role_grant (staff_id, role, scope_kind, scope_id) "
                "VALUES ($1, $2, $3, $4) RETURNING *",
                new.staff_id,
                new.role,
                new.scope_kind,
                new.scope_id,
            )
        grant = record(GrantRecord, row)
        await audit.record(conn, actor, "grant.create", "grant", grant.id, place=place, after=grant)
    return grant


async def list_grants(pool: asyncpg.Pool, staff_id: int) -> list[GrantRecord]:
    """A staff member's grants by id."""
    rows = await pool.fetch("SELECT * FROM role_grant WHERE staff_id = $1 ORDER BY id", staff_id)
    return [record(GrantRecord, r) for r in rows]
