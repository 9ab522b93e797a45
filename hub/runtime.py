"""The Hub: one process's long-lived parts and their lifecycle.

``Hub.start()`` opens storage (embedded PostgreSQL when no URL is set), applies migrations,
connects the bus, starts the feed, the gateway and the periodic jobs; ``Hub.stop()`` undoes it
in reverse order. The Litestar app (hub/app.py) starts and stops the Hub in its lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec
import structlog

from hub.config import Settings
from hub.services import appointments
from hub.services.access import AccessService
from hub.services.blob_folder import FolderBlobStore
from hub.services.card_reads import CardReads
from hub.services.device_events import DeviceEvents
from hub.services.events import EventWriter
from hub.services.jobs import Job, JobRunner
from hub.services.notify import Dispatcher
from hub.services.presence import PresenceService
from hub.services.queue import QueueService
from hub.services.sms import HttpSmsGateway
from hub.services.snapshots import providers
from hub.services.speech import SpeechService, SpeechSettings
from hub.services.tickets import expire_past_days
from hub.services.workers import WorkerPool
from realtime import outbox
from realtime.bus import Bus, MemoryBroker, MemoryBus
from realtime.feed import Feed
from realtime.gateway import Gateway, GatewaySettings
from storage.embedded import DATABASE, EmbeddedPostgres, ensure_database
from storage.migrate import migrate
from storage.pool import create_pool

log = structlog.get_logger("hub.runtime")

# Hubs started in one Python process (tests) share this broker when they use the MemoryBus,
# so they behave like processes sharing Redis.
DEFAULT_BROKER = MemoryBroker()


async def open_database(settings: Settings) -> tuple[EmbeddedPostgres | None, str]:
    """The database URL to use: the configured one, or an embedded server's (started here,
    blocking work off the loop) with the hub's UTF8 database created."""
    if settings.database_url:
        return None, settings.database_url
    embedded = EmbeddedPostgres(Path(settings.data_dir) / "pg")
    admin = await asyncio.to_thread(embedded.start)
    await ensure_database(admin, DATABASE)
    return embedded, embedded.database_url()


