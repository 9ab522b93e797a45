"""Credentials: staff passwords and sessions, device tokens (H5, D6).

- Passwords use argon2id (a slow hash), computed in a worker thread so the event loop keeps
  serving peers while someone signs in.
- A session token is ``secrets.token_urlsafe(32)``; only its SHA-256 is stored, with an expiry
  (``settings.session_hours``). Sign-out revokes it.
- A device token is a random 256-bit value shown once at registration; only its SHA-256 is
  stored. SHA-256 (not a slow hash) is deliberate: tokens carry 256 bits of entropy, so a fast
  hash is safe, and thousands of devices re-authenticate at once after a restart (DESIGN.md,
  "Event loop hygiene").
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import argon2
import asyncpg
import msgspec
import structlog

from hub.domain.access import (
    DeviceKind,
    Grant,
    Principal,
    device_principal,
    staff_principal,
)
from hub.domain.errors import Conflict, NotFound, SignInFailed
from hub.services import audit
from hub.services.access import hall_place, staff_place

log = structlog.get_logger("hub.services.auth")

_hasher = argon2.PasswordHasher()
# Verified against when the staff number is unknown, so that both failures take equal time.
_DUMMY_HASH = _hasher.hash("not-a-password")


def set_password_parameters(parameters: argon2.Parameters) -> None:
    """Use other argon2 parameters for new hashes (tests use ``argon2.profiles.CHEAPEST``).

    Existing hashes still verify; a sign-in rehashes a password whose parameters differ.
    """
    global _hasher, _DUMMY_HASH
    _hasher = argon2.PasswordHasher.from_parameters(parameters)
    _DUMMY_HASH = _hasher.hash("not-a-password")


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """A new session: the token is shown to the client once and never stored."""

    token: str
    expires_at: datetime
    staff_id: int
    staff_no: str
    name: str


class DeviceRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    hall_id: int
    kind: str
    name: str
    model: str
    firmware: str
    created_at: datetime
    revoked_at: datetime | None
    # Issue 5: the host (kiosk, ticket machine) it belongs to, or the window it stands at.
    host_id: int | None = None
    window_id: int | None = None


class DeviceCreated(msgspec.Struct, frozen=True, kw_only=True):
    """A registered device and its token, which is shown this once only."""

    device: DeviceRecord
    token: str


def token_hash(token: str) -> bytes:
    """SHA-256 of a session or device token, as stored."""
    return hashlib.sha256(token.encode()).digest()


async def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (computed off the event loop)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(stored: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, stored, password)
    except argon2.exceptions.VerificationError:
        return False
    except argon2.exceptions.InvalidHashError:
        return False


async def sign_in(pool: asyncpg.Pool, staff_no: str, password: str, hours: float) -> Session:
    """Check a staff number and password and open a session of ``hours``.

    Raises:
        SignInFailed: unknown staff number, inactive account or wrong password (one error for
            all three, so that staff numbers cannot be probed).
    """
    row = await pool.fetchrow(
        "SELECT id, name, password_hash, active FROM staff WHERE staff_no = $1", staff_no
    )
    stored = row["password_hash"] if row is not None else _DUMMY_HASH
    ok = await _verify(stored, password)
    if row is None or not ok or not row["active"]:
        log.info("sign_in_failed", staff_no=staff_no)
        raise SignInFailed("wrong staff number or password")
    token = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + timedelta(hours=hours)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO staff_session (token_hash, staff_id, expires_at) VALUES ($1, $2, $3)",
            token_hash(token),
            row["id"],
            expires_at,
        )
        await audit.record(
            conn,
            audit.Actor.self_service(row["id"], row["name"]),
            "session.sign_in",
            "staff",
            row["id"],
            place=await staff_place(conn, row["id"]),
        )
    if _hasher.check_needs_rehash(stored):
        await pool.execute(
            "UPDATE staff SET password_hash = $2 WHERE id = $1",
            row["id"],
            await hash_password(password),
        )
    return Session(
        token=token, expires_at=expires_at, staff_id=row["id"], staff_no=staff_no, name=row["name"]
    )


async def sign_out(pool: asyncpg.Pool, token: str) -> bool:
    """Revoke the session of ``token``. Returns False when it was not an open session."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """UPDATE staff_session ss SET revoked_at = now()
               FROM staff s
               WHERE ss.token_hash = $1 AND ss.revoked_at IS NULL AND s.id = ss.staff_id
               RETURNING s.id, s.name""",
            token_hash(token),
        )
        if row is None:
            return False
        await audit.record(
            conn,
            audit.Actor.self_service(row["id"], row["name"]),
            "session.sign_out",
            "staff",
            row["id"],
            place=await staff_place(conn, row["id"]),
        )
    return True


async def load_grants(db: asyncpg.Connection | asyncpg.Pool, staff_id: int) -> tuple[Grant, ...]:
    """A staff member's grants, in a stable order (hall, department, region; then by id)."""
    rows = await db.fetch(
        """SELECT role, scope_kind, scope_id FROM role_grant WHERE staff_id = $1
           ORDER BY array_position(ARRAY['hall','department','region'], scope_kind), id""",
        staff_id,
    )
    return tuple(Grant(r["role"], r["scope_kind"], r["scope_id"]) for r in rows)


