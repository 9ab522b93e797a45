"""Periodic jobs: leader jobs run in exactly one hub process, local jobs in each (H1).

Leadership is a session-level advisory lock held on a dedicated connection (a pool's reset
would release it, DESIGN.md); if that connection or its process dies, PostgreSQL releases
the lock and another process takes the job at its next attempt. Each run is also fenced by
a transaction-level lock on a second key, so a deposed leader's run still in progress never
overlaps the new leader's. Every run is recorded in ``job_state`` (who ran it, when, how often).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import structlog

from storage.pool import connect

log = structlog.get_logger("hub.jobs")

JobBody = Callable[[asyncpg.Connection], Awaitable[None]]


def _lock_key(name: str) -> int:
    # A stable 31-bit key per job name, in a namespace of our own (high bits "hh").
    return (0x6868 << 32) | zlib.crc32(name.encode())


@dataclass
class Job:
    """A periodic job. ``leader``: run in one process only; otherwise in every process."""

    name: str
    interval: float
    body: JobBody
    leader: bool = True
    next_at: float = 0.0
    held: bool = field(default=False)


class JobRunner:
    """Runs the jobs of one process.

    Args:
        dsn: database URL for the dedicated leadership connection.
        pool: connections for the job bodies.
        process_id: recorded in ``job_state`` with each run.
    """

    def __init__(self, dsn: str, pool: asyncpg.Pool, process_id: str) -> None:
        self._dsn = dsn
        self._pool = pool
        self._process_id = process_id
        self._jobs: list[Job] = []
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    def add(self, job: Job) -> None:
        self._jobs.append(job)

    def leads(self, name: str) -> bool:
        return any(j.held for j in self._jobs if j.name == name)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="jobs")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        for job in self._jobs:
            job.held = False
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except (OSError, TimeoutError, asyncpg.PostgresError):
                conn.terminate()

    async def _loop(self) -> None:
        while True:
            now = time.monotonic()
            for job in self._jobs:
                if now >= job.next_at:
                    job.next_at = now + job.interval
                    await self._attempt(job)
            wake = min((j.next_at for j in self._jobs), default=now + 1.0)
            await asyncio.sleep(max(0.01, wake - time.monotonic()))

    async def _attempt(self, job: Job) -> None:
        try:
            if job.leader and not await self._lead(job):
                return
            await self._run(job)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("job_failed", job=job.name, error=str(exc))
            if job.leader:
                await self._drop_connection()  # leadership is unknown now: start over
        except Exception:
            log.exception("job_failed", job=job.name)

    async def _lead(self, job: Job) -> bool:
        if self._conn is None or self._conn.is_closed():
            await self._drop_connection()
            self._conn = await connect(self._dsn)
        if job.held:
            # Still ours? A lost connection would have raised above.
            await self._conn.fetchval("SELECT 1")
            return True
        got = await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(job.name))
        if got:
            job.held = True
            log.info("job_leader", job=job.name, process=self._process_id)
        return bool(got)

    async def _run(self, job: Job) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if job.leader:
                fenced = await conn.fetchval(
                    "SELECT pg_try_advisory_xact_lock($1)", _lock_key(job.name) + 1
                )
                if not fenced:
                    return  # the previous leader's run is still going
            await job.body(conn)
            if not job.leader:
                return
            await conn.execute(
                """INSERT INTO job_state (job, process_id, last_run_at, runs)
                   VALUES ($1, $2, now(), 1)
                   ON CONFLICT (job) DO UPDATE
                   SET process_id = $2, last_run_at = now(), runs = job_state.runs + 1""",
                job.name,
                self._process_id,
            )
