"""Plain-SQL migrations applied in order and recorded in ``schema_migration``.

Files are ``storage/migrations/NNN_name.sql``. Each runs in its own transaction together with
its record, so a failed file leaves nothing behind. Concurrent migrators (two processes
starting at once) are serialised by a transaction-level advisory lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from storage.errors import MigrationError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6861_6C6C_6D69_67  # "hallmig"

log = structlog.get_logger("storage.migrate")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files of ``directory`` in version order.

    Raises:
        MigrationError: a file name does not match NNN_name.sql or a version repeats.
    """
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is used twice")
        found[version] = Migration(version, match.group(2), path.read_text("utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply every migration not yet recorded. Returns the versions applied now."""
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migration (
               version integer PRIMARY KEY,
               name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    applied: list[int] = []
    for migration in discover(directory):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            done = await conn.fetchval(
                "SELECT name FROM schema_migration WHERE version = $1", migration.version
            )
            if done is not None:
                if done != migration.name:
                    raise MigrationError(
                        f"migration {migration.version} is recorded as {done!r}, "
                        f"the file says {migration.name!r}"
                    )
                continue
            try:
                await conn.execute(migration.sql)
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"{migration.version:03d}_{migration.name}.sql: {exc}"
                ) from exc
            await conn.execute(
                "INSERT INTO schema_migration (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
            applied.append(migration.version)
            log.info("migration_applied", version=migration.version, name=migration.name)
    return applied
