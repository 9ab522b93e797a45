"""Device peers benchmark (issue 5): hundreds of device peers on one hub process.

For each target (``--only``: the hub, a bare reference, or both), the harness

1. starts the target and a *watcher*: a hall manager's session subscribed to
   ``presence:<hall>`` (the hub's device page), in this process; then measures the target's
   CPU over ``--idle`` seconds with no device peer (``idle_cpu``) and notes its RSS;
2. connects ``--peers`` device peers (default 500, kinds mixed, each with its own registered
   device token, subscribed to its ``device:<id>`` topic) from one client process;
   ``connect_p50/p99``: from each hello to its ``peer_online`` at the watcher during that
   storm; ``connect_all``: until the last one; ``rss_per_peer`` = (RSS with the peers − RSS
   before) / peers, read after the storm has settled;
3. *steady* (``--steady`` seconds): every peer sends a heartbeat after 5 s without sending
   (the protocol's rule: ``heartbeat_seconds / 3`` from the welcome, 15 s by default) and the
   hub sends its ``tick`` every 5 s (its default ``tick_seconds``); ``steady_cpu`` is the
   target's CPU over that window, in % of one core; ``heartbeat_cpu`` = steady − idle;
4. *trickle* (``--trickle`` seconds): on top of the heartbeats, ``--reconnect-rate`` device
   peers per second close and reconnect at once (``reconnect_p50/p99/max``: hello to
   ``peer_online`` at the watcher) and printers report ``printer_status`` changes at
   ``--event-rate`` per second (``event_ack_p50/p99``: from the device event to the hub's
   ``reply`` with its key, i.e. the event's transaction committed; if the hub serves
   ``alerts:<hall>``, ``event_alert_p50/p99``: to the ``alert_raised``/``alert_cleared``
   the watcher sees).

The reference (``--serve-ref``, a child process) is a bare ``websockets`` server speaking the
same frames with nothing behind them: a hello gets a welcome and a ``peer_online`` to the
watchers at once, a device event its reply, ticks every 5 s, the 15 s heartbeat deadline; no
database, no authentication, no presence rows. Ratios are hub ÷ reference, same run; and
``steady_cpu_vs_idle``: the hub's steady CPU ÷ its own idle CPU.

``--samples FILE`` appends every trickle sample (start time, latency) as JSON lines, to see
when the slow ones happened.

Processes: the target (measured alone, by its pid), one client process holding every device
peer, this harness (watcher, orchestration), and PostgreSQL; their CPU over the steady window
is printed too (``steady_clients_cpu``, ``steady_harness_cpu``, ``steady_pg_cpu``). Figure
lines go to stdout (bench/README.md), progress to stderr.

    .venv/bin/python bench/device_bench.py
    .venv/bin/python bench/device_bench.py --only hub --peers 500 --steady 60
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import logging
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import nan
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from _common import (
    Database,
    Figures,
    cpu_seconds,
    emit_ratio,
    free_port,
    note,
    percentile,
    postgres_cpu,
    raise_nofile_limit,
    rss_bytes,
    run_main,
)
from _target import BenchError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
START_WITHIN = 60.0
# The hub's defaults (hub/config.py), which the reference copies.
TICK_SECONDS = 5.0
HEARTBEAT_SECONDS = 15.0
# Device kinds of the mix, in turn: every kind a hall PC's agent runs a peer for.
KINDS = (
    "printer",
    "id_reader",
    "code_reader",
    "evaluator",
    "window_display",
    "ticket_machine",
    "kiosk",
    "hall_display",
    "info_terminal",
)
PAPER_CYCLE = ("low", "out", "ok")


# --- the database --------------------------------------------------------------------------


@dataclass
class Seeded:
    hall_id: int
    manager_token: str
    devices: list[tuple[int, str, str]] = field(default_factory=list)  # (id, kind, token)


async def seed(db: Database, peers: int) -> Seeded:
    """A hall, its manager's session, and ``peers`` devices of the kinds in turn, each with
    its own token, in the (created) database."""
    from hub.services.auth import token_hash

    conn = await asyncpg.connect(db.dsn, timeout=10)
    try:
        region = await conn.fetchval(
            "INSERT INTO region (level, code, name, path) "
            "VALUES ('province', 'bench-d', '基准省', '') RETURNING id"
        )
        await conn.execute("UPDATE region SET path = '/' || id || '/' WHERE id = $1", region)
        hall = await conn.fetchval(
            "INSERT INTO hall (region_id, code, name) VALUES ($1, 'bench-d', '基准大厅') "
            "RETURNING id",
            region,
        )
        staff = await conn.fetchval(
            "INSERT INTO staff (staff_no, name, password_hash, hall_id) "
            "VALUES ('bench-manager', '基准值班长', 'x', $1) RETURNING id",
            hall,
        )
        await conn.execute(
            "INSERT INTO role_grant (staff_id, role, scope_kind, scope_id) "
            "VALUES ($1, 'hall_manager', 'hall', $2)",
            staff,
            hall,
        )
        manager = secrets.token_urlsafe(32)
        await conn.execute(
            "INSERT INTO staff_session (token_hash, staff_id, expires_at) "
            "VALUES ($1, $2, now() + interval '1 day')",
            token_hash(manager),
            staff,
        )
        seeded = Seeded(int(hall), manager)
        kinds = [KINDS[i % len(KINDS)] for i in range(peers)]
        tokens = [secrets.token_urlsafe(32) for _ in range(peers)]
        rows = await conn.fetch(
            """INSERT INTO device (hall_id, kind, name, token_hash)
               SELECT $1, k, k || '-' || n, h
               FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS s(k, h, n)
               ORDER BY n
               RETURNING id""",
            hall,
            kinds,
            [token_hash(t) for t in tokens],
        )
        ids = sorted(int(r["id"]) for r in rows)
        seeded.devices = list(zip(ids, kinds, tokens, strict=True))
    finally:
        await conn.close()
    return seeded


async def wait_listening(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + START_WITHIN
    while True:
        if process.poll() is not None:
            raise BenchError(f"{what} exited ({process.returncode})")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(HOST, port)
            writer.close()
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{what} not listening within {START_WITHIN:.0f} s")
        await asyncio.sleep(0.02)


# --- targets -------------------------------------------------------------------------------


class Target:
    """A server under test in a child process: its pid, gateway URL, and the watcher's
    hello and the way it names a device in ``peer_online``."""

    name: str
    pid: int
    url: str
    watcher_hello: bytes
    alerts_hello: bytes | None = None
    has_database = False

    def peer_name(self, device_id: int) -> str:
        return f"device:{device_id}"

    async def stop(self) -> None:
        raise NotImplementedError


class HubTarget(Target):
    """``hallhub serve`` on the benchmark's database: MemoryBus, ``HALLHUB_LOG_LEVEL=warning``,
    every other setting at its default (tick 5 s, heartbeat deadline 15 s)."""

    name = "hub"
    has_database = True

    def __init__(self, dsn: str, seeded: Seeded) -> None:
        self._dir = tempfile.mkdtemp(prefix="hallhub-bench-d-")
        self.http_port, self.gateway_port = free_port(), free_port()
        self.url = f"ws://{HOST}:{self.gateway_port}/"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HALLHUB_")}
        env.update(
            HALLHUB_DATABASE_URL=dsn,
            HALLHUB_HOST=HOST,
            HALLHUB_HTTP_PORT=str(self.http_port),
            HALLHUB_GATEWAY_PORT=str(self.gateway_port),
            HALLHUB_LOG_LEVEL="warning",
            HALLHUB_DATA_DIR=self._dir,
        )
        self._log = open(os.path.join(self._dir, "hub.log"), "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("hallhub")), "serve"],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid
        hall = seeded.hall_id
        self.watcher_hello = _hello("console", seeded.manager_token, [f"presence:{hall}"])
        self.alerts_hello = _hello("console", seeded.manager_token, [f"alerts:{hall}"])

    async def start(self) -> None:
        try:
            await wait_listening(self.process, self.gateway_port, "the hub's gateway")
            await wait_listening(self.process, self.http_port, "the hub's HTTP API")
        except BenchError as exc:
            raise BenchError(f"{exc}: {self.tail()}") from None

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            text = Path(self._dir, "hub.log").read_text("utf-8", "replace")
            return " | ".join(text.strip().splitlines()[-5:])
        return "(no log)"

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class ReferenceTarget(Target):
    """The bare ``websockets`` server of this file (``--serve-ref``)."""

    name = "ref"

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"ws://{HOST}:{self.port}/"
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve-ref", str(self.port)],
            stdin=subprocess.DEVNULL,
        )
        self.pid = self.process.pid
        self.watcher_hello = _hello("console", "watcher", ["presence:0"])

    async def start(self) -> None:
        await wait_listening(self.process, self.port, "the reference server")

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


def _hello(kind: str, token: str, topics: list[str], client: str = "") -> bytes:
    return msgspec.json.encode(
        {
            "type": "hello",
            "kind": kind,
            "token": token,
            "topics": [{"topic": t} for t in topics],
            "client": client,
        }
    )


# --- the reference server (a child process) ------------------------------------------------


class _RefHello(msgspec.Struct):
    kind: str
    token: str | None = None
    topics: list[dict[str, Any]] = []
    client: str = ""


class _RefFrame(msgspec.Struct):
    type: str
    key: str | None = None


def serve_reference(port: int) -> None:
    """``--serve-ref PORT``: the bare server (module docstring) until killed."""
    raise_nofile_limit()
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_reference(port))


async def _reference(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    encode = msgspec.json.encode
    decode_hello = msgspec.json.Decoder(_RefHello).decode
    decode_frame = msgspec.json.Decoder(_RefFrame).decode
    last_rx: dict[ServerConnection, float] = {}
    watchers: set[ServerConnection] = set()
    seq = 0

    def presence(name: str, peer_id: str) -> None:
        nonlocal seq
        seq += 1
        now = time.time()
        frame = encode(
            {
                "type": "event",
                "topic": "presence:0",
                "epoch": 1,
                "seq": seq,
                "ts": now,
                "name": name,
                "data": {"peer_id": peer_id, "online": name == "peer_online", "last_seen": now},
            }
        )
        broadcast(watchers, frame, text=True)

    async def handler(ws: ServerConnection) -> None:
        hello = decode_hello(await ws.recv(decode=False))
        last_rx[ws] = time.monotonic()
        welcome = {
            "type": "welcome",
            "peer": {"id": hello.client, "kind": hello.kind, "hall_id": 0},
            "tick_seconds": TICK_SECONDS,
            "heartbeat_seconds": HEARTBEAT_SECONDS,
            "server_time": time.time(),
            "topics": [],
        }
        await ws.send(encode(welcome), text=True)
        device = hello.client.startswith("device:")
        if device:
            presence("peer_online", hello.client)
        else:
            watchers.add(ws)
        try:
            async for raw in ws:
                last_rx[ws] = time.monotonic()
                frame = decode_frame(raw)
                if frame.type == "device_event":
                    reply = {"type": "reply", "id": frame.key, "ok": True, "data": {}}
                    await ws.send(encode(reply), text=True)
        except ConnectionClosed:
            pass
        finally:
            last_rx.pop(ws, None)
            watchers.discard(ws)
            if device:
                presence("peer_offline", hello.client)

    async def ticks() -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            frame = encode({"type": "tick", "ts": time.time()})
            now = time.monotonic()
            for ws, seen in list(last_rx.items()):
                if now - seen > HEARTBEAT_SECONDS:
                    asyncio.get_running_loop().create_task(ws.close(4410, "heartbeat"))
                    continue
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(frame, text=True)

    async with serve(
        handler, HOST, port, compression=None, ping_interval=None, max_size=64 * 1024, backlog=4096
    ):
        await ticks()


# --- the device peers (a client process) ---------------------------------------------------


class _Head(msgspec.Struct):
    type: str
    id: str | None = None
    heartbeat_seconds: float | None = None


_decode_head = msgspec.json.Decoder(_Head).decode
HEARTBEAT = b'{"type":"heartbeat"}'


class Fleet:
    """Every device peer of the client process, and what they recorded."""

    def __init__(self, url: str, devices: list[tuple[int, str, str]]) -> None:
        self.url = url
        self.phase = "connect"
        self.stopping = False
        self.gate = asyncio.Semaphore(64)  # handshakes in flight during the storm
        self.peers = [DevicePeer(self, *d) for d in devices]
        self.hellos: list[tuple[int, int, str]] = []  # (device id, time_ns, phase)
        self.sent_events: dict[str, tuple[int, int, str]] = {}  # key → (device, ns, paper)
        self.acks: list[tuple[str, int]] = []  # (key, time_ns)
        self.welcomed = 0
        self.live = 0
        self.drops = 0
        self.failures = 0
        self.beats = 0
        self.boot = secrets.token_hex(4)

    async def heartbeats(self) -> None:
        """One timer for all peers: a heartbeat after ``heartbeat_seconds / 3`` without any
        frame sent (the rule of realtime/client.py)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.2)
            now = loop.time()
            for peer in self.peers:
                ws = peer.ws
                if ws is None or not peer.live or now - peer.last_sent < peer.interval:
                    continue
                peer.last_sent = now
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(HEARTBEAT, text=True)
                    self.beats += 1

    async def trickle(self, seconds: float, reconnect_rate: float, event_rate: float) -> None:
        """Reconnect ``reconnect_rate`` peers per second (each once, in a shuffled order) and
        send ``event_rate`` printer_status events per second, for ``seconds``."""
        self.phase = "trickle"
        loop = asyncio.get_running_loop()
        order = self.peers[:]
        random.Random(5).shuffle(order)
        printers = [p for p in self.peers if p.kind == "printer"]
        start = loop.time() + 0.1
        tasks: list[asyncio.Task[None]] = []
        plan = sorted(
            [(k / reconnect_rate, "reconnect", k) for k in range(int(seconds * reconnect_rate))]
            + [(k / event_rate, "event", k) for k in range(int(seconds * event_rate))]
        )
        for at, what, k in plan:
            await asyncio.sleep(max(0.0, start + at - loop.time()))
            # A peer is not reconnected while its event waits for the hub's reply, nor is an
            # event sent on a link being closed: neither would be a measurement.
            if what == "reconnect":
                peer = order[k % len(order)]
                if peer.live and not peer.unacked:
                    tasks.append(loop.create_task(peer.reconnect()))
            else:
                for step in range(len(printers)):
                    printer = printers[(k + step) % len(printers)]
                    if printer.live and not printer.asked_to_reconnect:
                        await printer.printer_status()
                        break
        await asyncio.gather(*tasks, return_exceptions=True)


