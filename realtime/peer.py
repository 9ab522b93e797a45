"""One connected peer of the gateway: identity, subscriptions, and the bounded write path."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import structlog
from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from realtime.messages import PeerInfo

if TYPE_CHECKING:
    from realtime.gateway import Gateway

log = structlog.get_logger("realtime.gateway")


class PeerConn:
    """One connected peer: identity, subscriptions, and the bounded write path.

    ``deliver`` is the hot path of fan-out: it checks the connection is open and that its
    write buffer is under the bound *before* writing (DESIGN.md: slow peers). A peer over the
    bound stops receiving events (its topics become stale), gets ``resync`` and snapshots once
    its buffer drains, or is closed with 4408 if it stays over for the grace period.
    """

    __slots__ = (
        "_pending",
        "_pending_bytes",
        "gateway",
        "identity",
        "last_rx",
        "log",
        "slow_since",
        "stale",
        "topics",
        "ws",
    )

    def __init__(self, ws: ServerConnection, identity: Any, gateway: Gateway) -> None:
        self.ws = ws
        self.gateway = gateway
        self.identity = identity
        self.topics: set[str] = set()
        self.stale: set[str] = set()
        self.last_rx = time.monotonic()
        self.slow_since = 0.0
        # Frames queued while the peer is between hello and welcome (or subscribe and
        # subscribed), written in order right after those.
        self._pending: list[bytes] | None = []
        self._pending_bytes = 0
        self.log = log.bind(peer=identity.id, kind=identity.kind, hall=identity.hall_id)

    @property
    def info(self) -> PeerInfo:
        ident = self.identity
        return PeerInfo(id=ident.id, kind=ident.kind, hall_id=ident.hall_id, label=ident.label)

    # Fan-out path -------------------------------------------------------------------------

    def deliver(self, topic: str, frame: bytes) -> None:
        if self.stale and topic in self.stale:
            return
        self._write(frame)

    def deliver_snapshot(self, topic: str, frame: bytes) -> None:
        self.stale.discard(topic)
        self._write(frame, force=True)

    def send_control(self, frame: bytes) -> None:
        self._write(frame)

    def _write(self, frame: bytes, force: bool = False) -> None:
        pending = self._pending
        if pending is not None:
            pending.append(frame)
            self._pending_bytes += len(frame)
            return
        ws = self.ws
        if ws.protocol.state is not State.OPEN:
            return
        transport = ws.transport
        limit = self.gateway.settings.peer_buffer_bytes
        if not force and transport.get_write_buffer_size() + len(frame) > limit:
            if not self.slow_since:
                self.slow_since = time.monotonic()
                self.stale.update(self.topics)
                self.gateway.mark_slow(self)
            return
        ws.protocol.send_text(frame)
        ws.send_data()

    def hold(self) -> None:
        """Queue frames until :meth:`release` (between a request and its answer)."""
        if self._pending is None:
            self._pending = []

    def release(self, first: bytes) -> None:
        """Write ``first`` (welcome/subscribed), then everything queued meanwhile."""
        queued, self._pending, self._pending_bytes = self._pending or [], None, 0
        self._write(first, force=True)
        for frame in queued:
            self._write(frame)
