"""The embedded PostgreSQL of `hallhub demo`: starts, gets a UTF8 database, runs our SQL."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from storage.embedded import DATABASE, EmbeddedPostgres, ensure_database
from storage.migrate import migrate


async def test_the_embedded_server_runs_the_migrations_in_a_utf8_database(tmp_path: Path):
    """pgserver's PostgreSQL 16 takes the same migrations as the machine's server."""
    server = EmbeddedPostgres(tmp_path / "pg")
    admin = server.start()
    try:
        await ensure_database(admin, DATABASE)
        await ensure_database(admin, DATABASE)  # idempotent
        conn = await asyncpg.connect(server.database_url())
        try:
            assert await conn.fetchval("SHOW server_encoding") == "UTF8"
            assert await migrate(conn)
            name = await conn.fetchval(
                "INSERT INTO region (level, code, name, path) "
                "VALUES ('province', 'p', '示范省', '/') RETURNING name"
            )
            assert name == "示范省"
        finally:
            await conn.close()
    finally:
        server.stop()
