"""Migrations: discovered in order, applied once, refused when history disagrees."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from storage.errors import MigrationError
from storage.migrate import discover, migrate
from tests.conftest import PG_ADMIN, _dsn_for


@pytest.fixture
async def empty_db() -> AsyncIterator[asyncpg.Connection]:
    name = f"hallhub_mig_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")
    conn = await asyncpg.connect(_dsn_for(name))
    try:
        yield conn
    finally:
        await conn.close()
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


def test_the_shipped_migrations_are_numbered_without_gaps():
    """Versions run 1, 2, 3 … with one file each."""
    versions = [m.version for m in discover()]
    assert versions == list(range(1, len(versions) + 1))


def test_a_badly_named_file_is_refused(tmp_path: Path):
    """Only NNN_name.sql files are migrations."""
    (tmp_path / "1_first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNN_name\.sql"):
        discover(tmp_path)


async def test_migrations_apply_once_and_are_recorded(empty_db: asyncpg.Connection):
    """A second run applies nothing; every version is recorded."""
    applied = await migrate(empty_db)
    assert applied == [m.version for m in discover()]
    assert await migrate(empty_db) == []
    recorded = await empty_db.fetch("SELECT version FROM schema_migration ORDER BY version")
    assert [r["version"] for r in recorded] == applied


async def test_a_failing_migration_leaves_nothing_behind(
    empty_db: asyncpg.Connection, tmp_path: Path
):
    """A file that fails is rolled back with its record, and the error names the file."""
    (tmp_path / "001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE bad (id int); SELECT * FROM nowhere;")
    with pytest.raises(MigrationError, match=r"002_bad\.sql"):
        await migrate(empty_db, tmp_path)
    tables = await empty_db.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert sorted(r["tablename"] for r in tables) == ["good", "schema_migration"]


async def test_a_renamed_migration_is_refused(empty_db: asyncpg.Connection, tmp_path: Path):
    """History that disagrees with the files stops the migration."""
    (tmp_path / "001_first.sql").write_text("SELECT 1;")
    await migrate(empty_db, tmp_path)
    (tmp_path / "001_first.sql").rename(tmp_path / "001_renamed.sql")
    with pytest.raises(MigrationError, match="recorded as 'first'"):
        await migrate(empty_db, tmp_path)
