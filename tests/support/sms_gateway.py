"""A small SMS gateway for tests, run as a separate process, and the tests' handle on it.

    python -m tests.support.sms_gateway --port 0 --api-key KEY [--watch-stdin]

prints its bound port as the first line on stdout and serves, all behind
``Authorization: Bearer KEY`` (401 otherwise):

- ``POST /messages`` ``{"id", "to", "text"}`` with ``Idempotency-Key``: stored once per key
  (201 ``{"id": "m1"}``); the same key again answers 409 ``{"id": "m1", "duplicate": true}``
  and stores nothing. 400 for a missing key or field.
- ``GET /messages``: the stored messages, oldest first; ``GET /stats``: ``{"posts", "stored"}``
  (every POST to /messages counts, refused ones too).
- ``POST /fail?count=N&status=S``: the next N sends answer S (default 503) and store nothing.
- ``POST /stall?count=N&seconds=T``: the next N new messages are stored, then answered only
  after T seconds (a sender that times out has lost the answer, not the message).

Messages live in memory. With ``--watch-stdin`` it exits when its stdin closes (its parent
is gone). The server is the standard library's threading HTTP server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec

ROOT = Path(__file__).resolve().parents[2]


class _State:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.by_key: dict[str, str] = {}
        self.posts = 0
        self.fail_count = 0
        self.fail_status = 503
        self.stall_count = 0
        self.stall_seconds = 0.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # the tests read no access log
        return

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.server.state.api_key}":
            return True
        self._answer(401, {"error": "unauthorised"})
        return False

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        if not self._authorised():
            return
        state = self.server.state
        path = urlsplit(self.path).path
        with state.lock:
            if path == "/messages":
                answer: Any = list(state.messages)
            elif path == "/stats":
                answer = {"posts": state.posts, "stored": len(state.messages)}
            else:
                answer = None
        if answer is None:
            self._answer(404, {"error": "not found"})
        else:
            self._answer(200, answer)

    def do_POST(self) -> None:
        raw = self._read_body()
        if not self._authorised():
            return
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        state = self.server.state
        if url.path == "/fail":
            with state.lock:
                state.fail_count = int(query.get("count", "1"))
                state.fail_status = int(query.get("status", "503"))
            self._answer(200, {"ok": True})
        elif url.path == "/stall":
            with state.lock:
                state.stall_count = int(query.get("count", "1"))
                state.stall_seconds = float(query.get("seconds", "1"))
            self._answer(200, {"ok": True})
        elif url.path == "/messages":
            self._message(raw)
        else:
            self._answer(404, {"error": "not found"})

    def _message(self, raw: bytes) -> None:
        state = self.server.state
        key = self.headers.get("Idempotency-Key")
        try:
            body = json.loads(raw)
            fields = {name: str(body[name]) for name in ("id", "to", "text")}
        except (ValueError, KeyError, TypeError):
            fields = {}
        stall = 0.0
        with state.lock:
            state.posts += 1
            if state.fail_count > 0:
                state.fail_count -= 1
                status, answer = state.fail_status, {"error": "injected failure"}
            elif not key or not fields:
                status, answer = 400, {"error": "Idempotency-Key, id, to and text are required"}
            elif key in state.by_key:
                status, answer = 409, {"id": state.by_key[key], "duplicate": True}
            else:
                gateway_id = f"m{len(state.messages) + 1}"
                state.by_key[key] = gateway_id
                state.messages.append(
                    {
                        "id": gateway_id,
                        "key": key,
                        "to": fields["to"],
                        "text": fields["text"],
                        "received_at": datetime.now(UTC).isoformat(),
                    }
                )
                status, answer = 201, {"id": gateway_id}
                if state.stall_count > 0:
                    state.stall_count -= 1
                    stall = state.stall_seconds
        if stall:
            time.sleep(stall)
        with contextlib.suppress(OSError):  # the sender may have given up while we stalled
            self._answer(status, answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, state: _State) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.state = state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="test-sms-key")
    parser.add_argument("--watch-stdin", action="store_true")
    args = parser.parse_args(argv)
    server = _Server(args.port, _State(args.api_key))
    if args.watch_stdin:

        def watch() -> None:
            sys.stdin.buffer.read()  # returns at EOF: the parent closed the pipe or died
            server.shutdown()

        threading.Thread(target=watch, daemon=True).start()
    sys.stdout.write(f"{server.server_address[1]}\n")
    sys.stdout.flush()
    with server:
        server.serve_forever(poll_interval=0.1)


# ---- The tests' side --------------------------------------------------------------------


class StoredMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message the gateway accepted."""

    id: str
    key: str
    to: str
    text: str
    received_at: datetime


class GatewayStats(msgspec.Struct, frozen=True, kw_only=True):
    posts: int
    stored: int


class SmsGatewayProcess:
    """A running gateway process and calls to inspect and steer it."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, api_key: str) -> None:
        self.process = process
        self.port = port
        self.api_key = api_key
        self.url = f"http://127.0.0.1:{port}"
        self._client = httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=5.0
        )

    async def messages(self) -> list[StoredMessage]:
        response = await self._client.get("/messages")
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=list[StoredMessage])

    async def stats(self) -> GatewayStats:
        response = await self._client.get("/stats")
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=GatewayStats)

    async def fail(self, count: int, status: int = 503) -> None:
        """The next ``count`` sends answer ``status``."""
        response = await self._client.post("/fail", params={"count": count, "status": status})
        response.raise_for_status()

    async def stall(self, count: int, seconds: float) -> None:
        """The next ``count`` new messages are stored, then answered after ``seconds``."""
        response = await self._client.post("/stall", params={"count": count, "seconds": seconds})
        response.raise_for_status()

    async def stop(self) -> None:
        await self._client.aclose()
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@asynccontextmanager
async def running_gateway(api_key: str = "test-sms-key") -> AsyncIterator[SmsGatewayProcess]:
    """Start the gateway as a separate process on a free port; stop it at the end."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.sms_gateway",
        "--port",
        "0",
        "--api-key",
        api_key,
        "--watch-stdin",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 10)
        if not line.strip().isdigit():
            raise RuntimeError(f"the SMS gateway did not start (said {line!r})")
        gateway = SmsGatewayProcess(process, int(line), api_key)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    try:
        yield gateway
    finally:
        await gateway.stop()


if __name__ == "__main__":
    main()
