"""Test helpers: hubs on the test database, and raw peers that show every frame."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import websockets
from websockets.asyncio.client import ClientConnection

from hub.config import Settings
from hub.runtime import Hub
from realtime.bus import MemoryBroker
from realtime.messages import Outbound, decode_outbound

StartHub = Callable[..., Awaitable[Hub]]


@contextlib.asynccontextmanager
async def hubs(database_url: str) -> AsyncIterator[StartHub]:
    """Start hubs on the test database (gateway on a free port, fast ticks); stop them all."""
    started: list[Hub] = []
    broker = MemoryBroker()

    async def start(**overrides: Any) -> Hub:
        values: dict[str, Any] = {
            "database_url": database_url,
            "gateway_port": 0,
            "http_port": 0,
            "tick_seconds": 0.5,
            "reconcile_seconds": 0.5,
            "db_pool_min": 1,
            "worker_prestart": False,
        }
        values.update(overrides)
        hub = Hub(Settings(**values), broker=broker)
        await hub.start()
        started.append(hub)
        return hub

    try:
        yield start
    finally:
        for hub in reversed(started):
            await hub.stop()


def gateway_url(hub: Hub) -> str:
    assert hub.gateway is not None
    return f"ws://127.0.0.1:{hub.gateway.port}/"


async def eventually(predicate: Callable[[], bool], within: float = 5.0, what: str = "") -> None:
    """Wait until ``predicate()`` holds, or fail after ``within`` seconds.

    For states of the hub that no event announces (a peer registered, a buffer over its
    bound); everything a peer can observe is awaited on its frames instead."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.005)


class Peer:
    """A websocket peer that decodes what it receives and skips ticks unless asked."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, url: str, **kwargs: Any) -> AsyncIterator[Peer]:
        async with websockets.connect(url, compression=None, **kwargs) as ws:
            yield cls(ws)

    async def send(self, frame: dict[str, Any] | bytes | str) -> None:
        await self.ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def hello(
        self,
        kind: str,
        token: str | None = None,
        topics: list[dict[str, Any]] | None = None,
    ) -> Outbound:
        await self.send({"type": "hello", "kind": kind, "token": token, "topics": topics or []})
        return await self.recv()

    async def recv(self, *, ticks: bool = False, timeout: float = 5.0) -> Outbound:
        while True:
            raw = await asyncio.wait_for(self.ws.recv(decode=False), timeout)
            frame = decode_outbound(raw)
            if ticks or type(frame).__name__ != "Tick":
                return frame

    async def expect_quiet(self, ticks: int = 1) -> None:
        """Nothing but ticks arrives during ``ticks`` tick periods."""
        for _ in range(ticks):
            frame = await self.recv(ticks=True)
            assert type(frame).__name__ == "Tick", frame

    async def close_code(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Wait for the hub to close the connection; its close code and reason."""
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        rcvd = self.ws.protocol.close_rcvd
        return (rcvd.code, rcvd.reason) if rcvd else (None, "")


class StalledPeer:
    """A peer that does the websocket handshake and hello by hand, then reads only when told:
    a screen whose network or process stopped reading."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    async def connect(cls, port: int, hello: dict[str, Any]) -> StalledPeer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += await loop.sock_recv(sock, 1)
        assert response.startswith(b"HTTP/1.1 101"), response
        await loop.sock_sendall(sock, _masked_text(json.dumps(hello).encode()))
        return cls(sock)

    async def read_frames(
        self, until: Callable[[list[Any]], bool], timeout: float = 5
    ) -> list[Any]:
        """Read (unmasked, server) frames until ``until(frames)`` holds."""
        loop = asyncio.get_running_loop()
        buf = b""
        frames: list[Any] = []
        async with asyncio.timeout(timeout):
            while not until(frames):
                chunk = await loop.sock_recv(self.sock, 65536)
                if not chunk:
                    break
                buf += chunk
                while True:
                    parsed = _parse_frame(buf)
                    if parsed is None:
                        break
                    payload, buf = parsed
                    frames.append(msgspec.json.decode(payload))
        return frames

    def close(self) -> None:
        self.sock.close()


def _masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    header = bytes([0x81])
    n = len(payload)
    if n < 126:
        header += bytes([0x80 | n])
    else:
        header += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _parse_frame(buf: bytes) -> tuple[bytes, bytes] | None:
    if len(buf) < 2:
        return None
    n = buf[1] & 0x7F
    offset = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, offset = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, offset = int.from_bytes(buf[2:10], "big"), 10
    if len(buf) < offset + n:
        return None
    return buf[offset : offset + n], buf[offset + n :]
