"""Organisation model (H5): regions, departments, halls, windows, staff and role grants.

Every change writes an audit row (S10) in its own transaction. The caller (an API controller
or the CLI) has already checked with hub.domain.access that the actor may make the change;
lists take a :class:`~hub.domain.access.Visibility` (None: everything, for the system) and
return only what it reaches.

Regions keep a materialised path of ids (``/1/4/9/``), set when the region is created; regions
are not moved, so paths never change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import msgspec

from hub.domain.access import Place, Role, ScopeKind, Visibility, region_path
from hub.domain.errors import Conflict, InvalidInput, NotFound
from hub.services import audit
from hub.services.access import hall_place, home_place, region_place, scope_place
from hub.services.auth import hash_password

_T = TypeVar("_T")
RegionLevel = Literal["province", "city", "county", "township"]
_LEVEL_RANK = {"province": 0, "city": 1, "county": 2, "township": 3}

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Id = Annotated[int, msgspec.Meta(ge=1)]


class RegionNew(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    parent_id: Id | None = None
    level: RegionLevel
    code: Code
    name: Name


class RegionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    parent_id: int | None
    level: RegionLevel
    code: str
    name: str
    path: str


class DepartmentNew(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    region_id: Id
    code: Code
    name: Name


class DepartmentRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    region_id: int
    code: str
    name: str


class HallNew(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    region_id: Id
    code: Code
    name: Name
    timezone: str = "Asia/Shanghai"


class HallRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    region_id: int
    code: str
    name: str
    timezone: str


class WindowNew(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    number: Annotated[int, msgspec.Meta(ge=1, le=9999)]
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    department_id: Id | None = None


class WindowRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    hall_id: int
    number: int
    name: str
    department_id: int | None


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


@contextmanager
def _translated(fields: dict[str, str]) -> Iterator[None]:
    """asyncpg constraint errors → domain errors; ``fields`` maps constraint → field path."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        field = fields.get(exc.constraint_name or "")
        raise Conflict(f"already exists ({exc.constraint_name})", field=field) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        field = fields.get(exc.constraint_name or "")
        raise NotFound(f"a referenced record does not exist ({exc.detail})", field=field) from exc


def _record(cls: type[_T], row: Any) -> _T:
    return msgspec.convert(dict(row), cls)


class _Scope:
    """SQL predicates for a :class:`Visibility`, with the arguments they bind."""

    def __init__(self, visible: Visibility, args: list[Any]) -> None:
        args.extend(
            [list(visible.region_ids), list(visible.hall_ids), list(visible.department_ids)]
        )
        n = len(args)
        self.regions, self.halls, self.departments = f"${n - 2}", f"${n - 1}", f"${n}"

    def under(self, path: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM region g WHERE g.id = ANY({self.regions}::bigint[]) "
            f"AND {path} LIKE g.path || '%')"
        )

    def hall(self, hall: str, path: str) -> str:
        return (
            f"({self.under(path)} OR {hall} = ANY({self.halls}::bigint[]) OR EXISTS ("
            f'SELECT 1 FROM "window" w WHERE w.hall_id = {hall} '
            f"AND w.department_id = ANY({self.departments}::bigint[])))"
        )

    def department(self, department: str, path: str) -> str:
        return (
            f"({self.under(path)} OR {department} = ANY({self.departments}::bigint[]) OR EXISTS ("
            f'SELECT 1 FROM "window" w WHERE w.department_id = {department} '
            f"AND w.hall_id = ANY({self.halls}::bigint[])))"
        )


# --- regions ------------------------------------------------------------------------------


async def create_region(pool: asyncpg.Pool, actor: audit.Actor, new: RegionNew) -> RegionRecord:
    """Create a region under ``new.parent_id`` (or a root) with its materialised path.

    Raises:
        NotFound: the parent does not exist.
        InvalidInput: the level is not below the parent's.
        Conflict: the code is taken.
    """
    async with pool.acquire() as conn, conn.transaction():
        parent_path: str | None = None
        if new.parent_id is not None:
            parent = await conn.fetchrow(
                "SELECT level, path FROM region WHERE id = $1", new.parent_id
            )
            if parent is None:
                raise NotFound(f"region {new.parent_id} does not exist", field="body.parent_id")
            if _LEVEL_RANK[new.level] <= _LEVEL_RANK[parent["level"]]:
                raise InvalidInput(
                    f"a {new.level} cannot lie under a {parent['level']}", field="body.level"
                )
            parent_path = parent["path"]
        with _translated({"region_code_key": "body.code"}):
            region_id = await conn.fetchval(
                "INSERT INTO region (parent_id, level, code, name, path) "
                "VALUES ($1, $2, $3, $4, '') RETURNING id",
                new.parent_id,
                new.level,
                new.code,
                new.name,
            )
        row = await conn.fetchrow(
            "UPDATE region SET path = $2 WHERE id = $1 RETURNING *",
            region_id,
            region_path(parent_path, region_id),
        )
        region = _record(RegionRecord, row)
        await audit.record(
            conn,
            actor,
            "region.create",
            "region",
            region.id,
            place=Place(region_path=region.path),
            after=region,
        )
    return region


async def list_regions(pool: asyncpg.Pool, visible: Visibility | None) -> list[RegionRecord]:
    """Regions under a visible region, plus the regions of visible halls and departments."""
    args: list[Any] = []
    where = ""
    if visible is not None:
        s = _Scope(visible, args)
        where = (
            f"WHERE {s.under('r.path')} "
            f"OR r.id IN (SELECT region_id FROM hall WHERE id = ANY({s.halls}::bigint[])) "
            f"OR r.id IN (SELECT region_id FROM department "
            f"WHERE id = ANY({s.departments}::bigint[]))"
        )
    rows = await pool.fetch(f"SELECT r.* FROM region r {where} ORDER BY r.path", *args)
    return [_record(RegionRecord, r) for r in rows]


