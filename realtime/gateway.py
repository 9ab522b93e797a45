"""The websocket gateway that every peer (device, screen, console, citizen page) connects to.

It runs the ``websockets`` asyncio server on the API's event loop, on its own port: we
measured that an ASGI websocket route spends about 3× the CPU per delivered message of the
library's own frame writing (docs/architecture.md). Each event frame is encoded once (in the
outbox) and written to each subscriber by the library's sans-I/O protocol, after a check of
that peer's write buffer: ``broadcast()`` has no backpressure, we do.

Connection life: ``hello`` (authenticate, authorize every topic) → ``welcome`` followed, per
topic, by the missed events or a snapshot → subscribe/unsubscribe/commands/device events →
close. One timer for all peers sends ``tick`` frames and enforces heartbeat deadlines; a
second, fast one watches only the peers that fell behind. Close codes: realtime/errors.py.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import msgspec
import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from realtime.errors import (
    CLOSE_RESTART,
    BadFrame,
    HeartbeatTimeout,
    RealtimeError,
    TooSlow,
    Unauthenticated,
)
from realtime.feed import Feed
from realtime.messages import (
    Command,
    DeviceEvent,
    ErrorBody,
    Heartbeat,
    Hello,
    Reply,
    Resync,
    Subscribe,
    Subscribed,
    Tick,
    TopicState,
    Unsubscribe,
    Welcome,
    decode_inbound,
    encode,
)
from realtime.metrics import PEERS_CLOSED, PEERS_CONNECTED, RESYNCS
from realtime.peer import PeerConn

log = structlog.get_logger("realtime.gateway")


class Identity(Protocol):
    """Who a peer is, as the hub's access service sees it (hub.domain.access.Principal)."""

    @property
    def kind(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def hall_id(self) -> int | None: ...


class Authorizer(Protocol):
    """The hub's access service: authenticate a hello, authorize a topic."""

    async def authenticate(self, token: str | None, kind: str) -> Any:
        """Return an :class:`Identity`; raise Unauthenticated."""

    async def authorize(self, principal: Any, topic: str) -> None:
        """Raise Forbidden or UnknownTopic."""


class PeerHooks(Protocol):
    """Called for every peer that passed hello (presence, audit)."""

    async def connected(self, peer: PeerConn) -> None: ...
    async def disconnected(self, peer: PeerConn, reason: str) -> None: ...
    async def device_event(self, peer: PeerConn, event: DeviceEvent) -> Any: ...


CommandHandler = Callable[["PeerConn", Command], Awaitable[Any]]


class GatewaySettings(msgspec.Struct, frozen=True):
    host: str = "127.0.0.1"
    port: int = 0
    tick_seconds: float = 5.0
    heartbeat_timeout_seconds: float = 15.0
    hello_timeout_seconds: float = 10.0
    peer_buffer_bytes: int = 256 * 1024
    slow_peer_grace_seconds: float = 1.0
    max_frame_bytes: int = 64 * 1024
    # Kernel send buffer per peer socket. Bounded so that the kernel's autotuning (up to
    # megabytes per socket) does not hide a stalled reader from the write-buffer check.
    socket_send_buffer: int = 64 * 1024
    listen_backlog: int = 4096
    # Origins a browser page may connect from; None: any origin whose port is http_port.
    allowed_origins: tuple[str, ...] | None = None
    http_port: int = 0


class Gateway:
    """The websocket server and its peers.

    Args:
        settings: ports, periods and bounds.
        feed: ordered topic delivery.
        access: authentication and authorization (hub.services.access.AccessService).
        hooks: presence and device events (hub.services.presence.PresenceService).
        commands: handlers of peer commands by name.
        clock: monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        feed: Feed,
        access: Authorizer,
        hooks: PeerHooks,
        commands: dict[str, CommandHandler] | None = None,
    ) -> None:
        self.settings = settings
        self.feed = feed
        self.access = access
        self.hooks = hooks
        self.commands = commands or {}
        self.peers: set[PeerConn] = set()
        self._slow: set[PeerConn] = set()
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        self._server = await serve(
            self._handle,
            s.host,
            s.port,
            compression=None,
            max_size=s.max_frame_bytes,
            ping_interval=None,  # application ticks and heartbeats instead (DESIGN.md)
            process_request=self._check_origin,
            close_timeout=2,
            # After a restart every peer of the process reconnects at once; asyncio's default
            # backlog (100) makes the kernel drop the rest, each drop a 1-3-7 s SYN retry.
            backlog=s.listen_backlog,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks = [
            asyncio.create_task(self._tick_loop(), name="gateway-tick"),
            asyncio.create_task(self._slow_loop(), name="gateway-slow"),
        ]
        log.info("gateway_listening", host=s.host, port=self.port)

    async def stop(self) -> None:
        """Close every peer with 1012 (service restart) so they reconnect elsewhere/later."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._server is None:
            return
        self._server.close(close_connections=False)
        closing = [p.ws.close(CLOSE_RESTART, "restarting") for p in list(self.peers)]
        if closing:
            await asyncio.wait([asyncio.ensure_future(c) for c in closing], timeout=3)
        # A peer that does not read never completes the closing handshake, and a transport's
        # close() waits to flush its buffer first: cut what is left.
        for peer in list(self.peers):
            peer.ws.transport.abort()
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    def mark_slow(self, peer: PeerConn) -> None:
        self._slow.add(peer)

    # --- HTTP upgrade ----------------------------------------------------------------------

    def _check_origin(self, connection: ServerConnection, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        if origin is None:
            return None  # devices and agents send no Origin
        allowed = self.settings.allowed_origins
        if allowed is not None:
            ok = origin in allowed
        else:
            ok = origin.rsplit(":", 1)[-1] == str(self.settings.http_port)
        if ok:
            return None
        log.warning("gateway_origin_refused", origin=origin[:100])
        return connection.respond(403, "origin not allowed\n")

    # --- one connection --------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        peer: PeerConn | None = None
        reason = "closed"
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.settings.socket_send_buffer)
        try:
            hello, identity = await self._hello(ws)
            peer = PeerConn(ws, identity, self)
            self.peers.add(peer)
            PEERS_CONNECTED.labels(identity.kind).inc()
            await self.hooks.connected(peer)
            await self._welcome(peer, hello)
            await self._serve(peer)
        except RealtimeError as exc:
            reason = exc.code
            _refused(peer, exc.close_code, exc.reason)
            await ws.close(exc.close_code, exc.reason[:120])
        except ConnectionClosed as exc:
            sent = exc.sent
            if sent is not None and sent.code == 1009:
                reason = "frame_too_big"
                _refused(peer, 1009, reason)
        finally:
            if peer is not None:
                await self._drop(peer, reason)

    async def _hello(self, ws: ServerConnection) -> tuple[Hello, Any]:
        """Read and check the first frame: authenticated, every topic authorized."""
        try:
            raw = await asyncio.wait_for(ws.recv(decode=False), self.settings.hello_timeout_seconds)
        except TimeoutError:
            raise Unauthenticated("no hello") from None
        message = _decode(raw)
        if not isinstance(message, Hello):
            raise Unauthenticated("hello expected first")
        identity = await self.access.authenticate(message.token, message.kind)
        for position in message.topics:
            await self.access.authorize(identity, position.topic)
        return message, identity

    async def _welcome(self, peer: PeerConn, message: Hello) -> None:
        states = await self._subscribe(peer, message.topics)
        welcome = Welcome(
            peer=peer.info,
            tick_seconds=self.settings.tick_seconds,
            heartbeat_seconds=self.settings.heartbeat_timeout_seconds,
            server_time=time.time(),
            topics=states,
        )
        peer.release(encode(welcome))
        peer.log.info("peer_welcomed", topics=len(states))

    async def _subscribe(self, peer: PeerConn, positions: Iterable[Any]) -> list[TopicState]:
        states = []
        for position in positions:
            if position.topic in peer.topics:
                # Subscribing again means "bring me up to date from here" (a peer that saw a
                # gap, or wants a snapshot: a null position): resume anew.
                self.feed.unsubscribe(peer, position.topic)
                peer.stale.discard(position.topic)
            states.append(await self.feed.subscribe(peer, position))
            peer.topics.add(position.topic)
        return states

    async def _serve(self, peer: PeerConn) -> None:
        ws = peer.ws
        while True:
            raw = await ws.recv(decode=False)
            peer.last_rx = time.monotonic()
            message = _decode(raw)
            if isinstance(message, Heartbeat):
                continue
            if isinstance(message, Subscribe):
                for position in message.topics:
                    await self.access.authorize(peer.identity, position.topic)
                peer.hold()
                states: list[TopicState] = []
                try:
                    states = await self._subscribe(peer, message.topics)
                finally:
                    peer.release(encode(Subscribed(topics=states)))
            elif isinstance(message, Unsubscribe):
                for name in message.topics:
                    peer.topics.discard(name)
                    peer.stale.discard(name)
                    self.feed.unsubscribe(peer, name)
            elif isinstance(message, Command):
                peer.send_control(encode(await self._command(peer, message)))
            elif isinstance(message, DeviceEvent):
                data = await self.hooks.device_event(peer, message)
                peer.send_control(encode(Reply(id=message.key, ok=True, data=data)))
            elif isinstance(message, Hello):
                raise BadFrame("hello sent twice")
            # Replies to hub commands are routed by the device issue (print_ticket …).

    async def _command(self, peer: PeerConn, command: Command) -> Reply:
        handler = self.commands.get(command.name)
        if handler is None:
            error = ErrorBody("unknown_command", f"no command {command.name!r}")
            return Reply(id=command.id, ok=False, error=error)
        try:
            return Reply(id=command.id, ok=True, data=await handler(peer, command))
        except RealtimeError as exc:
            return Reply(id=command.id, ok=False, error=ErrorBody(exc.code, exc.reason))

    async def _drop(self, peer: PeerConn, reason: str) -> None:
        self._slow.discard(peer)
        for name in peer.topics:
            self.feed.unsubscribe(peer, name)
        try:
            await self.hooks.disconnected(peer, reason)
        except Exception:
            peer.log.exception("peer_disconnect_hook_failed")
        # Last: a peer leaves the gateway's set once its departure is recorded.
        self.peers.discard(peer)
        PEERS_CONNECTED.labels(peer.identity.kind).dec()
        peer.log.info("peer_left", reason=reason)

    # --- timers ----------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        period = self.settings.tick_seconds
        deadline = self.settings.heartbeat_timeout_seconds
        while True:
            await asyncio.sleep(period)
            frame = encode(Tick(ts=time.time()))
            now = time.monotonic()
            for peer in list(self.peers):
                if now - peer.last_rx > deadline:
                    self._close(peer, HeartbeatTimeout("no frame within the heartbeat deadline"))
                    continue
                peer.send_control(frame)

    async def _slow_loop(self) -> None:
        grace = self.settings.slow_peer_grace_seconds
        low_water = self.settings.peer_buffer_bytes // 4
        while True:
            await asyncio.sleep(min(0.25, grace / 4))
            now = time.monotonic()
            for peer in list(self._slow):
                buffered = peer.ws.transport.get_write_buffer_size()
                if buffered <= low_water:
                    self._slow.discard(peer)
                    peer.slow_since = 0.0
                    RESYNCS.inc()
                    topics = sorted(peer.stale)
                    peer.log.info("peer_resync", topics=len(topics))
                    peer.send_control(encode(Resync(topics=topics, reason="too_slow")))
                    for name in topics:
                        self.feed.resync(peer, name)
                elif now - peer.slow_since > grace:
                    self._slow.discard(peer)
                    self._close(peer, TooSlow(f"{buffered} bytes unread"))

    def _close(self, peer: PeerConn, error: RealtimeError) -> None:
        _refused(peer, error.close_code, error.reason)
        ws = peer.ws
        if isinstance(error, TooSlow):
            # The close frame would sit behind the unread data: cut the connection.
            ws.transport.abort()
            return
        asyncio.get_running_loop().create_task(ws.close(error.close_code, error.reason))


def _refused(peer: PeerConn | None, code: int, reason: str) -> None:
    """The one log line and count of a peer the hub closes (DESIGN.md: close codes)."""
    (peer.log if peer is not None else log).info("peer_refused", code=code, reason=reason)
    PEERS_CLOSED.labels(str(code)).inc()


def _decode(raw: bytes | str) -> Any:
    try:
        return decode_inbound(raw)
    except msgspec.DecodeError as exc:
        raise BadFrame(str(exc)[:120]) from None