async def session_principal(pool: asyncpg.Pool, token: str) -> Principal | None:
    """The staff principal of an open, unexpired session of an active account, else None."""
    row = await pool.fetchrow(
        """SELECT s.id, s.name FROM staff_session ss JOIN staff s ON s.id = ss.staff_id
           WHERE ss.token_hash = $1 AND ss.revoked_at IS NULL AND ss.expires_at > now()
             AND s.active""",
        token_hash(token),
    )
    if row is None:
        return None
    return staff_principal(row["id"], row["name"], await load_grants(pool, row["id"]))


async def device_by_token(pool: asyncpg.Pool, token: str) -> Principal | None:
    """The device principal of an unrevoked device token, else None."""
    row = await pool.fetchrow(
        "SELECT id, hall_id, kind, name FROM device WHERE token_hash = $1 AND revoked_at IS NULL",
        token_hash(token),
    )
    if row is None:
        return None
    return device_principal(row["id"], row["hall_id"], row["kind"], row["name"])


_DEVICE_COLUMNS = (
    "id, hall_id, kind, name, model, firmware, created_at, revoked_at, host_id, window_id"
)


async def register_device(
    pool: asyncpg.Pool, actor: audit.Actor, hall_id: int, kind: DeviceKind, name: str
) -> DeviceCreated:
    """Register a device of ``kind`` in ``hall_id`` and issue its token (shown once).

    The caller has checked that ``actor`` may manage devices of the hall; the CLI passes
    ``audit.Actor.system("cli")``.

    Raises:
        NotFound: the hall does not exist.
    """
    token = secrets.token_urlsafe(32)  # 32 bytes = 256 bits
    async with pool.acquire() as conn, conn.transaction():
        place = await hall_place(conn, hall_id)
        row = await conn.fetchrow(
            f"""INSERT INTO device (hall_id, kind, name, token_hash) VALUES ($1, $2, $3, $4)
                RETURNING {_DEVICE_COLUMNS}""",
            hall_id,
            kind,
            name,
            token_hash(token),
        )
        device = DeviceRecord(**dict(row))
        await audit.record(
            conn, actor, "device.register", "device", device.id, place=place, after=device
        )
    log.info("device_registered", device=device.id, hall=hall_id, kind=kind)
    return DeviceCreated(device=device, token=token)


async def get_device(db: asyncpg.Connection | asyncpg.Pool, device_id: int) -> DeviceRecord:
    """Raises NotFound when the device does not exist."""
    row = await db.fetchrow(f"SELECT {_DEVICE_COLUMNS} FROM device WHERE id = $1", device_id)
    if row is None:
        raise NotFound(f"device {device_id} does not exist", field="device_id")
    return DeviceRecord(**dict(row))


async def revoke_device(pool: asyncpg.Pool, actor: audit.Actor, device_id: int) -> DeviceRecord:
    """Revoke a device's token; it can no longer authenticate.

    Raises:
        NotFound: no such device.
        Conflict: the device is already revoked.
    """
    async with pool.acquire() as conn, conn.transaction():
        before = await get_device(conn, device_id)
        if before.revoked_at is not None:
            raise Conflict(f"device {device_id} is already revoked")
        row = await conn.fetchrow(
            f"UPDATE device SET revoked_at = now() WHERE id = $1 RETURNING {_DEVICE_COLUMNS}",
            device_id,
        )
        after = DeviceRecord(**dict(row))
        await audit.record(
            conn,
            actor,
            "device.revoke",
            "device",
            device_id,
            place=await hall_place(conn, before.hall_id),
            before=before,
            after=after,
        )
    log.info("device_revoked", device=device_id)
    return after


async def list_devices(pool: asyncpg.Pool, hall_id: int) -> list[DeviceRecord]:
    """The devices of a hall, revoked ones included, by id."""
    rows = await pool.fetch(
        f"SELECT {_DEVICE_COLUMNS} FROM device WHERE hall_id = $1 ORDER BY id", hall_id
    )
    return [DeviceRecord(**dict(r)) for r in rows]
