"""Queue benchmark (issue 4): call next, ticket issue and call-to-screen on real PostgreSQL.

Sections (``--only``, all by default), each on a fresh database created for the run:

``call``
    Call next in one process: a started :class:`~hub.runtime.Hub` in this process (its
    default settings: pool of 10 connections, MemoryBus) and N windows (``--windows``,
    default 20 and 50) signed in, each looping ``QueueService.call_next`` → ``finish``
    concurrently until nobody waits, on ``--tickets`` (5000) tickets of one hall.
    Reference, same table, same run: N connections each looping one bare statement
    ``UPDATE ticket … WHERE id = (SELECT … ORDER BY order_at, id LIMIT 1 FOR UPDATE SKIP
    LOCKED) RETURNING id`` on the group's index (``ref_take``), and the same followed by a
    second bare statement that finishes the ticket (``ref_cycle``: the window's full cycle,
    as the hub does it).
``http``
    Two ``hallhub serve`` processes on the database and Redis. Calls: 20 windows, ten on
    each process, each looping ``POST …/call`` → ``POST …/finish`` until nobody waits, on
    ``--http-tickets`` tickets. Issue: 20 kiosks (device tokens, ten on each process)
    issuing back to back for ``--issue-seconds``; then steady ``--steady-rate`` per
    second (200, then 50) for ``--steady-seconds`` each (open loop: latency counted from
    each request's scheduled time, so a late start counts).
``screen``
    ``--subscribers`` (1000) display peers subscribed to ``hall:<id>``, half on each
    process's gateway, in two client processes; four windows, two on each process, call
    in turn at ``--call-rate`` per second (each call followed by its finish). Latency: from
    just before the HTTP call is sent to the arrival of its ``ticket_called`` frame at each
    subscriber (parsed as it arrives, before the frame waits for a reader task, as in
    bench/_common.py); apart for the subscribers of the process that served the call
    (``local``) and of the other one (``remote``, via Redis).

Every HTTP client here is a minimal keep-alive HTTP/1.1 client on asyncio streams (one
connection per window or kiosk): the harness shares the machine with the servers and should
take as little of it as it can. Figure lines go to stdout (bench/README.md); progress to
stderr.

    .venv/bin/python bench/queue_bench.py
    .venv/bin/python bench/queue_bench.py --only call --windows 20 --tickets 5000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from math import nan
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from _common import (
    Database,
    cpu_seconds,
    emit,
    emit_ratio,
    free_port,
    note,
    percentile,
    postgres_cpu,
    raise_nofile_limit,
    run_main,
)
from _target import BenchError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

HOST = "127.0.0.1"
REDIS_URL = os.environ.get("HALLHUB_BENCH_REDIS", "redis://127.0.0.1:6379/0")
REPO = Path(__file__).resolve().parent.parent
TIMEZONE = "Asia/Shanghai"

# The bare reference: take the group's first waiting ticket in order, one statement, one
# probe of the queue's index (ticket_order_idx).
REF_TAKE = """
    UPDATE ticket t SET status = 'called', window_id = $3, called_at = now(),
           call_count = t.call_count + 1
    WHERE t.id = (SELECT id FROM ticket
                  WHERE hall_id = $1 AND service_day = $2 AND group_id = $4
                    AND status = 'waiting'
                  ORDER BY order_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING t.id"""
REF_FINISH = "UPDATE ticket SET status = 'done', finished_at = now() WHERE id = $1"


# --- CPU accounting ----------------------------------------------------------------------


class CpuMeter:
    """CPU seconds used by some processes and by PostgreSQL between start and stop."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.own = cpu_seconds(self.pids)
        self.pg = postgres_cpu()

    def per(self, count: int) -> tuple[float, float]:
        """(process CPU, PostgreSQL CPU) in ms per unit of ``count``."""
        own = cpu_seconds(self.pids) - self.own
        pg = postgres_cpu() - self.pg
        return (1000 * own / count, 1000 * pg / count) if count else (nan, nan)


# --- database and seed -------------------------------------------------------------------


@dataclass
class Hall:
    """A seeded hall: one group ``A`` served by every window, a window staff member per
    window (session token), and kiosks (device tokens)."""

    hall_id: int
    region_id: int
    group_id: int
    windows: list[int]
    staff: list[tuple[int, str]]  # (staff id, session token) per window
    kiosks: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"/api/halls/{self.hall_id}"


async def seed_hall(conn: asyncpg.Connection, code: str, windows: int, kiosks: int = 0) -> Hall:
    from hub.services.auth import token_hash

    region = await conn.fetchval(
        "INSERT INTO region (level, code, name, path) VALUES ('province', $1, '基准省', '') "
        "RETURNING id",
        f"r-{code}",
    )
    await conn.execute("UPDATE region SET path = '/' || id || '/' WHERE id = $1", region)
    hall = await conn.fetchval(
        "INSERT INTO hall (region_id, code, name, timezone, opens_minute, closes_minute) "
        "VALUES ($1, $2, '基准大厅', $3, 0, 1440) RETURNING id",
        region,
        code,
        TIMEZONE,
    )
    group = await conn.fetchval(
        "INSERT INTO service_group (hall_id, prefix, name) VALUES ($1, 'A', '综合业务') "
        "RETURNING id",
        hall,
    )
    seeded = Hall(hall, region, group, [], [])
    for n in range(1, windows + 1):
        window = await conn.fetchval(
            'INSERT INTO "window" (hall_id, number, name) VALUES ($1, $2, $3) RETURNING id',
            hall,
            n,
            f"{n}号窗口",
        )
        await conn.execute(
            "INSERT INTO window_group (window_id, group_id, rank) VALUES ($1, $2, 1)",
            window,
            group,
        )
        staff = await conn.fetchval(
            "INSERT INTO staff (staff_no, name, password_hash, hall_id) "
            "VALUES ($1, $2, 'x', $3) RETURNING id",
            f"{code}-{n}",
            f"窗口{n}",
            hall,
        )
        await conn.execute(
            "INSERT INTO role_grant (staff_id, role, scope_kind, scope_id) "
            "VALUES ($1, 'window_staff', 'hall', $2)",
            staff,
            hall,
        )
        token = secrets.token_urlsafe(32)
        await conn.execute(
            "INSERT INTO staff_session (token_hash, staff_id, expires_at) "
            "VALUES ($1, $2, now() + interval '1 day')",
            token_hash(token),
            staff,
        )
        seeded.windows.append(window)
        seeded.staff.append((staff, token))
    for k in range(kiosks):
        token = secrets.token_urlsafe(32)
        await conn.execute(
            "INSERT INTO device (hall_id, kind, name, token_hash) VALUES ($1, 'kiosk', $2, $3)",
            hall,
            f"自助机{k + 1}",
            token_hash(token),
        )
        seeded.kiosks.append(token)
    return seeded


def today() -> date:
    from hub.domain.queue import service_day

    return service_day(datetime.now(UTC), TIMEZONE)


async def add_tickets(conn: asyncpg.Connection, hall: Hall, count: int, day: date) -> None:
    """``count`` waiting tickets A001… queued a millisecond apart, as if issued; the
    group's counter continues after them."""
    await conn.execute(
        """INSERT INTO ticket (hall_id, group_id, service_day, seq, number, public_token,
                               source, issued_at, queued_at, order_at)
           SELECT $1, $2, $3, s,
                  'A' || CASE WHEN s < 1000 THEN lpad(s::text, 3, '0') ELSE s::text END,
                  md5(random()::text || s::text), 'kiosk',
                  now() - interval '1 hour' + s * interval '1 millisecond',
                  now() - interval '1 hour' + s * interval '1 millisecond',
                  now() - interval '1 hour' + s * interval '1 millisecond'
           FROM generate_series(1, $4) AS s""",
        hall.hall_id,
        hall.group_id,
        day,
        count,
    )
    await conn.execute(
        "INSERT INTO ticket_counter (group_id, service_day, last) VALUES ($1, $2, $3)",
        hall.group_id,
        day,
        count,
    )
    await conn.execute("ANALYZE ticket")


async def outcome(conn: asyncpg.Connection, hall: Hall, taken: Sequence[int]) -> tuple[int, int]:
    """(duplicates, lost). Duplicates: calls that got a ticket another call had got (by the
    callers' own account), plus extra calls the rows record. Lost: tickets of the hall never
    called, plus tickets the rows say were called that no caller got."""
    counts = Counter(taken)
    duplicates = sum(c - 1 for c in counts.values())
    duplicates += await conn.fetchval(
        "SELECT coalesce(sum(call_count - 1), 0) FROM ticket WHERE hall_id = $1 AND call_count > 1",
        hall.hall_id,
    )
    rows = await conn.fetch("SELECT id, call_count FROM ticket WHERE hall_id = $1", hall.hall_id)
    lost = sum(1 for r in rows if r["call_count"] == 0)
    lost += sum(1 for r in rows if r["call_count"] > 0 and r["id"] not in counts)
    return int(duplicates), int(lost)


# --- section: call next in one process ---------------------------------------------------


async def run_call_section(db: Database, args: argparse.Namespace) -> None:
    from hub.config import Settings
    from hub.domain.access import Grant, Place, staff_principal
    from hub.runtime import Hub
    from hub.services.audit import Actor

    hub = Hub(
        Settings(
            database_url=db.dsn,
            http_port=0,
            gateway_port=0,
            tick_seconds=3600.0,
            log_level="warning",
            worker_processes=1,
            data_dir=tempfile.mkdtemp(prefix="hallhub-bench-q-"),
        )
    )
    await hub.start()
    try:
        queue = hub.queue
        assert queue is not None
        for n in args.windows:
            day = today()
            # Reference: the bare statement, n connections, on a hall of its own.
            ref_rates = {}
            for variant in ("take", "cycle"):
                async with db_pool(db.dsn, n) as pool:
                    async with pool.acquire() as conn:
                        ref_hall = await seed_hall(conn, f"ref-{variant}-{n}", 1)
                        await add_tickets(conn, ref_hall, args.tickets, day)
                    rate, dup, lost, pg = await reference(
                        pool, ref_hall, day, n, variant == "cycle"
                    )
                name = f"ref_{variant}_w{n}"
                emit(name, rate, "calls/s")
                emit(f"{name}_duplicates", dup, "tickets")
                emit(f"{name}_lost", lost, "tickets")
                emit(f"{name}_pg_cpu_per_call", pg, "ms")
                ref_rates[variant] = rate

            async with hub.pool.acquire() as conn:
                hall = await seed_hall(conn, f"hub-{n}", n)
                await add_tickets(conn, hall, args.tickets, day)
            place = Place(region_path=f"/{hall.region_id}/", hall_id=hall.hall_id)
            actors = []
            for i, (staff_id, _) in enumerate(hall.staff):
                principal = staff_principal(
                    staff_id, f"窗口{i + 1}", (Grant("window_staff", "hall", hall.hall_id),)
                )
                actors.append(Actor.of(principal, principal.grants[0]))
            for actor, window in zip(actors, hall.windows, strict=True):
                await queue.sign_in(actor, place, window)
            note(f"call: hub, {n} windows, {args.tickets} tickets")
            meter = CpuMeter([os.getpid()])
            taken, latencies, elapsed = await hub_calls(queue, place, actors, hall.windows)
            own_cpu, pg_cpu = meter.per(len(taken))
            async with hub.pool.acquire() as conn:
                dup, lost = await outcome(conn, hall, taken)
            rate = len(taken) / elapsed
            name = f"hub_call_w{n}"
            emit(name, rate, "calls/s")
            emit(f"{name}_duplicates", dup, "tickets")
            emit(f"{name}_lost", lost, "tickets")
            ordered = sorted(latencies)
            emit(f"{name}_p50", percentile(ordered, 50), "ms")
            emit(f"{name}_p99", percentile(ordered, 99), "ms")
            # This process (the hub and the windows' coroutines), and PostgreSQL.
            emit(f"{name}_cpu_per_call", own_cpu, "ms")
            emit(f"{name}_pg_cpu_per_call", pg_cpu, "ms")
            emit_ratio(name, rate / ref_rates["take"] if ref_rates["take"] else nan)
            emit_ratio(f"{name}_vs_cycle", rate / ref_rates["cycle"] if ref_rates["cycle"] else nan)
    finally:
        await hub.stop()
        shutil.rmtree(hub.settings.data_dir, ignore_errors=True)


async def hub_calls(
    queue: Any, place: Any, actors: Sequence[Any], windows: Sequence[int]
) -> tuple[list[int], list[float], float]:
    """Each window calls and finishes until nobody waits: the tickets taken, each call's
    latency (ms), the wall time (s)."""
    taken: list[int] = []
    latencies: list[float] = []

    async def window_loop(actor: Any, window: int) -> None:
        while True:
            started = time.perf_counter()
            result = await queue.call_next(actor, place, window)
            latencies.append((time.perf_counter() - started) * 1000)
            if result.called is None:
                return
            taken.append(result.serving[0].ticket_id)
            await queue.finish(actor, place, window)

    started = time.perf_counter()
    await asyncio.gather(*(window_loop(a, w) for a, w in zip(actors, windows, strict=True)))
    return taken, latencies, time.perf_counter() - started


@contextlib.asynccontextmanager
async def db_pool(dsn: str, size: int) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
    try:
        yield pool
    finally:
        await pool.close()


async def reference(
    pool: asyncpg.Pool, hall: Hall, day: date, n: int, cycle: bool
) -> tuple[float, int, int, float]:
    """n connections taking tickets with the bare statement until none is left: calls/s,
    duplicates, lost, PostgreSQL CPU per call (ms)."""
    taken: list[int] = []
    window = hall.windows[0]

    async def loop() -> None:
        async with pool.acquire() as conn:
            while True:
                ticket = await conn.fetchval(REF_TAKE, hall.hall_id, day, window, hall.group_id)
                if ticket is None:
                    return
                taken.append(ticket)
                if cycle:
                    await conn.execute(REF_FINISH, ticket)

    note(f"call: reference {'take+finish' if cycle else 'take'}, {n} connections")
    meter = CpuMeter([])
    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(n)))
    elapsed = time.perf_counter() - started
    _, pg = meter.per(len(taken))
    async with pool.acquire() as conn:
        dup, lost = await outcome(conn, hall, taken)
    return len(taken) / elapsed, dup, lost, pg