class DevicePeer:
    """One device's link: hello, heartbeats, device events; reconnects when asked (at once)
    or when dropped (after up to 1 s)."""

    def __init__(self, fleet: Fleet, device_id: int, kind: str, token: str) -> None:
        self.fleet = fleet
        self.device_id = device_id
        self.kind = kind
        self.hello = _hello(kind, token, [f"device:{device_id}"], client=f"device:{device_id}")
        self.ws: ClientConnection | None = None
        self.live = False
        self.asked_to_reconnect = False
        self.last_sent = 0.0
        self.interval = HEARTBEAT_SECONDS / 3
        self.paper = 0
        self.counter = 0
        self.unacked: set[str] = set()

    async def run(self) -> None:
        fleet = self.fleet
        loop = asyncio.get_running_loop()
        while not fleet.stopping:
            try:
                async with fleet.gate if fleet.phase == "connect" else contextlib.nullcontext():
                    ws = await connect(
                        fleet.url,
                        compression=None,
                        proxy=None,
                        ping_interval=None,
                        max_size=None,
                        open_timeout=60,
                        close_timeout=5,
                    )
            except (OSError, TimeoutError, WebSocketException):
                fleet.failures += 1
                await asyncio.sleep(random.uniform(0.1, 1.0))
                continue
            self.ws = ws
            try:
                fleet.hellos.append((self.device_id, time.time_ns(), fleet.phase))
                await ws.send(self.hello, text=True)
                self.last_sent = loop.time()
                async for raw in ws:
                    self._on_frame(raw)
            except ConnectionClosed:
                pass
            finally:
                self.ws = None
                if self.live:
                    self.live = False
                    fleet.live -= 1
            if self.asked_to_reconnect:
                self.asked_to_reconnect = False
            elif not fleet.stopping:
                fleet.drops += 1
                await asyncio.sleep(random.uniform(0.05, 1.0))

    def _on_frame(self, raw: str | bytes) -> None:
        head = _decode_head(raw)
        if head.type == "welcome":
            self.live = True
            self.fleet.live += 1
            self.fleet.welcomed += 1
            if head.heartbeat_seconds:
                self.interval = head.heartbeat_seconds / 3
        elif head.type == "reply" and head.id is not None:
            self.fleet.acks.append((head.id, time.time_ns()))
            self.unacked.discard(head.id)

    async def reconnect(self) -> None:
        ws = self.ws
        if ws is not None:
            self.asked_to_reconnect = True
            await ws.close()

    async def printer_status(self) -> None:
        ws = self.ws
        if ws is None:
            return
        paper = PAPER_CYCLE[self.paper % len(PAPER_CYCLE)]
        self.paper += 1
        self.counter += 1
        key = f"{self.fleet.boot}-{self.device_id}-{self.counter}"
        frame = msgspec.json.encode(
            {
                "type": "device_event",
                "key": key,
                "name": "printer_status",
                "data": {"online": paper != "out", "paper": paper, "cover_open": False,
                         "error": False},
            }
        )  # fmt: skip
        self.fleet.sent_events[key] = (self.device_id, time.time_ns(), paper)
        self.unacked.add(key)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(frame, text=True)
            self.last_sent = asyncio.get_running_loop().time()


