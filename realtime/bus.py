"""The bus carries committed events between hub processes. It is not the source of truth:
PostgreSQL owns sequence and history, so a lost bus message is a gap that the receiver fills
from PostgreSQL, never a skipped or repeated event (H3, DESIGN.md).

One interface, two backends: :class:`MemoryBus` (one process, or several hubs in one test
process sharing a :class:`MemoryBroker`) and :class:`realtime.redis_bus.RedisBus`.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable

import msgspec


class BusMessage(msgspec.Struct, array_like=True, frozen=True):
    """One committed event (or a volatile one when ``seq`` is None) as the bus carries it.
    ``frame`` is the already encoded event frame, sent to peers unchanged."""

    origin: str
    topic: str
    epoch: int
    seq: int | None
    frame: bytes
    sent: float = 0.0  # unix time of publishing, for the bus-lag metric


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(BusMessage)


def pack(message: BusMessage) -> bytes:
    return _encoder.encode(message)


def unpack(payload: bytes) -> BusMessage:
    """Raises msgspec.DecodeError for a payload that is not a BusMessage."""
    return _decoder.decode(payload)


OnMessage = Callable[[BusMessage], None]
OnHealth = Callable[[bool], None]


class Bus(abc.ABC):
    """Cross-process fan-out of committed events.

    ``on_message`` is called on the event loop, in the order the bus received messages,
    for messages of *other* processes (a process delivers its own events directly).
    ``on_health`` is called once when the bus becomes unhealthy (degraded fan-out) and once
    when it recovers; after a recovery the receiver reconciles with PostgreSQL.
    """

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self._on_message: OnMessage = lambda _m: None
        self._on_health: OnHealth = lambda _h: None
        self.healthy = True

    def set_handlers(self, on_message: OnMessage, on_health: OnHealth) -> None:
        self._on_message = on_message
        self._on_health = on_health

    def _set_health(self, healthy: bool) -> None:
        if healthy != self.healthy:
            self.healthy = healthy
            self._on_health(healthy)

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and subscribe. Does not raise if the backend is down: starts degraded."""

    @abc.abstractmethod
    async def publish(self, message: BusMessage) -> None:
        """Send one message to the other processes. Never raises for a backend failure:
        the bus marks itself unhealthy and the receivers fill the gap from PostgreSQL."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect; idempotent."""


class MemoryBroker:
    """Connects the MemoryBuses of one Python process (tests running two hubs in one loop)."""

    def __init__(self) -> None:
        self.buses: list[MemoryBus] = []


class MemoryBus(Bus):
    """In-process bus: the single-process default (H4)."""

    def __init__(self, origin: str, broker: MemoryBroker | None = None) -> None:
        super().__init__(origin)
        self._broker = broker or MemoryBroker()

    async def start(self) -> None:
        self._broker.buses.append(self)

    async def publish(self, message: BusMessage) -> None:
        loop = asyncio.get_running_loop()
        for bus in self._broker.buses:
            if bus is not self:
                loop.call_soon(bus._on_message, message)

    async def stop(self) -> None:
        if self in self._broker.buses:
            self._broker.buses.remove(self)
