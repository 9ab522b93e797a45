"""Fan-out benchmark: the hub's gateway against a bare ``websockets`` server, same run.

For each N (``--n``) and each target, the harness

1. starts the server process and notes its RSS;
2. opens N websocket connections from ``--clients-procs`` client processes and, once they are
   idle, notes the RSS again: ``rss_per_conn`` = (after − before) / N;
3. has the server publish ``--messages`` frames at ``--rate`` per second, each stamped with
   ``time.time_ns()``, while it measures the CPU time (user + system) of the server and of the
   clients: ``cpu_per_delivery`` = server CPU / frames received; every client records
   publish-to-receive latency for every frame (``p50``, ``p90``, ``p99``, ``max``);
4. restarts the server on the same port (the reference: SIGKILL; the hub: SIGTERM, as an
   operator restarts it) and measures how long the N clients, reconnecting with backoff and
   jitter, take to be connected again (the hub's: to have their ``welcome`` again, having
   said hello with their last position).

The reference is a bare ``websockets`` asyncio server that sends with ``broadcast()``; both
sides run with compression off and without websocket keepalive pings (the hub uses its own
application ``tick``). Figure lines go to stdout (see bench/_common.py); bench/README.md
describes the method and how to read the figures.

    .venv/bin/python bench/fanout.py --only ref --n 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import msgspec
from _common import (
    ClientFleet,
    ClientSpec,
    Figures,
    FleetError,
    cpu_seconds,
    listen_overflows,
    note,
    percentile,
    raise_nofile_limit,
    rss_bytes,
    run_main,
)
from _target import BenchError, Lines, Target

HOST = "127.0.0.1"
# Listen backlog of both servers: a reconnect storm of thousands of peers must not overflow
# the accept queue (the kernel caps it at net.core.somaxconn).
BACKLOG = 4096


# --- targets -----------------------------------------------------------------------------


class ReferenceTarget(Target):
    """The bare ``websockets`` server (``--serve-ref``) in a child process."""

    name = "ref"

    def __init__(self, port: int = 0) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._lines: Lines | None = None
        self.port = port
        self._spawn()

    def _spawn(self) -> None:
        command = [sys.executable, os.path.abspath(__file__), "--serve-ref", str(self.port)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self._process.stdout is not None
        self._lines = Lines(self._process.stdout)
        self.port = int(self._lines.next(30.0, "port from the reference server"))
        self.pid = self._process.pid
        self.url = f"ws://{HOST}:{self.port}/"

    def _command(self, line: str, within: float, what: str) -> str:
        assert self._process is not None and self._process.stdin is not None
        assert self._lines is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._lines.next(within, what)

    def publish(self, messages: int, rate: float, size: int) -> None:
        within = messages / rate + 60.0
        self._command(f"publish {messages} {rate} {size}", within, "end of publishing")

    def restart(self) -> int:
        self._kill()
        self._spawn()
        return time.time_ns()

    def accepted_at(self, count: int, within: float) -> int | None:
        reply = self._command(f"wait {count}", within, f"{count} accepted connections")
        return int(reply.split()[2])

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def stop(self) -> None:
        self._kill()


def start_hub_target(args: argparse.Namespace, n: int) -> Target:
    """Start ``hallhub serve`` on a fresh database as the target under test (bench/_hub.py).

    Same settings as the reference where they exist: compression off, no protocol pings
    (the hub's ``tick`` period is set far beyond the run so that no tick is sent),
    MemoryBus, everything else at its default.
    """
    from _hub import HubTarget

    return HubTarget()


# --- the reference server (a child process) -----------------------------------------------


def _serve_reference(port: int) -> None:
    """``--serve-ref PORT``: listen (PORT 0: any free port), write the port on stdout, then
    obey stdin: ``publish M RATE SIZE`` → ``published M``; ``wait K`` → ``accepted K T_NS``
    once K connections have been accepted since start; ``quit``."""
    raise_nofile_limit()
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    asyncio.run(_reference_server(port))


class _Frame(msgspec.Struct):
    type: str
    seq: int
    t: int
    data: dict[str, str]


async def _reference_server(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    peers: set[ServerConnection] = set()
    accepted: list[int] = []  # time_ns of each accept, in order
    waiters: list[tuple[int, asyncio.Future[int]]] = []

    async def handler(connection: ServerConnection) -> None:
        peers.add(connection)
        accepted.append(time.time_ns())
        for count, waiter in waiters:
            if len(accepted) >= count and not waiter.done():
                waiter.set_result(accepted[count - 1])
        try:
            await connection.wait_closed()
        finally:
            peers.discard(connection)

    async def publish(messages: int, rate: float, size: int) -> None:
        encode = msgspec.json.Encoder().encode
        padding = {"pad": "x" * max(0, size - 60)}
        loop = asyncio.get_running_loop()
        start = loop.time()
        for seq in range(messages):
            delay = start + seq / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = encode(_Frame(type="event", seq=seq, t=time.time_ns(), data=padding))
            # One encoded frame for every peer, as the hub does; text=True sends the UTF-8
            # bytes as a text frame without decoding them again.
            broadcast(peers, frame, text=True)

    async with serve(
        handler,
        HOST,
        port,
        compression=None,
        ping_interval=None,
        max_size=64 * 1024,
        backlog=BACKLOG,
    ) as server:
        bound = server.sockets[0].getsockname()[1]
        _reply(str(bound))
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().split():
            if line[0] == "publish":
                messages, rate, size = int(line[1]), float(line[2]), int(line[3])
                await publish(messages, rate, size)
                _reply(f"published {messages}")
            elif line[0] == "wait":
                count = int(line[1])
                waiter: asyncio.Future[int] = loop.create_future()
                if len(accepted) >= count:
                    waiter.set_result(accepted[count - 1])
                waiters.append((count, waiter))
                _reply(f"accepted {count} {await waiter}")
            elif line[0] == "quit":
                break


def _reply(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# --- the harness -------------------------------------------------------------------------


# Figures compared hub ÷ reference, when both ran.
COMPARED = (
    "cpu_per_delivery",
    "client_cpu_per_delivery",
    "p50",
    "p99",
    "rss_per_conn",
    "reconnect_clients",
)


def measure(target: Target, n: int, args: argparse.Namespace) -> Figures:
    """Run the phases of the module docstring against ``target`` with ``n`` clients."""
    figures = Figures(f"{target.name}_n{n}")
    spec = ClientSpec(
        url=target.url,
        hello=target.hello,
        resume_hello=target.resume_hello,
        await_welcome=target.await_welcome,
    )
    time.sleep(0.5)
    rss_before = rss_bytes(target.pid)
    note(f"{figures.prefix}: opening {n} connections from {args.clients_procs} processes")
    fleet = ClientFleet(spec, n, args.clients_procs)
    try:
        fleet.wait_open(within=30.0 + n / 50)
        time.sleep(1.0)  # let the server settle: handshakes done, buffers released
        figures.add("rss_per_conn", (rss_bytes(target.pid) - rss_before) / n / 1024, "KB")

        expected = n * args.messages
        note(f"{figures.prefix}: publishing {args.messages} frames at {args.rate}/s")
        fleet.reset()
        server_cpu, clients_cpu = cpu_seconds([target.pid]), cpu_seconds(fleet.pids)
        target.publish(args.messages, args.rate, args.size)
        received = fleet.wait_received(expected, within=args.drain)
        server_cpu = cpu_seconds([target.pid]) - server_cpu
        clients_cpu = cpu_seconds(fleet.pids) - clients_cpu
        received, latencies = fleet.results()
        latencies.sort()
        deliveries = max(received, 1)
        figures.add("cpu_per_delivery", server_cpu / deliveries * 1e6, "us")
        figures.add("client_cpu_per_delivery", clients_cpu / deliveries * 1e6, "us")
        for q in (50, 90, 99):
            figures.add(f"p{q}", percentile(latencies, q), "ms")
        figures.add("max", latencies[-1] if latencies else float("nan"), "ms")
        figures.add("delivered", received / expected * 100, "%")

        note(f"{figures.prefix}: restarting the server")
        overflows = listen_overflows()
        ready_ns = target.restart()
        within = 60.0 + n / 50
        accepted_ns = target.accepted_at(n, within)
        states = fleet.wait_open(within)
        back_ns = max(s.last_open_ns for s in states)
        figures.add("reconnect_clients", (back_ns - ready_ns) / 1e9, "s")
        figures.add("reconnect", ((accepted_ns or back_ns) - ready_ns) / 1e9, "s")
        after = listen_overflows()
        if overflows is not None and after is not None:
            # SYNs dropped on a full accept queue: each costs its client a SYN retransmit
            # (1 s, then 2 s, 4 s…). Machine-wide: other processes' listeners count too.
            figures.add("restart_listen_overflows", after - overflows, "SYNs")
        if target.await_welcome:
            # The same clients, counted at the handshake instead of at the welcome.
            shaken_ns = max(s.last_connect_ns for s in states)
            figures.add("reconnect_handshakes", (shaken_ns - ready_ns) / 1e9, "s")
        for name, (value, unit) in target.details().items():
            figures.add(name, value, unit)
    finally:
        fleet.stop()
    return figures


def _run_target(start: Callable[[], Target], n: int, args: argparse.Namespace) -> Figures:
    target = start()
    try:
        return measure(target, n, args)
    finally:
        target.stop()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fan-out benchmark: the hub gateway against a bare websockets server."
    )
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 5000], help="connections")
    parser.add_argument("--messages", type=int, default=50, help="frames published per run")
    parser.add_argument("--rate", type=float, default=5.0, help="frames per second")
    parser.add_argument("--size", type=int, default=200, help="approximate frame bytes")
    parser.add_argument("--clients-procs", type=int, default=2, help="client processes")
    parser.add_argument("--only", choices=("ref", "hub", "both"), default="both")
    parser.add_argument(
        "--drain", type=float, default=10.0, help="seconds to wait for frames after publishing"
    )
    parser.add_argument("--serve-ref", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.messages < 1 or args.clients_procs < 1 or min(args.n) < 1:
        parser.error("--rate, --messages, --clients-procs and --n must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.serve_ref is not None:
        with contextlib.suppress(KeyboardInterrupt):
            _serve_reference(args.serve_ref)
        return 0
    raise_nofile_limit()
    # A Ctrl-C ends the run through the finally blocks, which stop every child.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    status = 0
    for n in args.n:
        reference = None
        if args.only in ("ref", "both"):
            reference = _run_target(ReferenceTarget, n, args)
        if args.only in ("hub", "both"):
            try:
                hub = _run_target(functools.partial(start_hub_target, args, n), n, args)
            except NotImplementedError as exc:
                note(f"hub_n{n}: skipped ({exc})")
                status = 2 if args.only == "hub" else status
                continue
            if reference is not None:
                hub.compare(reference, COMPARED)
    return status


if __name__ == "__main__":
    run_main(main, (BenchError, FleetError))