def _devices_main(pipe: Connection, url: str, devices: list[tuple[int, str, str]]) -> None:
    raise_nofile_limit()
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    asyncio.run(_devices(pipe, url, devices))


async def _devices(pipe: Connection, url: str, devices: list[tuple[int, str, str]]) -> None:
    fleet = Fleet(url, devices)
    loop = asyncio.get_running_loop()
    runners: list[asyncio.Task[None]] = []
    timer = loop.create_task(fleet.heartbeats())
    while True:
        command, *args = await loop.run_in_executor(None, pipe.recv)
        if command == "connect":
            runners = [loop.create_task(p.run()) for p in fleet.peers]
            pipe.send("ok")
        elif command == "status":
            pipe.send((fleet.welcomed, fleet.live, fleet.drops, fleet.failures, fleet.beats))
        elif command == "trickle":
            await fleet.trickle(*args)
            pipe.send("ok")
        elif command == "results":
            pipe.send((fleet.hellos, fleet.sent_events, fleet.acks))
        elif command == "stop":
            fleet.stopping = True
            timer.cancel()
            for peer in fleet.peers:
                if peer.ws is not None:
                    peer.ws.transport.abort()
            for task in runners:
                task.cancel()
            await asyncio.gather(timer, *runners, return_exceptions=True)
            pipe.send("ok")
            return