@asynccontextmanager
async def open_storage(settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, list[int]]]:
    """A migrated pool for one-shot commands (``hallhub migrate``, ``device add``)."""
    embedded, url = await open_database(settings)
    try:
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                applied = await migrate(conn)
            yield pool, applied
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            embedded.stop()


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

    def __init__(self, settings: Settings, broker: MemoryBroker | None = None) -> None:
        self.settings = settings
        self.process_id = str(uuid.uuid4())
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.database_url = settings.database_url
        self._broker = broker or DEFAULT_BROKER
        self._embedded: EmbeddedPostgres | None = None
        self._pool: asyncpg.Pool | None = None
        self.bus: Bus | None = None
        self.feed: Feed | None = None
        self.events: EventWriter | None = None
        self.access: AccessService | None = None
        self.presence: PresenceService | None = None
        self.gateway: Gateway | None = None
        self.jobs: JobRunner | None = None
        self.workers: WorkerPool | None = None
        self._workers_starting: asyncio.Task[None] | None = None
        self.blobs: FolderBlobStore | None = None
        self.sms: HttpSmsGateway | None = None
        self.speech: SpeechService | None = None
        self.queue: QueueService | None = None
        self.card_reads: CardReads | None = None
        self.http_port = settings.http_port
        # The hub's notion of now (aware); tests may replace it, even after start().
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("Hub.start() has not run")
        return self._pool

    async def start(self) -> None:
        s = self.settings
        log.info("hub_starting", process=self.process_id)
        self._embedded, self.database_url = await open_database(s)
        self._pool = pool = await create_pool(
            self.database_url, min_size=s.db_pool_min, max_size=s.db_pool_max
        )
        async with pool.acquire() as conn:
            await migrate(conn)
        # A spawn is ~1 s of imports per worker: the hub does not wait for it. With
        # worker_prestart the workers come up in the background now, else with the first job.
        self.workers = WorkerPool(s.worker_processes, on_demand=True)
        if s.worker_prestart:
            self._workers_starting = asyncio.create_task(self._start_workers(), name="workers")
        self.blobs = FolderBlobStore(s.blob_path)
        self.speech = SpeechService(
            SpeechSettings(
                command=s.speech_command, speed=s.speech_speed, cache_bytes=s.speech_cache_bytes
            )
        )
        self.speech.check()
        self.bus = self._make_bus()
        self.feed = Feed(pool, self.bus, providers(self.now), reconcile_seconds=s.reconcile_seconds)
        self.events = EventWriter(pool, self.feed)
        self.queue = QueueService(self.events, self.now, s.id_hmac_key.encode())
        self.access = AccessService(pool)
        self.presence = PresenceService(
            self.events, self.feed, self.process_id, s.process_lease_seconds
        )
        # Issue 5: what devices report, and device alerts as their peers come and go.
        DeviceEvents(self.events, self.now).install(self.presence)
        self.card_reads = CardReads(self.events)
        async with pool.acquire() as conn:
            await self.presence.renew_lease(conn)
        self.gateway = Gateway(
            GatewaySettings(
                host=s.host,
                port=s.gateway_port,
                tick_seconds=s.tick_seconds,
                heartbeat_timeout_seconds=s.heartbeat_timeout_seconds,
                peer_buffer_bytes=s.peer_buffer_bytes,
                slow_peer_grace_seconds=s.slow_peer_grace_seconds,
                max_frame_bytes=s.max_frame_bytes,
                allowed_origins=tuple(s.allowed_origins) if s.allowed_origins else None,
                http_port=s.http_port,
            ),
            self.feed,
            self.access,
            self.presence,
            # Commands of peers: a kiosk page or a staff console asks its ID reader for a card.
            commands={"read_card": self.card_reads.read_card},
        )
        self.jobs = self._make_jobs()
        await self.feed.start()
        await self.gateway.start()
        await self.jobs.start()
        log.info("hub_started", process=self.process_id, gateway_port=self.gateway.port)

    async def _start_workers(self) -> None:
        assert self.workers is not None
        try:
            await self.workers.start()
        except Exception as exc:
            # Jobs then fail with WorkerPoolClosed; screens and the queue go on.
            log.error("worker_pool_failed", error=str(exc))

    def now(self) -> datetime:
        """The current time by the hub's clock (replaceable in tests, even after start)."""
        return self.clock()

    def set_http_port(self, port: int) -> None:
        """The HTTP port once bound (pages on it may open the gateway: Origin check)."""
        self.http_port = port
        if self.gateway is not None:
            self.gateway.settings = msgspec.structs.replace(self.gateway.settings, http_port=port)

    def _make_bus(self) -> Bus:
        s = self.settings
        if not s.redis_url:
            return MemoryBus(self.process_id, self._broker)
        from realtime.redis_bus import RedisBus

        return RedisBus(
            self.process_id,
            s.redis_url,
            s.redis_prefix,
            heartbeat_seconds=s.bus_heartbeat_seconds,
            deaf_seconds=s.bus_deaf_seconds,
        )

    def _make_jobs(self) -> JobRunner:
        assert self.presence is not None
        s = self.settings
        jobs = JobRunner(self.database_url, self.pool, self.process_id)
        keep = s.history_keep

        async def prune(conn: asyncpg.Connection) -> None:
            await outbox.prune(conn, keep)

        jobs.add(Job("lease", s.process_lease_seconds / 3, self.presence.renew_lease, False))
        jobs.add(Job("presence_seen", 2.0, self.presence.flush_seen, False))
        jobs.add(Job("presence_revoked", 2.0, self.presence.close_revoked, False))
        jobs.add(Job("presence_reaper", 2.0, self.presence.reap))
        jobs.add(Job("history_prune", 60.0, prune))

        async def expire_tickets(conn: asyncpg.Connection) -> None:
            await expire_past_days(conn, self.now())

        jobs.add(Job("ticket_expiry", 60.0, expire_tickets))

        # O2: appointments past their check-in window are no-shows; reminders the day before.
        async def appointment_no_shows(conn: asyncpg.Connection) -> None:
            await appointments.mark_no_shows(conn, self.now())

        async def appointment_reminders(conn: asyncpg.Connection) -> None:
            await appointments.enqueue_reminders(conn, self.now())

        jobs.add(Job("appointment_no_show", 60.0, appointment_no_shows))
        jobs.add(Job("appointment_reminders", 300.0, appointment_reminders))
        # H6: the SMS outbox; without a gateway URL, notifications wait in the outbox.
        if s.sms_gateway_url:
            self.sms = HttpSmsGateway(
                s.sms_gateway_url, s.sms_api_key, timeout=s.sms_timeout_seconds
            )
        dispatcher = Dispatcher(
            self.sms, sign=s.sms_sign, lease_seconds=max(300.0, 20 * s.sms_timeout_seconds)
        )

        async def notify_dispatch(conn: asyncpg.Connection) -> None:
            # Through the pool: each claim and outcome commits on its own, not with the run.
            await dispatcher.drain(self.pool)

        jobs.add(Job("notify_dispatch", s.notify_period_seconds, notify_dispatch))
        return jobs

    async def readiness(self) -> Readiness:
        """Check PostgreSQL with a query and report the bus's own health."""
        database = False
        if self._pool is not None:
            try:
                async with self._pool.acquire(timeout=2) as conn:
                    database = await conn.fetchval("SELECT 1", timeout=2) == 1
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                database = False
        bus = self.bus
        return Readiness(
            database=database,
            bus=bus is not None and bus.healthy,
            bus_kind="redis" if self.settings.redis_url else "memory",
        )

    async def stop(self) -> None:
        """Stop in reverse order; peers are closed with 1012 and marked offline."""
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None
        if self.jobs is not None:
            await self.jobs.stop()
            self.jobs = None
        if self.sms is not None:
            await self.sms.aclose()
            self.sms = None
        if self.feed is not None:
            await self.feed.stop()
            self.feed = None
        if self.workers is not None:
            if self._workers_starting is not None:
                await self._workers_starting
                self._workers_starting = None
            await self.workers.stop()
            self.workers = None
        if self.speech is not None:
            await self.speech.close()
            self.speech = None
        if self._pool is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._pool.execute(
                    "DELETE FROM hub_process WHERE id = $1", uuid.UUID(self.process_id)
                )
            await self._pool.close()
            self._pool = None
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None
        log.info("hub_stopped", process=self.process_id)
