"""Fixtures on real services: a fresh PostgreSQL database per test run (migrated once), every
table emptied before each test that asks for ``db``; Redis with a key prefix per test."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from hub.logs import configure_logging
from storage.migrate import migrate
from storage.pool import create_pool

PG_ADMIN = os.environ.get("HALLHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("HALLHUB_TEST_REDIS", "redis://127.0.0.1:6379/0")

configure_logging("info", json=False, cache=False)


def _dsn_for(database: str) -> str:
    base, _, _ = PG_ADMIN.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A new UTF8 database for this test run, migrated; dropped at the end."""
    name = f"hallhub_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
        )
    finally:
        await admin.close()
    dsn = _dsn_for(name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    yield dsn
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def _session_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=20)
    yield pool
    await pool.close()


_EMPTY_SQL: list[str] = []


async def _emptying_sql(conn: asyncpg.Connection) -> str:
    """One script that empties every table (but the migration record and the official
    calendar) and restarts every sequence, as TRUNCATE … RESTART IDENTITY would.

    DELETE with foreign-key triggers off (``session_replication_role = replica``) takes ~5 ms
    on the few rows a test leaves; TRUNCATE of ~30 tables takes ~160 ms (new files for every
    table and index), which is minutes over the suite.
    """
    if not _EMPTY_SQL:
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) AS t FROM pg_tables "
            "WHERE schemaname = 'public' AND tablename <> 'schema_migration'"
            # O11 reference data (007_calendar_official.sql) survive: only admin rows go.
            " AND tablename NOT IN ('calendar_day', 'calendar_year')"
        )
        sequences = await conn.fetch(
            "SELECT quote_ident(sequence_name) AS s FROM information_schema.sequences "
            "WHERE sequence_schema = 'public'"
        )
        _EMPTY_SQL.append(
            "BEGIN; SET LOCAL session_replication_role = replica; "
            + "".join(f"DELETE FROM {r['t']}; " for r in tables)
            + "".join(f"ALTER SEQUENCE {r['s']} RESTART; " for r in sequences)
            + "DELETE FROM calendar_day WHERE source <> 'official'; "
            + "DELETE FROM calendar_year WHERE source <> 'official'; COMMIT;"
        )
    return _EMPTY_SQL[0]


@pytest.fixture
async def db(_session_pool: asyncpg.Pool) -> asyncpg.Pool:
    """The test database's pool, every table (but the migration record and the official
    calendar) emptied first and every identity restarted."""
    async with _session_pool.acquire() as conn:
        await conn.execute(await _emptying_sql(conn))
    return _session_pool


@pytest.fixture
def redis_prefix() -> str:
    return f"hallhub_test_{secrets.token_hex(4)}"


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client: aioredis.Redis = aioredis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
def artifacts_dir() -> Iterator[str]:
    path = os.path.abspath("test-artifacts")
    os.makedirs(path, exist_ok=True)
    yield path