class DeviceProcess:
    """The client process holding every device peer, driven over a pipe."""

    def __init__(self, url: str, devices: list[tuple[int, str, str]]) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_devices_main, args=(child, url, devices))
        self.process.daemon = True
        self.process.start()
        child.close()
        assert self.process.pid is not None
        self.pid = self.process.pid

    async def ask(self, *command: Any, timeout: float = 60.0) -> Any:
        def exchange() -> Any:
            self.pipe.send(command)
            try:
                if not self.pipe.poll(timeout):
                    raise BenchError(f"the device process did not answer {command[0]!r}")
                return self.pipe.recv()
            except (EOFError, OSError) as exc:
                raise BenchError(f"the device process ended ({exc!r})") from None

        return await asyncio.to_thread(exchange)

    async def stop(self) -> None:
        with contextlib.suppress(BenchError, OSError, EOFError):
            await self.ask("stop", timeout=15)
        await asyncio.to_thread(self.process.join, 5)
        if self.process.is_alive():
            self.process.kill()


# --- the watcher (this process) ------------------------------------------------------------


class _Data(msgspec.Struct):
    peer_id: str | None = None
    device_id: int | None = None
    code: str | None = None
    alert: dict[str, Any] | None = None


class _EventHead(msgspec.Struct):
    type: str
    name: str | None = None
    data: _Data | None = None