# --- a minimal HTTP/1.1 client ------------------------------------------------------------


class Http:
    """One keep-alive HTTP/1.1 connection; requests one at a time. Reads responses with
    a Content-Length (what uvicorn sends for Litestar's JSON responses)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._head = f"Host: {HOST}:{port}\r\n{auth}Content-Type: application/json\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> Http:
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()

    async def post(self, path: str, body: bytes = b"") -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None
        if self._reader.at_eof():
            # The server closed the idle connection (uvicorn's keep-alive timeout is 5 s):
            # a client opens a new one, as a browser would.
            await self.close()
            await self.open()
            assert self._reader is not None and self._writer is not None
        self._writer.write(
            f"POST {path} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status_line = await self._reader.readline()
        if not status_line:
            raise BenchError(f"POST {path}: connection closed")
        status = int(status_line.split()[1])
        length = None
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise BenchError(f"POST {path}: no Content-Length in the response")
        return status, await self._reader.readexactly(length)


class _Serving(msgspec.Struct):
    ticket_id: int


class _WindowResult(msgspec.Struct):
    called: str | None = None
    serving: list[_Serving] = []


_decode_window = msgspec.json.Decoder(_WindowResult).decode


async def window_action(http: Http, hall: Hall, i: int, action: str) -> _WindowResult:
    status, body = await http.post(f"{hall.base}/windows/{hall.windows[i]}/{action}")
    if status != 200:
        raise BenchError(f"{action} at window {i + 1}: {status} {body[:200]!r}")
    return _decode_window(body)


# --- hub processes -----------------------------------------------------------------------


class HubProcess:
    """``hallhub serve`` in a child process with its own ports and data folder."""

    def __init__(self, name: str, dsn: str, prefix: str, workdir: str) -> None:
        self.name = name
        self.http_port = free_port()
        self.gateway_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HALLHUB_")}
        env.update(
            HALLHUB_DATABASE_URL=dsn,
            HALLHUB_REDIS_URL=REDIS_URL,
            HALLHUB_REDIS_PREFIX=prefix,
            HALLHUB_HOST=HOST,
            HALLHUB_HTTP_PORT=str(self.http_port),
            HALLHUB_GATEWAY_PORT=str(self.gateway_port),
            HALLHUB_DATA_DIR=os.path.join(workdir, name),
            HALLHUB_LOG_LEVEL="warning",
            # No tick frames: the subscribers send no heartbeats (bench/README.md).
            HALLHUB_TICK_SECONDS="3600",
            # Every kiosk and window of the harness connects from 127.0.0.1, and the
            # per-address public guard also counts the ticket endpoint's device callers.
            HALLHUB_PUBLIC_RATE_PER_MINUTE="100000000",
        )
        self._log = open(os.path.join(workdir, f"{name}.log"), "ab")  # noqa: SIM115
        script = Path(sys.executable).with_name("hallhub")
        self.process = subprocess.Popen(
            [str(script), "serve"],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.workdir = workdir

    @property
    def gateway_url(self) -> str:
        return f"ws://{HOST}:{self.gateway_port}/"

    async def wait_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while True:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited ({self.process.returncode}): {self.tail()}")
            with contextlib.suppress(OSError, BenchError, ValueError, IndexError):
                reader, writer = await asyncio.open_connection(HOST, self.http_port)
                writer.write(f"GET /health HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
                line = await asyncio.wait_for(reader.readline(), 2)
                writer.close()
                if int(line.split()[1]) == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} not ready within {within:.0f} s: {self.tail()}")
            await asyncio.sleep(0.05)

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            text = Path(self.workdir, f"{self.name}.log").read_text("utf-8", "replace")
            return " | ".join(text.strip().splitlines()[-5:])
        return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@contextlib.asynccontextmanager
async def two_hubs(db: Database) -> AsyncIterator[list[HubProcess]]:
    workdir = tempfile.mkdtemp(prefix="hallhub-bench-q-")
    prefix = f"hallhub_bench_{os.getpid()}_{secrets.token_hex(3)}"
    hubs = [HubProcess(name, db.dsn, prefix, workdir) for name in ("a", "b")]
    try:
        await asyncio.gather(*(h.wait_ready() for h in hubs))
        yield hubs
    finally:
        for h in hubs:
            h.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.asynccontextmanager
async def connections(ports: Sequence[int], tokens: Sequence[str]) -> AsyncIterator[list[Http]]:
    """One connection per token, alternately to each port."""
    https = [Http(ports[i % len(ports)], t) for i, t in enumerate(tokens)]
    try:
        await asyncio.gather(*(h.open() for h in https))
        yield https
    finally:
        await asyncio.gather(*(h.close() for h in https))


# --- section: through HTTP with two processes --------------------------------------------


async def run_http_section(db: Database, args: argparse.Namespace) -> None:
    day = today()
    conn = await asyncpg.connect(db.dsn)
    try:
        calls_hall = await seed_hall(conn, "http-calls", 20)
        await add_tickets(conn, calls_hall, args.http_tickets, day)
        issue_hall = await seed_hall(conn, "http-issue", 1, kiosks=20)
        steady_hall = await seed_hall(conn, "http-steady", 1, kiosks=20)
    finally:
        await conn.close()
    async with two_hubs(db) as hubs:
        ports = [h.http_port for h in hubs]
        await http_calls(db, hubs, calls_hall)
        await issue_closed_loop(hubs, issue_hall, args.issue_seconds)
        for rate in args.steady_rate:
            await issue_steady(ports, steady_hall, rate, args.steady_seconds)


async def http_calls(db: Database, hubs: list[HubProcess], hall: Hall) -> None:
    ports = [h.http_port for h in hubs]
    taken: list[int] = []
    latencies: list[float] = []
    async with connections(ports, [t for _, t in hall.staff]) as https:
        await asyncio.gather(*(window_action(h, hall, i, "sign-in") for i, h in enumerate(https)))

        async def loop(i: int, http: Http) -> None:
            while True:
                started = time.perf_counter()
                result = await window_action(http, hall, i, "call")
                latencies.append((time.perf_counter() - started) * 1000)
                if result.called is None:
                    return
                taken.append(result.serving[0].ticket_id)
                await window_action(http, hall, i, "finish")

        note("http: 20 windows calling through two processes")
        meter = CpuMeter([h.process.pid for h in hubs])
        client = CpuMeter([os.getpid()])
        started = time.perf_counter()
        await asyncio.gather(*(loop(i, h) for i, h in enumerate(https)))
        elapsed = time.perf_counter() - started
        hub_cpu, pg_cpu = meter.per(len(taken))
        client_cpu, _ = client.per(len(taken))
    conn = await asyncpg.connect(db.dsn)
    try:
        dup, lost = await outcome(conn, hall, taken)
    finally:
        await conn.close()
    ordered = sorted(latencies)
    emit("http_call_w20", len(taken) / elapsed, "calls/s")
    emit("http_call_w20_duplicates", dup, "tickets")
    emit("http_call_w20_lost", lost, "tickets")
    emit("http_call_w20_p50", percentile(ordered, 50), "ms")
    emit("http_call_w20_p99", percentile(ordered, 99), "ms")
    # Per ticket called (its call and its finish): both hub processes, PostgreSQL, harness.
    emit("http_call_w20_hub_cpu_per_call", hub_cpu, "ms")
    emit("http_call_w20_pg_cpu_per_call", pg_cpu, "ms")
    emit("http_call_w20_client_cpu_per_call", client_cpu, "ms")


def _ticket_body(hall: Hall) -> bytes:
    return msgspec.json.encode({"group_id": hall.group_id})


async def _issue(http: Http, hall: Hall, body: bytes) -> None:
    status, reply = await http.post(f"{hall.base}/tickets", body)
    if status != 201:
        raise BenchError(f"issue: {status} {reply[:200]!r}")


async def issue_closed_loop(hubs: list[HubProcess], hall: Hall, seconds: float) -> None:
    ports = [h.http_port for h in hubs]
    body = _ticket_body(hall)
    issued = 0
    latencies: list[float] = []
    note(f"http: 20 kiosks issuing back to back for {seconds:.0f} s")
    async with connections(ports, hall.kiosks) as https:
        deadline = time.perf_counter() + seconds

        async def kiosk(http: Http) -> None:
            nonlocal issued
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await _issue(http, hall, body)
                latencies.append((time.perf_counter() - started) * 1000)
                issued += 1

        meter = CpuMeter([h.process.pid for h in hubs])
        started = time.perf_counter()
        await asyncio.gather(*(kiosk(h) for h in https))
        elapsed = time.perf_counter() - started
        hub_cpu, pg_cpu = meter.per(issued)
    ordered = sorted(latencies)
    emit("http_issue_k20", issued / elapsed, "tickets/s")
    emit("http_issue_k20_p50", percentile(ordered, 50), "ms")
    emit("http_issue_k20_p99", percentile(ordered, 99), "ms")
    emit("http_issue_k20_hub_cpu_per_ticket", hub_cpu, "ms")
    emit("http_issue_k20_pg_cpu_per_ticket", pg_cpu, "ms")


async def issue_steady(ports: list[int], hall: Hall, rate: float, seconds: float) -> None:
    """Open loop: request k is due at start + k / rate and goes out on the next free
    connection; its latency runs from when it was due."""
    body = _ticket_body(hall)
    total = int(rate * seconds)
    latencies: list[float] = []
    note(f"http: steady {rate:.0f} tickets/s for {seconds:.0f} s")
    async with connections(ports, hall.kiosks) as https:
        free: asyncio.Queue[Http] = asyncio.Queue()
        for h in https:
            free.put_nowait(h)
        start = time.perf_counter() + 0.1

        async def one(k: int) -> None:
            due = start + k / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            http = await free.get()
            try:
                await _issue(http, hall, body)
            finally:
                free.put_nowait(http)
            latencies.append((time.perf_counter() - due) * 1000)

        await asyncio.gather(*(one(k) for k in range(total)))
        elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    emit(f"http_issue_steady{rate:.0f}_rate", total / elapsed, "tickets/s")
    emit(f"http_issue_steady{rate:.0f}_p50", percentile(ordered, 50), "ms")
    emit(f"http_issue_steady{rate:.0f}_p99", percentile(ordered, 99), "ms")
    emit(f"http_issue_steady{rate:.0f}_max", ordered[-1] if ordered else nan, "ms")


# --- section: call to screen --------------------------------------------------------------


class _Call(msgspec.Struct):
    number: str


class _CallData(msgspec.Struct):
    call: _Call | None = None


class _Frame(msgspec.Struct):
    type: str
    name: str | None = None
    data: _CallData | None = None


_decode_frame = msgspec.json.Decoder(_Frame).decode


class _Recorder:
    """Arrivals of ``ticket_called`` frames in one process: (ticket number, time in ns since
    the epoch, index of the hub process the peer is connected to)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, int, int]] = []
        self.welcomed = 0


