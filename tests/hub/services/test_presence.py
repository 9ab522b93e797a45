"""Presence and device events through a real hub, gateway and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from hub.services.events import Tx
from realtime.messages import DeviceEvent, Event, Reply
from realtime.peer import PeerConn
from tests.factories import make_device, make_hall, make_staff
from tests.realtime.peers import Peer, StartHub, gateway_url, hubs


@pytest.fixture
async def start_hub(db: asyncpg.Pool, database_url: str) -> AsyncIterator[StartHub]:
    async with hubs(database_url) as start:
        yield start


async def test_a_device_event_sent_twice_with_one_key_is_handled_once(
    db: asyncpg.Pool, start_hub: StartHub
):
    """The idempotency key makes a re-sent device event a no-op that is still acknowledged."""
    hub = await start_hub()
    assert hub.presence is not None
    place = await make_hall(db)
    _, device_token = await make_device(db, place.hall_id)
    _, staff_token = await make_staff(db, "M1", [("hall_manager", "hall", place.hall_id)])
    handled: list[str] = []

    async def on_paper_low(tx: Tx, peer: PeerConn, event: DeviceEvent) -> None:
        handled.append(event.key)
        await tx.emit(f"presence:{place.hall_id}", "paper_low", {"peer_id": peer.identity.id})

    hub.presence.device_events["paper_low"] = on_paper_low
    async with Peer.connect(gateway_url(hub)) as watcher, Peer.connect(gateway_url(hub)) as dev:
        await watcher.hello("console", staff_token, [{"topic": f"presence:{place.hall_id}"}])
        await watcher.recv()  # snapshot
        await dev.hello("ticket_machine", device_token)
        assert isinstance(online := await watcher.recv(), Event) and online.name == "peer_online"
        event = {"type": "device_event", "key": "k-1", "name": "paper_low", "data": {}}
        await dev.send(event)
        first = await dev.recv()
        await dev.send(event)
        second = await dev.recv()
        assert isinstance(first, Reply) and isinstance(second, Reply)
        assert (first.id, first.data) == ("k-1", {"accepted": True, "duplicate": False})
        assert (second.id, second.data) == ("k-1", {"accepted": False, "duplicate": True})
        announced = await watcher.recv()
        assert isinstance(announced, Event) and announced.name == "paper_low"
        await watcher.expect_quiet()
    assert handled == ["k-1"]


async def test_a_reconnected_device_is_not_marked_offline_by_its_old_connection(
    db: asyncpg.Pool, start_hub: StartHub
):
    """Closing a stale connection after the device reconnected leaves it online."""
    hub = await start_hub()
    place = await make_hall(db)
    _, token = await make_device(db, place.hall_id)
    async with Peer.connect(gateway_url(hub)) as old:
        await old.hello("ticket_machine", token)
        async with Peer.connect(gateway_url(hub)) as new:
            await new.hello("ticket_machine", token)
            await old.ws.close()
            await old.ws.wait_closed()
            await new.send({"type": "heartbeat"})
            assert hub.gateway is not None
            # The old connection's departure has been handled once only one peer is left.
            while len(hub.gateway.peers) > 1:
                await new.recv(ticks=True)
            online = await db.fetchval("SELECT online FROM peer_presence")
            assert online is True
