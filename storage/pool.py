"""The asyncpg pool, with jsonb read and written through msgspec (the one JSON codec)."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

_json_encode = msgspec.json.encode
_json_decode = msgspec.json.decode


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: b"\x01" + _json_encode(v),
        decoder=lambda b: _json_decode(b[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """What a connection goes back to the pool with: no open transaction.

    Replaces asyncpg's default reset (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL``, one round trip per release): pool connections keep no session state, since
    their advisory locks and settings are transaction-scoped (``pg_advisory_xact_lock``,
    ``SET LOCAL``); session locks and LISTEN live on dedicated connections (:func:`connect`).
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool whose connections encode jsonb with msgspec.

    Args:
        dsn: a ``postgresql://`` URL.
        min_size: connections opened at once.
        max_size: upper bound of open connections.
    """
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_reset_connection,
    )
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    """One dedicated connection (advisory locks, LISTEN), with the same jsonb codec."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


def as_json(value: Any) -> Any:
    """Structs and builtins into plain JSON values for a jsonb parameter."""
    return msgspec.to_builtins(value)
