"""Shared parts of the benchmarks: figure lines, process measurements, the benchmark's own
database, the entry point, and the client fleet.

Figure lines are the benchmarks' interface: one per figure on stdout, ``name: value unit``
(``ref_n1000_p99: 8.0 ms``), and ``name ratio: 1.18x`` for a same-run comparison. Anything
else (progress, warnings) goes to stderr.

The client fleet is a few worker processes (``multiprocessing``, spawn), each holding many
websocket connections with the ``websockets`` asyncio client. A connection records, for every
stamped frame it receives, the latency from the stamp to its arrival; it reconnects with a
small full-jitter backoff when the server goes away. The parent drives the processes over
pipes (:class:`ClientFleet`).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import random
import resource
import secrets
import socket
import string
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, NoReturn

import asyncpg
import msgspec
import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

# --- figure lines ------------------------------------------------------------------------


def format_value(value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2f}"


def emit(name: str, value: float, unit: str) -> None:
    """Write one figure line, ``name: value unit``, to stdout."""
    sys.stdout.write(f"{name}: {format_value(value)} {unit}\n")
    sys.stdout.flush()


def emit_ratio(name: str, ratio: float) -> None:
    """Write one comparison line, ``name ratio: 1.18x`` (the measured ÷ the reference)."""
    sys.stdout.write(f"{name} ratio: {ratio:.2f}x\n")
    sys.stdout.flush()


@dataclass
class Figures:
    """The figures of one target in one run (``prefix``: ``hub_n1000``), in emission order."""

    prefix: str
    values: dict[str, tuple[float, str]] = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str) -> None:
        """Keep a figure and write its line, ``<prefix>_<name>: value unit``."""
        self.values[name] = (value, unit)
        emit(f"{self.prefix}_{name}", value, unit)

    def compare(self, reference: Figures, names: Iterable[str]) -> None:
        """Write ``<prefix>_<name> ratio`` lines: each figure ÷ the reference's (nan where
        the reference's is 0)."""
        for name in names:
            base = reference.values[name][0]
            emit_ratio(f"{self.prefix}_{name}", self.values[name][0] / base if base else math.nan)


def note(message: str) -> None:
    """Progress for the person running the benchmark: stderr, never mixed with figures."""
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


# --- processes ---------------------------------------------------------------------------


def raise_nofile_limit() -> int:
    """Raise this process's open-file limit to its hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def cpu_seconds(pids: Iterable[int]) -> float:
    """User plus system CPU time of the processes, in seconds."""
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def postgres_cpu() -> float:
    """CPU seconds (user + system) of the local PostgreSQL server: the postmaster, its live
    children, and the children it has reaped (backends of closed connections). Machine-wide:
    other databases' work counts too."""
    total = 0.0
    for process in psutil.process_iter(["name", "ppid"]):
        if process.info["name"] != "postgres":
            continue
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
            parent = psutil.Process(process.info["ppid"])
            if parent.name() != "postgres":  # the postmaster: add what it reaped
                total += times.children_user + times.children_system
    return total