_decode_event = msgspec.json.Decoder(_EventHead).decode


class Watch:
    """What the watcher connections saw: ``peer_online`` and alert arrivals by peer name."""

    def __init__(self) -> None:
        self.online: dict[str, list[int]] = defaultdict(list)
        self.alerts: dict[int, list[int]] = defaultdict(list)
        self.welcomed = 0


class _WatchConnection(ClientConnection):
    """Stamps frames as the protocol parses them, before they wait for the reader task."""

    watch: Watch | None = None

    def process_event(self, event: Event) -> None:
        watch = _WatchConnection.watch
        if watch is not None and isinstance(event, Frame) and event.opcode == Opcode.TEXT:
            now = time.time_ns()
            data = event.data
            if b'"peer_online"' in data or b'"alert_' in data or b'"welcome"' in data:
                head = _decode_event(data)
                if head.type == "welcome":
                    watch.welcomed += 1
                elif head.name == "peer_online" and head.data and head.data.peer_id:
                    watch.online[head.data.peer_id].append(now)
                elif head.name in ("alert_raised", "alert_cleared") and head.data:
                    # alert_raised {alert: {device_id, code…}}, alert_cleared {device_id,
                    # code}; only the paper alerts the printer_status events cause.
                    device, code = head.data.device_id, head.data.code
                    if head.data.alert is not None:
                        device = head.data.alert.get("device_id")
                        code = head.data.alert.get("code")
                    if isinstance(device, int) and code in ("paper_low", "paper_out"):
                        watch.alerts[device].append(now)
        super().process_event(event)


