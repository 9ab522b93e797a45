"""A hall with devices behind the real app and gateway: a kiosk (the host) with its printer, ID
reader and code reader, a ticket machine without a printer, an evaluator, an ID reader and a
scanner at window 1; a hall manager, a supervisor of the city and the window staff of the queue
world (tests/hub/queue/world.py). Fake agents are PeerClients that speak the real protocol."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from hub.app import create_app
from hub.config import load_settings
from hub.runtime import Hub
from realtime.client import PeerClient
from realtime.messages import Event, Snapshot
from tests.factories import make_device, make_staff
from tests.hub.api.conftest import Client
from tests.hub.queue.world import Clock, QueueWorld, build_world, clock
from tests.realtime.peers import gateway_url

__all__ = ["DeviceWorld", "clock", "dw"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class Dev:
    id: int
    token: str
    kind: str

    @property
    def topic(self) -> str:
        return f"device:{self.id}"


@dataclass
class DeviceWorld:
    client: Client
    hub: Hub
    w: QueueWorld
    db: asyncpg.Pool
    manager: str
    supervisor: str
    devices: dict[str, Dev]

    @property
    def hall_id(self) -> int:
        return self.w.hall_id

    @property
    def url(self) -> str:
        return gateway_url(self.hub)

    def agent(self, name: str, *topics: str) -> PeerClient:
        """A fake agent's peer of device ``name``, subscribed to its own topic (and more)."""
        dev = self.devices[name]
        return PeerClient(self.url, dev.kind, token=dev.token, topics=[dev.topic, *topics])

    def console(self, token: str, *topics: str) -> PeerClient:
        """A staff page's peer (device page, staff console)."""
        return PeerClient(self.url, "console", token=token, topics=list(topics))


async def _device(db: asyncpg.Pool, hall_id: int, kind: str, name: str, **bind: int) -> Dev:
    device_id, token = await make_device(db, hall_id, kind, name)
    for column, value in bind.items():
        await db.execute(f"UPDATE device SET {column} = $2 WHERE id = $1", device_id, value)
    return Dev(device_id, token, kind)


def _app(database_url: str, blob_dir: Path) -> Litestar:
    """The app of tests/hub/api/conftest.py, its blobs in the test's own folder."""
    settings = load_settings(
        environ={},
        database_url=database_url,
        http_port=0,
        gateway_port=0,
        db_pool_min=1,
        db_pool_max=4,
        worker_prestart=False,
        public_rate_per_minute=10_000,
        blob_dir=str(blob_dir),
    )
    return create_app(settings)


@pytest.fixture
async def dw(
    db: asyncpg.Pool, database_url: str, clock: Clock, tmp_path: Path
) -> AsyncIterator[DeviceWorld]:
    app = _app(database_url, tmp_path / "blobs")
    async with AsyncTestClient(app) as client:
        hub: Hub = app.state.hub
        hub.clock = clock
        w = await build_world(db, hub, clock)
        city = await db.fetchval("SELECT region_id FROM hall WHERE id = $1", w.hall_id)
        _, manager = await make_staff(db, "M1", [("hall_manager", "hall", w.hall_id)], "经理")
        _, supervisor = await make_staff(db, "S1", [("supervisor", "region", city)], "监察")
        kiosk = await _device(db, w.hall_id, "kiosk", "1号自助机")
        devices = {
            "kiosk": kiosk,
            "printer": await _device(db, w.hall_id, "printer", "1号打印机", host_id=kiosk.id),
            "reader": await _device(db, w.hall_id, "id_reader", "1号读卡器", host_id=kiosk.id),
            "scanner_code": await _device(
                db, w.hall_id, "code_reader", "1号扫码器", host_id=kiosk.id
            ),
            "machine": await _device(db, w.hall_id, "ticket_machine", "2号取号机"),
            "pad": await _device(db, w.hall_id, "evaluator", "1窗评价器", window_id=w.windows[0]),
            "window_reader": await _device(
                db, w.hall_id, "id_reader", "1窗读卡器", window_id=w.windows[0]
            ),
            "camera": await _device(db, w.hall_id, "scanner", "1窗高拍仪", window_id=w.windows[0]),
        }
        yield DeviceWorld(client, hub, w, db, manager, supervisor, devices)


async def next_update(
    peer: PeerClient,
    name: str | None = None,
    *,
    topic: str | None = None,
    snapshot: bool = False,
    where: Callable[[Any], bool] | None = None,
    timeout: float = 5.0,
) -> Any:
    """The next event (or snapshot) of ``peer`` with this name and topic whose data satisfies
    ``where``; others are skipped."""
    kind = Snapshot if snapshot else Event
    async with asyncio.timeout(timeout):
        while True:
            update = await peer.updates.get()
            if not isinstance(update, kind):
                continue
            if topic is not None and update.topic != topic:
                continue
            if name is not None and isinstance(update, Event) and update.name != name:
                continue
            if where is not None and not where(update.data):
                continue
            return update


async def until(check: Callable[[], Awaitable[_T]], within: float = 5.0) -> _T:
    """Poll ``check`` (e.g. a query) until it returns something true; that value."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.01)


async def accepted(db: asyncpg.Pool, dev: Dev, key: str) -> None:
    """Wait until the hub has taken device event ``key`` of ``dev`` (its key is recorded in
    the transaction of its effects)."""

    async def seen() -> bool:
        return bool(
            await db.fetchval(
                "SELECT true FROM peer_event_key WHERE peer_id = $1 AND key = $2",
                f"device:{dev.id}",
                key,
            )
        )

    await until(seen)


async def live(*peers: PeerClient) -> None:
    for peer in peers:
        await asyncio.wait_for(peer.wait_live(), 5)


PRINTER_OK = {"online": True, "paper": "ok", "cover_open": False, "error": False}