def rss_bytes(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped because a listen queue was full
    (TcpExt ListenOverflows, for the whole network namespace); None where unknown."""
    try:
        with open("/proc/net/netstat") as stats:
            lines = stats.read().splitlines()
    except OSError:
        return None
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        if header.startswith("TcpExt:"):
            counters = dict(zip(header.split()[1:], values.split()[1:], strict=False))
            overflows = counters.get("ListenOverflows")
            return int(overflows) if overflows is not None else None
    return None


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0–100) of already sorted values; nan when empty."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --- the benchmark's database ------------------------------------------------------------

ADMIN_DSN = os.environ.get("HALLHUB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class Database:
    """A fresh UTF8 database, ``hallhub_bench_<tag>_…``, migrated by :meth:`create` and
    dropped by :meth:`drop`.

    Args:
        tag: names the benchmark (``q``, ``d``).
    """

    def __init__(self, tag: str) -> None:
        self.name = f"hallhub_bench_{tag}_{os.getpid()}_{secrets.token_hex(3)}"
        self.dsn = ADMIN_DSN.rpartition("/")[0] + "/" + self.name
        self.created = False

    async def create(self) -> None:
        """Create and migrate the database; the hub's logging goes to warnings (stdout is
        for figure lines)."""
        from hub.logs import configure_logging
        from storage.migrate import migrate

        admin = await asyncpg.connect(ADMIN_DSN, timeout=10)
        try:
            await admin.execute(
                f"CREATE DATABASE {self.name} TEMPLATE template0 ENCODING 'UTF8' "
                "LC_COLLATE 'C' LC_CTYPE 'C'"
            )
            self.created = True
        finally:
            await admin.close()
        configure_logging("warning")  # stdout is for figure lines
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def drop(self) -> None:
        """Drop the database if it was created; never raises for a server that is gone."""
        if not self.created:
            return
        with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
            admin = await asyncpg.connect(ADMIN_DSN, timeout=10)
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
            finally:
                await admin.close()


# --- the entry point ---------------------------------------------------------------------


def run_main(main: Callable[[], int], failures: tuple[type[BaseException], ...]) -> NoReturn:
    """Exit with what ``main`` returns: 1 after one of ``failures`` (noted), 130 after a
    Ctrl-C (the benchmark's finally blocks have stopped every child process)."""
    try:
        sys.exit(main())
    except failures as exc:
        note(f"failed: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        note("interrupted; every child process was stopped")
        sys.exit(130)


# --- the client fleet --------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSpec:
    """How every client connection behaves.

    Attributes:
        url: the websocket URL of the server under test.
        hello: a text frame each connection sends once open (the hub's ``hello``); None for
            the reference server, which expects nothing.
        resume_hello: a :class:`string.Template` of the hello sent on a reconnect once the
            connection has seen a position (``$epoch``, ``$seq``: the last event's, or the
            welcome's); None: always ``hello``.
        await_welcome: a connection counts as open only once the server's first frame (the
            hub's ``welcome``) has arrived after the hello, i.e. once it is subscribed again,
            not merely connected. Off for the reference, which sends nothing first.
        connect_concurrency: handshakes in flight per process during the initial ramp-up
            only (a reconnect storm is not throttled: real peers are independent).
        backoff_initial: seconds; the n-th retry waits uniform(0, initial × 2ⁿ) …
        backoff_max: … capped at this many seconds ("full jitter").
        open_timeout: seconds a handshake may take.
    """

    url: str
    hello: str | None = None
    connect_concurrency: int = 64
    backoff_initial: float = 0.05
    backoff_max: float = 1.0
    open_timeout: float = 30.0
    resume_hello: str | None = None
    await_welcome: bool = False


class Status(msgspec.Struct, frozen=True):
    """One client process's counters."""

    open: int
    opens: int
    received: int
    last_open_ns: int
    # When the last websocket handshake completed; equals last_open_ns unless the spec
    # awaits a welcome, when it shows the handshakes apart from the hellos.
    last_connect_ns: int


class _Data(msgspec.Struct):
    t: int | None = None


class _Stamped(msgspec.Struct):
    # The publish time, by preference: ``t`` (time.time_ns() of the publisher) at the top
    # level or in ``data``; else ``ts`` (seconds since the epoch, the hub's event time).
    # ``epoch``/``seq``: the event's place in its topic (the hub's), for a resuming hello.
    t: int | None = None
    ts: float | None = None
    data: msgspec.Raw = msgspec.Raw()
    epoch: int | None = None
    seq: int | None = None


class _TopicState(msgspec.Struct):
    epoch: int
    seq: int


class _Welcome(msgspec.Struct):
    topics: list[_TopicState] = []


_decode_stamped = msgspec.json.Decoder(_Stamped).decode
_decode_data = msgspec.json.Decoder(_Data).decode


_decode_welcome = msgspec.json.Decoder(_Welcome).decode


def _stamp_ns(stamped: _Stamped) -> int | None:
    """The publish time a frame carries, in ns since the epoch; None for other frames."""
    if stamped.t is not None:
        return stamped.t
    if stamped.data:
        try:
            inner = _decode_data(stamped.data)
        except msgspec.DecodeError:
            inner = _Data()
        if inner.t is not None:
            return inner.t
    if stamped.ts is not None:
        return int(stamped.ts * 1e9)
    return None


class _StampingConnection(ClientConnection):
    """Records each data frame as the protocol parses it, before the frame waits in the
    message queue for its reader task: the latency then measures the server, the kernel and
    the parse, not how long this process takes to get round to hundreds of reader tasks."""

    recorder: _Client | None = None
    # The (epoch, seq) of the last event with both, for a resuming hello.
    position: tuple[int, int] | None = None

    def process_event(self, event: Event) -> None:
        recorder = _StampingConnection.recorder
        if (
            recorder is not None
            and self.response is not None
            and isinstance(event, Frame)
            and event.opcode in (Opcode.TEXT, Opcode.BINARY)
        ):
            try:
                stamped = _decode_stamped(event.data)
            except msgspec.DecodeError:
                pass
            else:
                recorder.record(stamped)
                if stamped.epoch is not None and stamped.seq is not None:
                    self.position = (stamped.epoch, stamped.seq)
        super().process_event(event)


class _Client:
    """The connections of one client process, and their counters."""

    def __init__(self, spec: ClientSpec, count: int) -> None:
        self.spec = spec
        self.count = count
        self.stopping = False
        self.open = 0
        self.opens = 0
        self.received = 0
        self.last_open_ns = 0
        self.last_connect_ns = 0
        # Latencies in milliseconds, as doubles: 8 bytes a delivery.
        self.latencies = array.array("d")
        self.connections: set[ClientConnection] = set()
        self._gate = asyncio.Semaphore(spec.connect_concurrency)
        self._tasks: list[asyncio.Task[None]] = []

    def record(self, stamped: _Stamped) -> None:
        now = time.time_ns()
        sent = _stamp_ns(stamped)
        if sent is not None:
            self.received += 1
            self.latencies.append((now - sent) / 1e6)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._hold()) for _ in range(self.count)]

    def status(self) -> Status:
        return Status(self.open, self.opens, self.received, self.last_open_ns, self.last_connect_ns)

    def reset(self) -> None:
        self.received = 0
        self.latencies = array.array("d")

    async def stop(self) -> None:
        self.stopping = True
        for connection in list(self.connections):
            connection.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _delay(self, attempt: int) -> float:
        ceiling = min(self.spec.backoff_max, self.spec.backoff_initial * 2**attempt)
        return random.uniform(0, ceiling)

    async def _open(self, ramp_up: bool) -> ClientConnection:
        opening = connect(
            self.spec.url,
            compression=None,
            proxy=None,
            open_timeout=self.spec.open_timeout,
            ping_interval=None,
            close_timeout=1,
            max_size=None,
            create_connection=_StampingConnection,
        )
        if ramp_up:
            async with self._gate:
                return await opening
        return await opening

    def _hello(self, position: tuple[int, int] | None) -> str | None:
        template = self.spec.resume_hello
        if template is None or position is None:
            return self.spec.hello
        return string.Template(template).substitute(epoch=position[0], seq=position[1])

    async def _hold(self) -> None:
        attempt, ramp_up = 0, True
        position: tuple[int, int] | None = None
        while not self.stopping:
            try:
                connection = await self._open(ramp_up)
            except (OSError, TimeoutError, WebSocketException):
                await asyncio.sleep(self._delay(attempt))
                attempt += 1
                continue
            ramp_up, attempt = False, 0
            self.last_connect_ns = time.time_ns()
            self.connections.add(connection)
            counted = False
            try:
                hello = self._hello(position)
                if hello is not None:
                    await connection.send(hello)
                if self.spec.await_welcome:
                    first = await connection.recv(decode=False)
                    with contextlib.suppress(msgspec.DecodeError):
                        topics = _decode_welcome(first).topics
                        if topics and isinstance(connection, _StampingConnection):
                            connection.position = connection.position or (
                                topics[0].epoch,
                                topics[0].seq,
                            )
                self.open += 1
                self.opens += 1
                self.last_open_ns = time.time_ns()
                counted = True
                # Frames are counted as they arrive (_StampingConnection); reading them
                # here keeps the connection's queue from pausing the socket.
                async for _frame in connection:
                    pass
            except (ConnectionClosed, OSError):
                pass
            finally:
                if counted:
                    self.open -= 1
                self.connections.discard(connection)
                if isinstance(connection, _StampingConnection):
                    position = connection.position or position
            if not self.stopping:
                await asyncio.sleep(self._delay(0))


