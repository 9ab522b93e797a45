"""The embedded PostgreSQL (pgserver, PostgreSQL 16) used when no database URL is set (H4).

pgserver listens on a Unix socket in its data folder only. As root it runs the server as a
system user ``pgserver``. Its initdb sets no encoding, so the hub's database is created from
template0 with UTF8 (DESIGN.md, Storage). The embedded server is for one process.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import structlog

from storage.errors import EmbeddedServerError

log = structlog.get_logger("storage.embedded")
DATABASE = "hallhub"


class EmbeddedPostgres:
    """Start, hand out a DSN for, and stop an embedded PostgreSQL under ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start the server (blocking, about a second) and return the admin DSN."""
        if not os.environ.get("XDG_RUNTIME_DIR"):
            runtime = Path(tempfile.gettempdir()) / f"hallhub-runtime-{os.getuid()}"
            runtime.mkdir(mode=0o700, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        try:
            import pgserver  # type: ignore[attr-defined,unused-ignore]

            self._data_dir.mkdir(parents=True, exist_ok=True)
            self._server = pgserver.get_server(  # type: ignore[attr-defined,unused-ignore]
                self._data_dir, cleanup_mode="stop"
            )
        except Exception as exc:  # pgserver raises bare Exceptions and subprocess errors
            raise EmbeddedServerError(f"embedded PostgreSQL in {self._data_dir}: {exc}") from exc
        uri: str = self._server.get_uri()
        log.info("embedded_postgres_started", data_dir=str(self._data_dir))
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def database_url(self) -> str:
        """The DSN of the hub's own database (created by :func:`ensure_database`)."""
        return f"postgresql://postgres:@/{DATABASE}?host={quote(str(self._data_dir))}"


async def ensure_database(admin_dsn: str, name: str) -> None:
    """Create database ``name`` as UTF8 from template0 unless it exists."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(
                f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                "LC_COLLATE 'C' LC_CTYPE 'C'"
            )
    finally:
        await conn.close()
