"""The hub as a fan-out target: ``hallhub serve`` on a fresh database, hall notices as the
trigger (bench/README.md, "The hub target").

The harness's clients subscribe to ``hall:<id>`` with a public hello; ``publish()`` posts
notices through the HTTP API (session of a seeded admin), so each delivered frame has gone
the hub's whole path: HTTP, permission check, one transaction (notice row, audit row, outbox
event), commit, feed, MemoryBus, gateway. The event frame carries ``ts`` (seconds, taken at
``emit`` inside the transaction), which the clients use as the publish time; the part of the
path before ``emit`` (request parsing, session lookup, the notice insert) is therefore not in
the latency figures, and is reported apart as ``post_to_emit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import msgspec
from _common import note, percentile
from _target import BenchError, Target

from hub.logs import configure_logging
from hub.services.auth import token_hash
from storage.migrate import migrate

HOST = "127.0.0.1"
ADMIN_DSN = os.environ.get("HALLHUB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parent.parent
# Far beyond any run: no ``tick`` frame is sent, so none is counted as a delivery (a tick
# carries ``ts``) and none adds to the CPU figure. Heartbeat deadlines are checked on ticks,
# so idle clients are not closed either.
TICK_SECONDS = 3600.0
START_WITHIN = 60.0
STOP_WITHIN = 30.0


class _Stored(msgspec.Struct):
    ts: float
    data: dict[str, Any]


class HubTarget(Target):
    """``hallhub serve`` in a child process, on its own database and data directory.

    Raises:
        BenchError: the hub did not start (its log is in the note).
    """

    name = "hub"
    await_welcome = True

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="hallhub-bench-")
        self._database = f"hallhub_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self._dsn = ADMIN_DSN.rpartition("/")[0] + "/" + self._database
        self._created = False
        self._posted: dict[int, int] = {}  # notice id → time_ns just before its POST
        self._round_trips: list[float] = []
        self._details: dict[str, tuple[float, str]] = {}
        try:
            self.hall_id, self._token = asyncio.run(self._create_database())
            self.http_port, self.gateway_port = _free_port(), _free_port()
            self.url = f"ws://{HOST}:{self.gateway_port}/"
            hall = f"hall:{self.hall_id}"
            self.hello = f'{{"type":"hello","kind":"display","topics":[{{"topic":"{hall}"}}]}}'
            self.resume_hello = (
                f'{{"type":"hello","kind":"display",'
                f'"topics":[{{"topic":"{hall}","epoch":$epoch,"seq":$seq}}]}}'
            )
            self._spawn()
        except BaseException:
            self.stop()
            raise

    # --- set-up ---------------------------------------------------------------------------

    async def _create_database(self) -> tuple[int, str]:
        """A fresh UTF8 database, migrated, with one hall and an admin session."""
        admin = await asyncpg.connect(ADMIN_DSN, timeout=10)
        try:
            await admin.execute(
                f"CREATE DATABASE {self._database} TEMPLATE template0 ENCODING 'UTF8' "
                "LC_COLLATE 'C' LC_CTYPE 'C'"
            )
            self._created = True
        finally:
            await admin.close()
        conn = await asyncpg.connect(self._dsn, timeout=10)
        try:
            # The migrator logs each file: on stderr and only past warnings, as stdout is
            # for figure lines.
            configure_logging("warning")
            await migrate(conn)
            region = await conn.fetchval(
                "INSERT INTO region (level, code, name, path) "
                "VALUES ('province', 'bench', '基准省', '') RETURNING id"
            )
            await conn.execute("UPDATE region SET path = '/' || id || '/' WHERE id = $1", region)
            hall = await conn.fetchval(
                "INSERT INTO hall (region_id, code, name) VALUES ($1, 'bench', '基准政务服务大厅') "
                "RETURNING id",
                region,
            )
            staff = await conn.fetchval(
                "INSERT INTO staff (staff_no, name, password_hash, region_id) "
                "VALUES ('bench-admin', '基准管理员', 'x', $1) RETURNING id",
                region,
            )
            await conn.execute(
                "INSERT INTO role_grant (staff_id, role, scope_kind, scope_id) "
                "VALUES ($1, 'admin', 'region', $2)",
                staff,
                region,
            )
            token = secrets.token_urlsafe(32)
            await conn.execute(
                "INSERT INTO staff_session (token_hash, staff_id, expires_at) "
                "VALUES ($1, $2, now() + interval '1 day')",
                token_hash(token),
                staff,
            )
        finally:
            await conn.close()
        return int(hall), token

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HALLHUB_")}
        # No HALLHUB_REDIS_URL: the MemoryBus. Peer buffer, pool sizes, workers: defaults.
        env.update(
            HALLHUB_DATABASE_URL=self._dsn,
            HALLHUB_HOST=HOST,
            HALLHUB_HTTP_PORT=str(self.http_port),
            HALLHUB_GATEWAY_PORT=str(self.gateway_port),
            HALLHUB_LOG_LEVEL="warning",
            HALLHUB_TICK_SECONDS=str(TICK_SECONDS),
            HALLHUB_DATA_DIR=self._dir,
        )
        return env

    def _spawn(self) -> int:
        """Start ``hallhub serve``; return the time its gateway accepts connections, once
        its HTTP API answers too."""
        script = Path(sys.executable).with_name("hallhub")
        command = [str(script), "serve"] if script.exists() else [sys.executable, "-m", "hub.cli"]
        if not script.exists():
            command.append("serve")
        self._log = open(os.path.join(self._dir, "hub.log"), "ab")  # noqa: SIM115
        self._process = subprocess.Popen(
            command,
            env=self._environment(),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self._process.pid
        listening_ns = self._wait_listening(self.gateway_port, "gateway")
        self._wait_listening(self.http_port, "HTTP API")
        return listening_ns

    def _wait_listening(self, port: int, what: str) -> int:
        # Uvicorn binds the HTTP port after the lifespan has started the hub, the gateway
        # included: the gateway is up first. A probe connection every 2 ms.
        deadline = time.monotonic() + START_WITHIN
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise BenchError(f"the hub exited ({self._process.returncode}): {self._tail()}")
            try:
                with socket.create_connection((HOST, port), timeout=1.0):
                    return time.time_ns()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"the hub's {what} not listening within {START_WITHIN:.0f} s")
            time.sleep(0.002)

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            text = Path(self._dir, "hub.log").read_text("utf-8", "replace")
            return " | ".join(text.strip().splitlines()[-5:])
        return "(no log)"

    # --- the harness's calls ----------------------------------------------------------------

    def publish(self, messages: int, rate: float, size: int) -> None:
        """POST ``messages`` notices at ``rate`` per second; the text is padded so that the
        event frame is about ``size`` bytes, as the reference's frames are."""
        text = "x" * max(1, size - _frame_overhead(self.hall_id, messages))
        path = f"/api/halls/{self.hall_id}/notices"
        headers = {"Authorization": f"Bearer {self._token}"}
        with httpx.Client(base_url=f"http://{HOST}:{self.http_port}", timeout=30.0) as http:
            start = time.monotonic()
            for index in range(messages):
                delay = start + index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                posted = time.time_ns()
                response = http.post(path, json={"text": text}, headers=headers)
                if response.status_code != 201:
                    raise BenchError(f"POST {path}: {response.status_code} {response.text[:200]}")
                self._round_trips.append((time.time_ns() - posted) / 1e6)
                self._posted[int(response.json()["id"])] = posted

    def restart(self) -> int:
        """SIGTERM (peers are closed with 1012, the hub stops), then start it again."""
        asked = time.time_ns()
        self._terminate()
        ended = time.time_ns()
        listening = self._spawn()
        self._details["restart_stop"] = ((ended - asked) / 1e9, "s")
        self._details["restart_start"] = ((listening - ended) / 1e9, "s")
        return listening

    def details(self) -> dict[str, tuple[float, str]]:
        """``post_rtt_p50``: HTTP round trip of a POST; ``post_to_emit_p50/p99``: from the
        POST to the event's ``ts`` (the part of the path the latency figures leave out);
        ``restart_stop``/``restart_start``: SIGTERM to exit, exit to listening again."""
        figures: dict[str, tuple[float, str]] = {}
        if self._posted:
            stamps = asyncio.run(self._event_times())
            heads = sorted(
                stamps[notice] * 1e3 - posted / 1e6
                for notice, posted in self._posted.items()
                if notice in stamps
            )
            figures["post_rtt_p50"] = (percentile(sorted(self._round_trips), 50), "ms")
            figures["post_to_emit_p50"] = (percentile(heads, 50), "ms")
            figures["post_to_emit_p99"] = (percentile(heads, 99), "ms")
        figures.update(self._details)
        return figures

    async def _event_times(self) -> dict[int, float]:
        conn = await asyncpg.connect(self._dsn, timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT frame FROM topic_event WHERE topic = $1 AND type = 'notice_posted'",
                f"hall:{self.hall_id}",
            )
        finally:
            await conn.close()
        decode = msgspec.json.Decoder(_Stored).decode
        stored = [decode(bytes(r["frame"])) for r in rows]
        return {int(s.data["id"]): s.ts for s in stored}

    def _terminate(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_WITHIN)
            except subprocess.TimeoutExpired:
                note(f"hub: no exit within {STOP_WITHIN:.0f} s of SIGTERM; killed")
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """End the hub, drop its database and its data directory."""
        self._terminate()
        if self._created:
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                asyncio.run(self._drop_database())
        shutil.rmtree(self._dir, ignore_errors=True)

    async def _drop_database(self) -> None:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=10)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {self._database} WITH (FORCE)")
        finally:
            await admin.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _frame_overhead(hall_id: int, messages: int) -> int:
    """Bytes of a ``notice_posted`` frame around its text, at the largest epoch and id."""
    sample = {
        "type": "event",
        "topic": f"hall:{hall_id}",
        "epoch": 2**52 - 1,
        "seq": messages,
        "ts": time.time(),
        "name": "notice_posted",
        "data": {
            "id": messages,
            "text": "",
            "created_at": "2026-01-01T00:00:00.000000Z",
            "expires_at": None,
        },
    }
    return len(msgspec.json.encode(sample))