async def watcher(url: str, hello: bytes, watch: Watch) -> None:
    """One watcher connection: hello, then heartbeats every 5 s until cancelled.

    Raises:
        ConnectionClosed: the target refused it (e.g. a topic it does not serve).
    """
    _WatchConnection.watch = watch
    async with connect(
        url,
        compression=None,
        proxy=None,
        ping_interval=None,
        max_size=None,
        create_connection=_WatchConnection,
    ) as ws:
        await ws.send(hello, text=True)
        reader = asyncio.create_task(_drain(ws))
        try:
            while not reader.done():
                await asyncio.wait([reader], timeout=HEARTBEAT_SECONDS / 3)
                if not reader.done():
                    await ws.send(HEARTBEAT, text=True)
            reader.result()
        finally:
            reader.cancel()


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


# --- the harness -----------------------------------------------------------------------------


def _latencies(
    starts: Sequence[tuple[str, int]], arrivals: dict[str, list[int]]
) -> tuple[list[float], int]:
    """For each (name, start ns): ms to the first arrival for that name at or after it.
    Returns the sorted latencies and how many starts saw none."""
    out: list[float] = []
    missing = 0
    for name, start in starts:
        seen = arrivals.get(name, [])
        i = bisect.bisect_left(seen, start)
        if i < len(seen):
            out.append((seen[i] - start) / 1e6)
        else:
            missing += 1
    out.sort()
    return out, missing


async def _cpu_window(pids: dict[str, list[int]], seconds: float) -> tuple[dict[str, float], float]:
    """CPU of each group of processes (and PostgreSQL, as ``pg``) over ``seconds``, in % of
    one core; and the PostgreSQL figure separately as seconds."""
    before = {name: cpu_seconds(group) for name, group in pids.items()}
    pg = postgres_cpu()
    started = time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - started
    out = {name: (cpu_seconds(group) - before[name]) / wall * 100 for name, group in pids.items()}
    out["pg"] = (postgres_cpu() - pg) / wall * 100
    return out, wall