class _ScreenConnection(ClientConnection):
    recorder: _Recorder | None = None
    hub_index = -1  # set once connected

    def process_event(self, event: Event) -> None:
        recorder = _ScreenConnection.recorder
        if (
            recorder is not None
            and isinstance(event, Frame)
            and event.opcode in (Opcode.TEXT, Opcode.BINARY)
        ):
            now = time.time_ns()
            data = event.data
            if b'"ticket_called"' in data:
                frame = _decode_frame(data)
                if frame.name == "ticket_called" and frame.data and frame.data.call:
                    recorder.arrivals.append((frame.data.call.number, now, self.hub_index))
            elif b'"welcome"' in data:
                recorder.welcomed += 1
        super().process_event(event)


def _screens_main(pipe: Connection, targets: list[tuple[str, int]], hello: str) -> None:
    raise_nofile_limit()
    asyncio.run(_screens(pipe, targets, hello))


async def _screens(pipe: Connection, targets: list[tuple[str, int]], hello: str) -> None:
    recorder = _Recorder()
    _ScreenConnection.recorder = recorder
    gate = asyncio.Semaphore(64)
    opened: list[ClientConnection] = []

    async def hold(url: str, index: int) -> None:
        async with gate:
            ws = await connect(
                url,
                compression=None,
                proxy=None,
                ping_interval=None,
                max_size=None,
                open_timeout=60,
                create_connection=_ScreenConnection,
            )
        assert isinstance(ws, _ScreenConnection)
        ws.hub_index = index
        opened.append(ws)
        await ws.send(hello)
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    tasks = [asyncio.create_task(hold(url, index)) for url, index in targets]
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command == "status":
            failed = sum(1 for t in tasks if t.done() and t.exception() is not None)
            pipe.send((recorder.welcomed, failed))
        elif command == "results":
            pipe.send(recorder.arrivals)
        elif command == "stop":
            for ws in opened:
                ws.transport.abort()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            pipe.send("ok")
            return