# --- departments --------------------------------------------------------------------------


async def create_department(
    pool: asyncpg.Pool, actor: audit.Actor, new: DepartmentNew
) -> DepartmentRecord:
    """Raises NotFound (region), Conflict (code)."""
    async with pool.acquire() as conn, conn.transaction():
        place = await region_place(conn, new.region_id, field="body.region_id")
        with _translated({"department_code_key": "body.code"}):
            row = await conn.fetchrow(
                "INSERT INTO department (region_id, code, name) VALUES ($1, $2, $3) RETURNING *",
                new.region_id,
                new.code,
                new.name,
            )
        department = _record(DepartmentRecord, row)
        place = Place(region_path=place.region_path, department_ids=(department.id,))
        await audit.record(
            conn,
            actor,
            "department.create",
            "department",
            department.id,
            place=place,
            after=department,
        )
    return department


async def list_departments(
    pool: asyncpg.Pool, visible: Visibility | None
) -> list[DepartmentRecord]:
    """Departments under a visible region, visible ones, and those with a window in a
    visible hall."""
    args: list[Any] = []
    where = ""
    if visible is not None:
        where = f"WHERE {_Scope(visible, args).department('d.id', 'r.path')}"
    rows = await pool.fetch(
        f"SELECT d.* FROM department d JOIN region r ON r.id = d.region_id {where} ORDER BY d.id",
        *args,
    )
    return [_record(DepartmentRecord, r) for r in rows]


# --- halls and windows --------------------------------------------------------------------


async def create_hall(pool: asyncpg.Pool, actor: audit.Actor, new: HallNew) -> HallRecord:
    """Raises NotFound (region), InvalidInput (time zone), Conflict (code)."""
    try:
        ZoneInfo(new.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {new.timezone!r}", field="body.timezone") from exc
    async with pool.acquire() as conn, conn.transaction():
        await region_place(conn, new.region_id, field="body.region_id")
        with _translated({"hall_code_key": "body.code"}):
            row = await conn.fetchrow(
                "INSERT INTO hall (region_id, code, name, timezone) VALUES ($1, $2, $3, $4) "
                "RETURNING *",
                new.region_id,
                new.code,
                new.name,
                new.timezone,
            )
        hall = _record(HallRecord, row)
        place = await hall_place(conn, hall.id)
        await audit.record(conn, actor, "hall.create", "hall", hall.id, place=place, after=hall)
    return hall


async def list_halls(pool: asyncpg.Pool, visible: Visibility | None) -> list[HallRecord]:
    """Halls under a visible region, visible halls, and halls where a visible department
    has a window."""
    args: list[Any] = []
    where = ""
    if visible is not None:
        where = f"WHERE {_Scope(visible, args).hall('h.id', 'r.path')}"
    rows = await pool.fetch(
        f"SELECT h.* FROM hall h JOIN region r ON r.id = h.region_id {where} ORDER BY h.id", *args
    )
    return [_record(HallRecord, r) for r in rows]


async def create_window(
    pool: asyncpg.Pool, actor: audit.Actor, hall_id: int, new: WindowNew
) -> WindowRecord:
    """Raises NotFound (hall, department), Conflict (number taken in the hall)."""
    async with pool.acquire() as conn, conn.transaction():
        await hall_place(conn, hall_id)
        with _translated(
            {
                "window_hall_id_number_key": "body.number",
                "window_department_id_fkey": "body.department_id",
            }
        ):
            row = await conn.fetchrow(
                'INSERT INTO "window" (hall_id, number, name, department_id) '
                "VALUES ($1, $2, $3, $4) RETURNING *",
                hall_id,
                new.number,
                new.name,
                new.department_id,
            )
        window = _record(WindowRecord, row)
        place = await hall_place(conn, hall_id)
        await audit.record(
            conn, actor, "window.create", "window", window.id, place=place, after=window
        )
    return window


async def list_windows(pool: asyncpg.Pool, hall_id: int) -> list[WindowRecord]:
    """The windows of a hall by number."""
    rows = await pool.fetch('SELECT * FROM "window" WHERE hall_id = $1 ORDER BY number', hall_id)
    return [_record(WindowRecord, r) for r in rows]


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
        with _translated({"staff_staff_no_key": "body.staff_no"}):
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
        staff = _record(StaffRecord, row)
        await audit.record(conn, actor, "staff.create", "staff", staff.id, place=place, after=staff)
    return staff


async def list_staff(pool: asyncpg.Pool, visible: Visibility | None) -> list[StaffRecord]:
    """Staff whose hall, department or region is visible."""
    args: list[Any] = []
    where = ""
    if visible is not None:
        s = _Scope(visible, args)
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
    return [_record(StaffRecord, r) for r in rows]


async def create_grant(pool: asyncpg.Pool, actor: audit.Actor, new: GrantNew) -> GrantRecord:
    """Give a staff member a role in a scope.

    Raises:
        NotFound: the staff member or the scope does not exist.
        Conflict: the staff member already holds this grant.
    """
    async with pool.acquire() as conn, conn.transaction():
        place = await scope_place(conn, new.scope_kind, new.scope_id, field="body.scope_id")
        with _translated(
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
        grant = _record(GrantRecord, row)
        await audit.record(conn, actor, "grant.create", "grant", grant.id, place=place, after=grant)
    return grant


async def list_grants(pool: asyncpg.Pool, staff_id: int) -> list[GrantRecord]:
    """A staff member's grants by id."""
    rows = await pool.fetch("SELECT * FROM role_grant WHERE staff_id = $1 ORDER BY id", staff_id)
    return [_record(GrantRecord, r) for r in rows]