async def measure(target: Target, seeded: Seeded, args: argparse.Namespace) -> Figures:
    peers = len(seeded.devices)
    figures = Figures(f"{target.name}_p{peers}")
    watch = Watch()
    tasks = [asyncio.create_task(watcher(target.url, target.watcher_hello, watch))]
    alerts_served = False
    devices: DeviceProcess | None = None
    try:
        await _until(lambda: watch.welcomed >= 1, 30, "the watcher's welcome", tasks)
        if target.alerts_hello is not None:
            alerts = asyncio.create_task(watcher(target.url, target.alerts_hello, watch))
            await _until(lambda: watch.welcomed >= 2 or alerts.done(), 30, "alerts", [])
            alerts_served = not alerts.done()
            if alerts_served:
                tasks.append(alerts)
            else:
                refused = alerts.exception()  # closed after its hello: an unknown topic kind
                note(f"{figures.prefix}: alerts:<hall> not served ({refused!r}); no event_alert")
        hub_pid = [target.pid]
        harness = [os.getpid()]

        await asyncio.sleep(2.0)  # started: workers spawned, first jobs run
        note(f"{figures.prefix}: idle for {args.idle:.0f} s (no device peer)")
        idle, _ = await _cpu_window({"target": hub_pid}, args.idle)
        figures.add("idle_cpu", idle["target"], "%")
        rss_before = rss_bytes(target.pid)

        note(f"{figures.prefix}: connecting {peers} device peers from one client process")
        devices = DeviceProcess(target.url, seeded.devices)
        started = time.time_ns()
        await devices.ask("connect")
        names = [target.peer_name(d[0]) for d in seeded.devices]

        async def all_online() -> bool:
            welcomed, *_ = await devices.ask("status")
            return bool(welcomed >= peers and all(watch.online.get(n) for n in names))

        await _until_async(all_online, 60 + peers / 10, "every device peer online")
        last = max(watch.online[n][0] for n in names)
        figures.add("connect_all", (last - started) / 1e9, "s")
        hellos, _, _ = await devices.ask("results")
        storm, _ = _latencies(
            [(target.peer_name(d), ns) for d, ns, phase in hellos if phase == "connect"],
            watch.online,
        )
        figures.add("connect_p50", percentile(storm, 50), "ms")
        figures.add("connect_p99", percentile(storm, 99), "ms")
        await asyncio.sleep(3.0)
        figures.add("rss_per_peer", (rss_bytes(target.pid) - rss_before) / peers / 1024, "KB")

        note(
            f"{figures.prefix}: steady for {args.steady:.0f} s (heartbeats every "
            f"{HEARTBEAT_SECONDS / 3:.0f} s, ticks every {TICK_SECONDS:.0f} s)"
        )
        _, _, drops0, _, beats0 = await devices.ask("status")
        groups = {"target": hub_pid, "clients": [devices.pid], "harness": harness}
        steady, wall = await _cpu_window(groups, args.steady)
        _, live, drops1, _, beats1 = await devices.ask("status")
        figures.add("steady_cpu", steady["target"], "%")
        figures.add("heartbeat_cpu", steady["target"] - idle["target"], "%")
        figures.add("heartbeat_rate", (beats1 - beats0) / wall, "/s")
        figures.add("steady_clients_cpu", steady["clients"], "%")
        figures.add("steady_harness_cpu", steady["harness"], "%")
        if target.has_database:
            figures.add("steady_pg_cpu", steady["pg"], "%")
        figures.add("steady_live", live, "peers")

        note(
            f"{figures.prefix}: trickle for {args.trickle:.0f} s: {args.reconnect_rate:g} "
            f"reconnects/s, {args.event_rate:g} printer_status/s"
        )
        before = cpu_seconds(hub_pid)
        began = time.monotonic()
        await devices.ask("trickle", args.trickle, args.reconnect_rate, args.event_rate,
                          timeout=args.trickle + 60)  # fmt: skip
        await asyncio.sleep(1.0)  # the last presence events and replies
        figures.add("trickle_cpu", (cpu_seconds(hub_pid) - before) / (time.monotonic() - began)
                    * 100, "%")  # fmt: skip
        hellos, sent, acks = await devices.ask("results")
        starts = [(target.peer_name(d), ns) for d, ns, phase in hellos if phase == "trickle"]
        latencies, missing = _latencies(starts, watch.online)
        figures.add("reconnect_p50", percentile(latencies, 50), "ms")
        figures.add("reconnect_p99", percentile(latencies, 99), "ms")
        figures.add("reconnect_max", latencies[-1] if latencies else nan, "ms")
        figures.add("reconnects", len(starts), "peers")
        figures.add("reconnect_seen", 100 * (len(starts) - missing) / max(1, len(starts)), "%")
        acked = {key: ns for key, ns in acks}
        ack_ms = sorted((acked[k] - ns) / 1e6 for k, (_, ns, _) in sent.items() if k in acked)
        figures.add("events", len(sent), "events")
        figures.add("event_ack_p50", percentile(ack_ms, 50), "ms")
        figures.add("event_ack_p99", percentile(ack_ms, 99), "ms")
        figures.add("event_acked", 100 * len(ack_ms) / max(1, len(sent)), "%")
        if alerts_served:
            by_device = {str(d): v for d, v in watch.alerts.items()}
            alert_ms, _ = _latencies([(str(d), ns) for d, ns, _ in sent.values()], by_device)
            if alert_ms:
                figures.add("event_alert_p50", percentile(alert_ms, 50), "ms")
                figures.add("event_alert_p99", percentile(alert_ms, 99), "ms")
                figures.add("event_alert_seen", 100 * len(alert_ms) / max(1, len(sent)), "%")
            else:
                note(f"{figures.prefix}: no alert followed any printer_status event")
        _, _, drops2, failures, _ = await devices.ask("status")
        if args.samples:
            _write_samples(args.samples, target.name, starts, watch.online, sent, acked)
        figures.add("unexpected_drops", drops2, "peers")
        figures.add("connect_failures", failures, "attempts")
        if drops1 != drops0:
            note(f"{figures.prefix}: {drops1 - drops0} peers dropped during the steady window")
    finally:
        if devices is not None:
            await devices.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return figures


