"""Rows for tests, written with plain SQL: a region, a hall, devices and staff with tokens."""

from __future__ import annotations

import secrets

import asyncpg
import msgspec

from hub.services.auth import token_hash


class Place(msgspec.Struct, frozen=True):
    province_id: int
    city_id: int
    hall_id: int
    window_ids: list[int]


async def make_hall(
    db: asyncpg.Pool, code: str = "h1", city_code: str | None = None, windows: int = 2
) -> Place:
    province = await db.fetchval("SELECT id FROM region WHERE code = 'p'")
    if province is None:
        province = await db.fetchval(
            "INSERT INTO region (level, code, name, path) VALUES ('province', 'p', '某省', '') "
            "RETURNING id"
        )
        await db.execute("UPDATE region SET path = '/' || id || '/' WHERE id = $1", province)
    city_code = city_code or f"c-{code}"
    city = await db.fetchval("SELECT id FROM region WHERE code = $1", city_code)
    if city is None:
        city = await db.fetchval(
            "INSERT INTO region (parent_id, level, code, name, path) "
            "VALUES ($1, 'city', $2, '某市', '') RETURNING id",
            province,
            city_code,
        )
        await db.execute(
            "UPDATE region SET path = $2 || id || '/' WHERE id = $1", city, f"/{province}/"
        )
    hall = await db.fetchval(
        "INSERT INTO hall (region_id, code, name) VALUES ($1, $2, $3) RETURNING id",
        city,
        code,
        f"{code} 政务服务大厅",
    )
    window_ids = [
        await db.fetchval(
            'INSERT INTO "window" (hall_id, number, name) VALUES ($1, $2, $3) RETURNING id',
            hall,
            n,
            f"{n}号窗口",
        )
        for n in range(1, windows + 1)
    ]
    return Place(province, city, hall, window_ids)


async def make_device(
    db: asyncpg.Pool, hall_id: int, kind: str = "ticket_machine", name: str = "取号机1"
) -> tuple[int, str]:
    token = secrets.token_urlsafe(32)
    device_id = await db.fetchval(
        "INSERT INTO device (hall_id, kind, name, token_hash) VALUES ($1, $2, $3, $4) RETURNING id",
        hall_id,
        kind,
        name,
        token_hash(token),
    )
    return int(device_id), token


async def make_staff(
    db: asyncpg.Pool,
    staff_no: str,
    grants: list[tuple[str, str, int]],
    name: str = "张伟",
) -> tuple[int, str]:
    """A staff member with ``grants`` (role, scope_kind, scope_id) and a session token."""
    staff_id = await db.fetchval(
        "INSERT INTO staff (staff_no, name, password_hash) VALUES ($1, $2, 'x') RETURNING id",
        staff_no,
        name,
    )
    for role, scope_kind, scope_id in grants:
        await db.execute(
            "INSERT INTO role_grant (staff_id, role, scope_kind, scope_id) VALUES ($1,$2,$3,$4)",
            staff_id,
            role,
            scope_kind,
            scope_id,
        )
    token = secrets.token_urlsafe(32)
    await db.execute(
        "INSERT INTO staff_session (token_hash, staff_id, expires_at) "
        "VALUES ($1, $2, now() + interval '1 hour')",
        token_hash(token),
        staff_id,
    )
    return int(staff_id), token
