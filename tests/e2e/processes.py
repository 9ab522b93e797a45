"""`hallhub serve` as real subprocesses for end-to-end tests, and what the tests read of them.

Each process gets its own free ports, a data folder and one stderr file per start (JSON log
lines). A process runs in a session of its own, so that the worker-pool children it spawns can
be ended with it at teardown even when the test SIGKILLed the hub process alone (a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec

from realtime.client import PeerClient, Update
from realtime.messages import Event, Snapshot, Welcome

HALLHUB = Path(sys.prefix) / "bin" / "hallhub"

# Fast periods so that failures and recoveries show within seconds (see the brief in
# tests/e2e/test_processes.py).
FAST: dict[str, str] = {
    "HALLHUB_TICK_SECONDS": "0.5",
    "HALLHUB_RECONCILE_SECONDS": "0.5",
    "HALLHUB_PROCESS_LEASE_SECONDS": "2",
    "HALLHUB_BUS_HEARTBEAT_SECONDS": "0.2",
    "HALLHUB_BUS_DEAF_SECONDS": "1",
    "HALLHUB_WORKER_PROCESSES": "1",
    "HALLHUB_DB_POOL_MIN": "1",
    "HALLHUB_LOG_JSON": "true",
}


def free_port() -> int:
    """A port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(check: Callable[[], Awaitable[bool]], within: float = 10.0, what: str = "") -> None:
    """Wait until the async ``check()`` holds, or fail after ``within`` seconds; for states in
    PostgreSQL or of a process that no frame announces."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


class HubProcess:
    """One ``hallhub serve`` subprocess; :meth:`start` again after it ended reuses its ports.

    Args:
        name: for file names and messages.
        env: the HALLHUB_* settings (database, Redis, prefix); ports and data folder are added.
        workdir: where the data folder and the stderr files go.
    """

    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.http_port = free_port()
        self.gateway_port = free_port()
        self.workdir = workdir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HALLHUB_")},
            **FAST,
            **env,
            "HALLHUB_HTTP_PORT": str(self.http_port),
            "HALLHUB_GATEWAY_PORT": str(self.gateway_port),
            "HALLHUB_DATA_DIR": str(workdir / name),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.sessions: list[subprocess.Popen[bytes]] = []  # every start, for teardown
        self.starts = 0
        self.log_path = workdir / f"{name}.log"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, within: float = 30.0) -> HubProcess:
        """Start the process and wait until ``GET /health`` answers and it logged its id."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self.log_path = self.workdir / f"{self.name}.{self.starts}.log"
        # Blocking calls, but short ones (a file open, a fork-exec), in a test.
        with open(self.log_path, "wb") as stderr:  # noqa: ASYNC230
            self.proc = subprocess.Popen(  # noqa: ASYNC220
                [str(HALLHUB), "serve"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        self.sessions.append(self.proc)
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as http:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    health = await http.get(f"{self.http_url}/health")
                    if health.status_code == 200 and self.logs("hub_serving"):
                        return self
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} not healthy in {within} s:\n{self.tail()}")
                await asyncio.sleep(0.05)

    @property
    def process_id(self) -> str:
        """The hub's id (``hub_process.id``, ``job_state.process_id``) of the current start."""
        serving = self.logs("hub_serving")
        assert serving, f"{self.name} has not logged hub_serving"
        return str(serving[-1]["process"])

    def logs(self, event: str | None = None) -> list[dict[str, Any]]:
        """The JSON log lines of the current start, those of ``event`` only if given."""
        lines = []
        with contextlib.suppress(FileNotFoundError):
            for raw in self.log_path.read_bytes().splitlines():
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue  # a stdlib logging line (name message), or a partial write
                if isinstance(line, dict) and (event is None or line.get("event") == event):
                    lines.append(line)
        return lines

    def tail(self, n: int = 30) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    async def ready(self) -> tuple[int, dict[str, Any]]:
        """``GET /ready``: the status code and the body."""
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as http:
            response = await http.get(f"{self.http_url}/ready")
        return response.status_code, response.json()

    def signal(self, signum: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    async def exited(self, within: float = 15.0) -> int:
        """Wait for the process to end; its return code (negative: the signal)."""
        proc = self.proc
        assert proc is not None
        deadline = time.monotonic() + within
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} still running after {within} s")
            await asyncio.sleep(0.05)
        return proc.returncode

    def session_members(self) -> list[int]:
        """Pids of the living (not zombie) processes in the current start's session: the hub
        and the children it spawned (worker pool, resource tracker). Reads /proc (Linux)."""
        assert self.proc is not None
        members = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                # "pid (comm) state ppid pgrp session …"; comm may hold spaces and parens.
                fields = stat.read_text().rpartition(")")[2].split()
                if fields[0] not in ("Z", "X") and int(fields[3]) == self.proc.pid:
                    members.append(int(stat.parent.name))
        return members

    async def kill(self) -> None:
        """SIGKILL the hub process alone, as a crash would, and wait for it to end."""
        self.signal(signal.SIGKILL)
        await self.exited()

    def end_sessions(self) -> None:
        """Teardown: SIGKILL whatever is left of every start's session (the hub, and children
        that would outlive it) and reap the hub."""
        for proc in self.sessions:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the session leader's pid is the group id
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


class Processes:
    """Hub processes sharing one database and Redis prefix; every one ended on exit."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.started: list[HubProcess] = []

    async def start(self, name: str, **env: str) -> HubProcess:
        hub = HubProcess(name, {**self.env, **env}, self.workdir)
        self.started.append(hub)
        return await hub.start()

    async def start_all(self, *names: str, **env: str) -> list[HubProcess]:
        """Start several at once (start-up is mostly waiting on imports and the database)."""
        hubs = [HubProcess(name, {**self.env, **env}, self.workdir) for name in names]
        self.started.extend(hubs)
        return list(await asyncio.gather(*(h.start() for h in hubs)))

    def close(self) -> None:
        for hub in self.started:
            hub.end_sessions()


@contextlib.asynccontextmanager
async def processes(env: dict[str, str], workdir: Path) -> AsyncIterator[Processes]:
    procs = Processes(env, workdir)
    try:
        yield procs
    finally:
        procs.close()


class TopicLog:
    """What one peer received on one topic, frame by frame (ticks aside), with the checks the
    tests repeat: seqs in order without gaps or repeats, each snapshot a new base."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.frames: list[Event | Snapshot] = []

    def add(self, frame: Any) -> None:
        if isinstance(frame, Event | Snapshot) and frame.topic == self.topic:
            self.frames.append(frame)

    @property
    def events(self) -> list[Event]:
        """Events that have a seq (volatile ones like ``peers_seen`` left out)."""
        return [f for f in self.frames if isinstance(f, Event) and f.seq is not None]

    @property
    def position(self) -> int | None:
        """The seq reached by the last event or snapshot."""
        for frame in reversed(self.frames):
            if frame.seq is not None:
                return frame.seq
        return None

    def seen(self) -> set[int]:
        """Every seq the peer saw or that a snapshot covers."""
        covered: set[int] = set()
        for frame in self.frames:
            if isinstance(frame, Snapshot):
                covered.update(range(1, frame.seq + 1))
            elif frame.seq is not None:
                covered.add(frame.seq)
        return covered

    def assert_gap_free(self) -> None:
        """Every event is the one after the previous event or snapshot of the same epoch."""
        base: tuple[int, int] | None = None
        for frame in self.frames:
            if isinstance(frame, Snapshot):
                base = (frame.epoch, frame.seq)
                continue
            if frame.seq is None:
                continue
            assert base is not None, f"event {frame.seq} before any snapshot or position"
            assert (frame.epoch, frame.seq) == (base[0], base[1] + 1), (
                f"after {base} came {(frame.epoch, frame.seq)}: "
                f"{[(type(f).__name__, f.seq) for f in self.frames]}"
            )
            base = (frame.epoch, frame.seq)


class RecordingClient(PeerClient):
    """A :class:`PeerClient` that also records every event and snapshot frame the hub sent,
    before the client's own dedupe and gap rules, so a test sees what the hub did."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wire: dict[str, TopicLog] = {t: TopicLog(t) for t in self.tracker.topics}
        self.applied: list[Update] = []
        self.welcomes: list[Welcome] = []

    async def _on_welcome(self, welcome: Welcome) -> None:
        self.welcomes.append(welcome)
        await super()._on_welcome(welcome)

    async def _on_frame(self, frame: Any) -> None:
        if isinstance(frame, Event | Snapshot) and frame.topic in self.wire:
            self.wire[frame.topic].add(frame)
        await super()._on_frame(frame)

    def drain(self) -> list[Update]:
        """Move what the client put on :attr:`updates` to :attr:`applied`; returns it all."""
        while not self.updates.empty():
            self.applied.append(self.updates.get_nowait())
        return self.applied


def event_names(log: TopicLog) -> list[tuple[int | None, str, str]]:
    """(seq, event name, peer id) of each presence event: compact assertion material."""
    return [
        (e.seq, e.name, str(msgspec.convert(e.data, dict[str, Any])["peer_id"])) for e in log.events
    ]
