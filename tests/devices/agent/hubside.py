"""The hub side of the agent tests: a started hub with recording device event handlers, and
the agent run against it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import msgspec

from devices.agent.config import AgentConfig, parse_config
from devices.agent.main import run_agent
from hub.domain.access import DeviceKind
from hub.runtime import Hub
from hub.services import audit
from hub.services.auth import register_device
from hub.services.events import Tx
from realtime.messages import DeviceEvent
from realtime.peer import PeerConn
from tests.devices.agent.helpers import eventually, fast_backoff, wait_for

EVENT_NAMES = (
    "device_info",
    "device_state",
    "printer_status",
    "print_done",
    "print_failed",
    "card_read",
    "card_read_failed",
    "code_scanned",
    "rating",
    "rating_unrated",
)


class Got(msgspec.Struct, frozen=True):
    peer: str
    key: str
    name: str
    data: dict[str, Any]


class HubSide:
    """Device event handlers that record what reached the hub, in order."""

    def __init__(self) -> None:
        self.events: list[Got] = []
        self._queue: asyncio.Queue[Got] = asyncio.Queue()

    def install(self, hub: Hub) -> None:
        assert hub.presence is not None
        for name in EVENT_NAMES:
            hub.presence.device_events[name] = self._handle

    async def _handle(self, tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        got = Got(peer.identity.id, event.key, event.name, dict(event.data))
        self.events.append(got)
        self._queue.put_nowait(got)

    async def next(self, name: str | None = None) -> Got:
        """The next event (of ``name``) to reach the hub."""
        async with asyncio.timeout(10):
            while True:
                got = await self._queue.get()
                if name is None or got.name == name:
                    return got

    def of(self, name: str) -> list[Got]:
        return [e for e in self.events if e.name == name]


class Hall(msgspec.Struct, frozen=True):
    hall_id: int
    window_ids: list[int]


async def register(db: asyncpg.Pool, hall_id: int, kind: str, name: str) -> tuple[int, str]:
    actor = audit.Actor.system("test")
    created = await register_device(db, actor, hall_id, cast(DeviceKind, kind), name)
    return created.device.id, created.token


def agent_config(url: str, *devices: dict[str, Any], buffer: int = 1000) -> AgentConfig:
    return parse_config({"hub": url, "buffer": buffer, "device": list(devices)})


async def subscribed(hub: Hub, name: str) -> None:
    """Wait until some peer of the hub is subscribed to ``name`` (its events reach it)."""
    assert hub.gateway is not None
    gateway = hub.gateway
    await eventually(lambda: any(name in p.topics for p in gateway.peers), what=name)


async def emit(hub: Hub, name: str, event: str, data: dict[str, Any]) -> None:
    assert hub.events is not None
    async with hub.events.transaction() as tx:
        await tx.emit(name, event, data)


@contextlib.asynccontextmanager
async def agent(config: AgentConfig, **options: Any) -> AsyncIterator[asyncio.Task[int]]:
    """The agent running ``config`` for the block; stopped (and awaited) after it."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(config, stop=stop, backoff=lambda: fast_backoff(0.02, 0.2), **options)
    )
    try:
        yield task
    finally:
        stop.set()
        await wait_for(task)