def _client_main(pipe: Connection, spec: ClientSpec, count: int) -> None:
    """Entry point of a client process: serve the parent's commands until ``stop``."""
    raise_nofile_limit()
    # A refused reconnect is expected here; the library need not say so on stderr.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    asyncio.run(_client_loop(pipe, spec, count))


async def _client_loop(pipe: Connection, spec: ClientSpec, count: int) -> None:
    loop = asyncio.get_running_loop()
    client = _Client(spec, count)
    _StampingConnection.recorder = client
    client.start()
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command == "status":
            pipe.send(client.status())
        elif command == "reset":
            client.reset()
            pipe.send("ok")
        elif command == "results":
            pipe.send((client.received, client.latencies.tobytes()))
        elif command == "stop":
            await client.stop()
            pipe.send("ok")
            return


class FleetError(Exception):
    """The client processes did not reach a state in time, or one of them died."""


class ClientFleet:
    """``processes`` client processes holding ``connections`` connections between them."""

    def __init__(self, spec: ClientSpec, connections: int, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.connections = connections
        self._pipes: list[Connection] = []
        self._processes: list[Any] = []
        share, extra = divmod(connections, processes)
        for index in range(processes):
            count = share + (1 if index < extra else 0)
            if count == 0:
                continue
            parent, child = context.Pipe()
            process = context.Process(
                target=_client_main, args=(child, spec, count), name=f"bench-client-{index}"
            )
            process.daemon = True
            process.start()
            child.close()
            self._pipes.append(parent)
            self._processes.append(process)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes]

    def _ask(self, command: str, timeout: float = 30.0) -> list[Any]:
        for pipe in self._pipes:
            pipe.send(command)
        replies = []
        for pipe, process in zip(self._pipes, self._processes, strict=True):
            if not pipe.poll(timeout):
                raise FleetError(f"client {process.name} did not answer {command!r}")
            replies.append(pipe.recv())
        return replies

    def status(self) -> list[Status]:
        return self._ask("status")

    def reset(self) -> None:
        self._ask("reset")

    def results(self) -> tuple[int, list[float]]:
        """Stamped frames received since the last reset, and their latencies in ms."""
        received, latencies = 0, array.array("d")
        for count, raw in self._ask("results", timeout=120.0):
            received += count
            latencies.frombytes(raw)
        return received, latencies.tolist()

    def wait_open(self, within: float) -> list[Status]:
        """Wait until every connection is open; returns the last status.

        Raises:
            FleetError: not all connections are open after ``within`` seconds.
        """
        deadline = time.monotonic() + within
        while True:
            states = self.status()
            if sum(s.open for s in states) >= self.connections:
                return states
            if time.monotonic() > deadline:
                opened = sum(s.open for s in states)
                raise FleetError(f"{opened} of {self.connections} connections open")
            time.sleep(0.02)

    def wait_received(self, expected: int, within: float) -> int:
        """Wait until ``expected`` stamped frames have arrived, or ``within`` seconds pass."""
        deadline = time.monotonic() + within
        while True:
            received = sum(s.received for s in self.status())
            if received >= expected or time.monotonic() > deadline:
                return received
            time.sleep(0.02)

    def stop(self) -> None:
        """Close every connection and end the processes; never hangs."""
        with contextlib.suppress(FleetError, OSError):
            self._ask("stop", timeout=10.0)
        for process in self._processes:
            process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join()