class Screens:
    """``count`` display peers in ``procs`` spawned processes, alternately on each URL."""

    def __init__(self, urls: list[str], hall_id: int, count: int, procs: int = 2) -> None:
        hello = msgspec.json.encode(
            {"type": "hello", "kind": "display", "topics": [{"topic": f"hall:{hall_id}"}]}
        ).decode()
        context = multiprocessing.get_context("spawn")
        self.count = count
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        targets = [(urls[i % len(urls)], i % len(urls)) for i in range(count)]
        for p in range(procs):
            share = targets[p::procs]
            parent, child = context.Pipe()
            process = context.Process(target=_screens_main, args=(child, share, hello))
            process.daemon = True
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)

    def ask(self, command: str, timeout: float = 60.0) -> list[Any]:
        for pipe in self.pipes:
            pipe.send(command)
        replies = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise BenchError(f"a screen process did not answer {command!r}")
            replies.append(pipe.recv())
        return replies

    def wait_welcomed(self, within: float) -> None:
        deadline = time.monotonic() + within
        while True:
            states = self.ask("status")
            if sum(f for _, f in states):
                raise BenchError("a display connection failed")
            if sum(w for w, _ in states) >= self.count:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{sum(w for w, _ in states)} of {self.count} displays welcomed")
            time.sleep(0.05)

    def stop(self) -> None:
        with contextlib.suppress(BenchError, OSError, EOFError):
            self.ask("stop", timeout=10)
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()


