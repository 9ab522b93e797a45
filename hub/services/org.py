"""Organisation model (H5): regions, departments, halls and windows (staff: services/staff.py).

Every change writes an audit row (S10) in its own transaction. The caller (an API controller
or the CLI) has already checked with hub.domain.access that the actor may make the change;
lists take a :class:`~hub.domain.access.Visibility` (None: everything, for the system) and
return only what it reaches.

Regions keep a materialised path of ids (``/1/4/9/``), set when the region is created; regions
are not moved, so paths never change.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import msgspec

from hub.domain.access import Place, Visibility, region_path
from hub.domain.errors import InvalidInput, NotFound
from hub.services import audit
from hub.services.access import hall_place, region_place
from hub.services.records import Code, Id, Name, VisibleScope, record, translated

_T = TypeVar("_T")
RegionLevel = Literal["province", "city", "county", "township"]
_LEVEL_RANK = {"province": 0, "city": 1, "county": 2, "township": 3}


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
        with translated({"region_code_key": "body.code"}):
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
        region = record(RegionRecord, row)
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
        s = VisibleScope(visible, args)
        where = (
            f"WHERE {s.under('r.path')} "
            f"OR r.id IN (SELECT region_id FROM hall WHERE id = ANY({s.halls}::bigint[])) "
            f"OR r.id IN (SELECT region_id FROM department "
            f"WHERE id = ANY({s.departments}::bigint[]))"
        )
    rows = await pool.fetch(f"SELECT r.* FROM region r {where} ORDER BY r.path", *args)
    return [record(RegionRecord, r) for r in rows]


# --- departments --------------------------------------------------------------------------


async def create_department(
    pool: asyncpg.Pool, actor: audit.Actor, new: DepartmentNew
) -> DepartmentRecord:
    """Raises NotFound (region), Conflict (code)."""
    async with pool.acquire() as conn, conn.transaction():
        place = await region_place(conn, new.region_id, field="body.region_id")
        with translated({"department_code_key": "body.code"}):
            row = await conn.fetchrow(
                "INSERT INTO department (region_id, code, name) VALUES ($1, $2, $3) RETURNING *",
                new.region_id,
                new.code,
                new.name,
            )
        department = record(DepartmentRecord, row)
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
        where = f"WHERE {VisibleScope(visible, args).department('d.id', 'r.path')}"
    rows = await pool.fetch(
        f"SELECT d.* FROM department d JOIN region r ON r.id = d.region_id {where} ORDER BY d.id",
        *args,
    )
    return [record(DepartmentRecord, r) for r in rows]


# --- halls and windows --------------------------------------------------------------------


async def create_hall(pool: asyncpg.Pool, actor: audit.Actor, new: HallNew) -> HallRecord:
    """Raises NotFound (region), InvalidInput (time zone), Conflict (code)."""
    try:
        ZoneInfo(new.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {new.timezone!r}", field="body.timezone") from exc
    async with pool.acquire() as conn, conn.transaction():
        await region_place(conn, new.region_id, field="body.region_id")
        with translated({"hall_code_key": "body.code"}):
            row = await conn.fetchrow(
                "INSERT INTO hall (region_id, code, name, timezone) VALUES ($1, $2, $3, $4) "
                "RETURNING *",
                new.region_id,
                new.code,
                new.name,
                new.timezone,
            )
        hall = record(HallRecord, row)
        place = await hall_place(conn, hall.id)
        await audit.record(conn, actor, "hall.create", "hall", hall.id, place=place, after=hall)
    return hall


async def list_halls(pool: asyncpg.Pool, visible: Visibility | None) -> list[HallRecord]:
    """Halls under a visible region, visible halls, and halls where a visible department
    has a window."""
    args: list[Any] = []
    where = ""
    if visible is not None:
        where = f"WHERE {VisibleScope(visible, args).hall('h.id', 'r.path')}"
    rows = await pool.fetch(
        f"SELECT h.* FROM hall h JOIN region r ON r.id = h.region_id {where} ORDER BY h.id", *args
    )
    return [record(HallRecord, r) for r in rows]


async def create_window(
    pool: asyncpg.Pool, actor: audit.Actor, hall_id: int, new: WindowNew
) -> WindowRecord:
    """Raises NotFound (hall, department), Conflict (number taken in the hall)."""
    async with pool.acquire() as conn, conn.transaction():
        await hall_place(conn, hall_id)
        with translated(
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
        window = record(WindowRecord, row)
        place = await hall_place(conn, hall_id)
        await audit.record(
            conn, actor, "window.create", "window", window.id, place=place, after=window
        )
    return window


async def list_windows(pool: asyncpg.Pool, hall_id: int) -> list[WindowRecord]:
    """The windows of a hall by number."""
    rows = await pool.fetch('SELECT * FROM "window" WHERE hall_id = $1 ORDER BY number', hall_id)
    return [record(WindowRecord, r) for r in rows]