def _write_samples(
    path: str,
    target: str,
    starts: Sequence[tuple[str, int]],
    online: dict[str, list[int]],
    sent: dict[str, tuple[int, int, str]],
    acked: dict[str, int],
) -> None:
    """``--samples FILE``: every trickle sample as a JSON line (to see when the slow ones
    happened): {target, what, device, start_ns, ms}."""
    with open(path, "ab") as out:
        for name, start in starts:
            seen = online.get(name, [])
            i = bisect.bisect_left(seen, start)
            ms = (seen[i] - start) / 1e6 if i < len(seen) else None
            line = {"target": target, "what": "reconnect", "device": name, "start_ns": start}
            out.write(msgspec.json.encode({**line, "ms": ms}) + b"\n")
        for key, (device, start, paper) in sent.items():
            ms = (acked[key] - start) / 1e6 if key in acked else None
            line = {"target": target, "what": f"event_{paper}", "device": device, "start_ns": start}
            out.write(msgspec.json.encode({**line, "ms": ms}) + b"\n")


async def _until(
    ready: Callable[[], bool], within: float, what: str, watched: list[asyncio.Task[None]]
) -> None:
    deadline = time.monotonic() + within
    while not ready():
        for task in watched:
            if task.done():
                raise BenchError(f"waiting for {what}: {task.exception()!r}")
        if time.monotonic() > deadline:
            raise BenchError(f"no {what} within {within:.0f} s")
        await asyncio.sleep(0.05)


async def _until_async(ready: Callable[[], Any], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await ready():
        if time.monotonic() > deadline:
            raise BenchError(f"no {what} within {within:.0f} s")
        await asyncio.sleep(0.2)


COMPARED = (
    "steady_cpu",
    "rss_per_peer",
    "connect_p99",
    "reconnect_p50",
    "reconnect_p99",
    "event_ack_p99",
)


async def _main(args: argparse.Namespace) -> int:
    db = Database("d")
    results: dict[str, Figures] = {}
    try:
        note(f"seeding a hall with {args.peers} devices ({', '.join(KINDS)} in turn)")
        await db.create()
        seeded = await seed(db, args.peers)
        note(
            f"load split on {os.cpu_count()} cores: the target (measured by its pid alone); "
            f"one client process with all {args.peers} device peers; this harness (watcher, "
            "orchestration); PostgreSQL (its CPU is machine-wide)"
        )
        if args.only in ("ref", "both"):
            ref = ReferenceTarget()
            try:
                await ref.start()
                results["ref"] = await measure(ref, seeded, args)
            finally:
                await ref.stop()
        if args.only in ("hub", "both"):
            hub = HubTarget(db.dsn, seeded)
            try:
                await hub.start()
                results["hub"] = await measure(hub, seeded, args)
            finally:
                await hub.stop()
    finally:
        await db.drop()
    hub_figures = results.get("hub")
    if hub_figures is not None:
        steady, idle = hub_figures.values["steady_cpu"][0], hub_figures.values["idle_cpu"][0]
        emit_ratio(f"{hub_figures.prefix}_steady_cpu_vs_idle", steady / idle if idle else nan)
        ref_figures = results.get("ref")
        if ref_figures is not None:
            hub_figures.compare(ref_figures, COMPARED)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--peers", type=int, default=500, help="device peers")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle window")
    parser.add_argument("--steady", type=float, default=30.0, help="seconds of heartbeats")
    parser.add_argument("--trickle", type=float, default=30.0, help="seconds of reconnects")
    parser.add_argument("--reconnect-rate", type=float, default=5.0, help="reconnects/s")
    parser.add_argument("--event-rate", type=float, default=5.0, help="printer_status/s")
    parser.add_argument("--only", choices=("hub", "ref", "both"), default="both")
    parser.add_argument("--samples", metavar="FILE", help="append the trickle's samples (JSON)")
    parser.add_argument("--serve-ref", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peers < len(KINDS) or min(args.reconnect_rate, args.event_rate) <= 0:
        parser.error(f"--peers at least {len(KINDS)}; rates positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.serve_ref is not None:
        serve_reference(args.serve_ref)
        return 0
    raise_nofile_limit()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    run_main(main, (BenchError, WebSocketException))