async def run_screen_section(db: Database, args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(db.dsn)
    try:
        hall = await seed_hall(conn, "screen", 4)
        calls = int(args.call_rate * args.call_seconds)
        await add_tickets(conn, hall, calls + 20, today())
    finally:
        await conn.close()
    async with two_hubs(db) as hubs:
        urls = [h.gateway_url for h in hubs]
        note(f"screen: {args.subscribers} displays of hall:{hall.hall_id}")
        screens = Screens(urls, hall.hall_id, args.subscribers)
        try:
            await asyncio.to_thread(screens.wait_welcomed, 120.0)
            await asyncio.sleep(1.0)  # snapshots delivered; the hub idle again
            starts, round_trips = await _paced_calls(
                [h.http_port for h in hubs], hall, args.call_rate, calls
            )
            expected = len(starts) * args.subscribers
            deadline = time.monotonic() + args.drain
            arrivals: list[tuple[str, int, int]] = []
            while time.monotonic() < deadline:
                arrivals = [a for chunk in screens.ask("results") for a in chunk]
                if len(arrivals) >= expected:
                    break
                await asyncio.sleep(0.2)
        finally:
            screens.stop()
    name = f"screen_s{args.subscribers}"
    latencies: list[float] = []
    by_way: dict[str, list[float]] = {"local": [], "remote": []}
    for number, ns, index in arrivals:
        if number not in starts:
            continue
        sent, via = starts[number]
        latency = (ns - sent) / 1e6
        latencies.append(latency)
        by_way["local" if index == via else "remote"].append(latency)
    latencies.sort()
    emit(f"{name}_p50", percentile(latencies, 50), "ms")
    emit(f"{name}_p99", percentile(latencies, 99), "ms")
    emit(f"{name}_max", latencies[-1] if latencies else nan, "ms")
    emit(f"{name}_delivered", 100.0 * len(latencies) / expected if expected else nan, "%")
    # Subscribers of the process that served the call, and of the other one (via Redis).
    for way, values in by_way.items():
        emit(f"{name}_{way}_p99", percentile(sorted(values), 99), "ms")
    # The call's own HTTP round trip; it returns after the local fan-out.
    ordered = sorted(round_trips)
    emit(f"{name}_call_rtt_p50", percentile(ordered, 50), "ms")
    emit(f"{name}_call_rtt_p99", percentile(ordered, 99), "ms")


async def _paced_calls(
    ports: list[int], hall: Hall, rate: float, calls: int
) -> tuple[dict[str, tuple[int, int]], list[float]]:
    """Windows on both processes call (and finish) in turn, one call every 1/rate seconds.
    Returns, by ticket number, the time (ns since the epoch) just before its call was sent
    and the index of the process that served it; and each call's round trip (ms)."""
    starts: dict[str, tuple[int, int]] = {}
    round_trips: list[float] = []
    async with connections(ports, [t for _, t in hall.staff]) as https:
        await asyncio.gather(*(window_action(h, hall, i, "sign-in") for i, h in enumerate(https)))
        note(f"screen: {calls} calls at {rate:.1f}/s")
        begin = time.perf_counter()
        for k in range(calls):
            await asyncio.sleep(max(0.0, begin + k / rate - time.perf_counter()))
            i = k % len(https)
            sent = time.time_ns()
            result = await window_action(https[i], hall, i, "call")
            round_trips.append((time.time_ns() - sent) / 1e6)
            if result.called is None:
                raise BenchError("no ticket left to call")
            starts[result.called] = (sent, i % len(ports))
            await window_action(https[i], hall, i, "finish")
    return starts, round_trips


# --- main ----------------------------------------------------------------------------------

SECTIONS = ("call", "http", "screen")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--windows", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--tickets", type=int, default=5000, help="tickets per call run")
    parser.add_argument("--http-tickets", type=int, default=5000)
    parser.add_argument("--issue-seconds", type=float, default=10.0)
    parser.add_argument("--steady-rate", type=float, nargs="+", default=[200.0, 50.0])
    parser.add_argument("--steady-seconds", type=float, default=10.0)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--call-rate", type=float, default=2.0, help="calls per second")
    parser.add_argument("--call-seconds", type=float, default=30.0)
    parser.add_argument("--drain", type=float, default=10.0)
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    db = Database("q")
    try:
        await db.create()
        if "call" in args.only:
            await run_call_section(db, args)
        if "http" in args.only:
            await run_http_section(db, args)
        if "screen" in args.only:
            await run_screen_section(db, args)
    finally:
        await db.drop()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    raise_nofile_limit()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    run_main(main, (BenchError, WebSocketException))
