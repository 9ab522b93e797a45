"""The gateway through real websockets on loopback, a real hub and real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from structlog.testing import capture_logs

from hub.runtime import Hub
from realtime import outbox
from realtime.messages import Event, Snapshot, Welcome
from tests.factories import make_device, make_hall, make_staff
from tests.realtime.peers import Peer, StalledPeer, StartHub, eventually, gateway_url, hubs


@pytest.fixture
async def start_hub(db: asyncpg.Pool, database_url: str) -> AsyncIterator[StartHub]:
    async with hubs(database_url) as start:
        yield start


async def emit(hub: Hub, topic: str, n: int, name: str = "counted", pad: int = 0) -> None:
    assert hub.events is not None
    async with hub.events.transaction() as tx:
        await tx.emit(topic, name, {"n": n, "pad": "x" * pad})


def seqs(frames: list[Any]) -> list[int | None]:
    return [f.seq for f in frames]


async def test_a_new_peer_gets_a_snapshot_then_live_events(db: asyncpg.Pool, start_hub: StartHub):
    """A peer that saw nothing is resumed by snapshot and then follows the topic live."""
    hub = await start_hub()
    place = await make_hall(db)
    topic = f"hall:{place.hall_id}"
    async with Peer.connect(gateway_url(hub)) as peer:
        welcome = await peer.hello("hall_display", topics=[{"topic": topic}])
        assert isinstance(welcome, Welcome)
        assert [t.resume for t in welcome.topics] == ["snapshot"]
        snap = await peer.recv()
        assert isinstance(snap, Snapshot)
        assert snap.data["name"] == "h1 政务服务大厅"
        await emit(hub, topic, 1)
        event = await peer.recv()
        assert isinstance(event, Event)
        assert (event.epoch, event.seq, event.data["n"]) == (snap.epoch, snap.seq + 1, 1)


async def test_a_resuming_peer_receives_exactly_the_missed_events_in_order(
    db: asyncpg.Pool, start_hub: StartHub
):
    """Reconnecting with a last seq within history brings exactly the events after it."""
    hub = await start_hub()
    place = await make_hall(db)
    topic = f"hall:{place.hall_id}"
    for n in range(1, 3):
        await emit(hub, topic, n)
    async with Peer.connect(gateway_url(hub)) as peer:
        await peer.hello("hall_display", topics=[{"topic": topic}])
        snap = await peer.recv()
        assert isinstance(snap, Snapshot) and snap.seq == 2
    for n in range(3, 8):
        await emit(hub, topic, n)
    async with Peer.connect(gateway_url(hub)) as peer:
        welcome = await peer.hello(
            "hall_display", topics=[{"topic": topic, "epoch": snap.epoch, "seq": 2}]
        )
        assert isinstance(welcome, Welcome)
        assert [(t.resume, t.seq) for t in welcome.topics] == [("events", 7)]
        got = [await peer.recv() for _ in range(5)]
        assert seqs(got) == [3, 4, 5, 6, 7]
        assert [f.data["n"] for f in got] == [3, 4, 5, 6, 7]
        await peer.expect_quiet()  # no duplicates after the backlog


async def test_a_peer_resuming_from_a_pruned_seq_gets_a_snapshot(
    db: asyncpg.Pool, start_hub: StartHub
):
    """A last seq older than the kept history is answered with a snapshot."""
    hub = await start_hub()
    place = await make_hall(db)
    topic = f"hall:{place.hall_id}"
    for n in range(1, 11):
        await emit(hub, topic, n)
    async with db.acquire() as conn:
        await outbox.prune(conn, keep=3)
        head = (await outbox.heads(conn, [topic]))[topic]
    async with Peer.connect(gateway_url(hub)) as peer:
        welcome = await peer.hello(
            "hall_display", topics=[{"topic": topic, "epoch": head.epoch, "seq": 5}]
        )
        assert isinstance(welcome, Welcome)
        assert [t.resume for t in welcome.topics] == ["snapshot"]
        snap = await peer.recv()
        assert isinstance(snap, Snapshot) and snap.seq == 10


async def test_a_peer_with_another_epoch_gets_a_snapshot(db: asyncpg.Pool, start_hub: StartHub):
    """An epoch the topic no longer has (history reset) is answered with a snapshot."""
    hub = await start_hub()
    place = await make_hall(db)
    topic = f"hall:{place.hall_id}"
    await emit(hub, topic, 1)
    async with db.acquire() as conn:
        old = (await outbox.heads(conn, [topic]))[topic]
        new = await outbox.reset_topic(conn, topic)
    assert new.epoch != old.epoch
    async with Peer.connect(gateway_url(hub)) as peer:
        welcome = await peer.hello(
            "hall_display", topics=[{"topic": topic, "epoch": old.epoch, "seq": 1}]
        )
        assert isinstance(welcome, Welcome)
        assert [(t.resume, t.epoch, t.seq) for t in welcome.topics] == [("snapshot", new.epoch, 0)]


async def test_concurrent_writers_reach_subscribers_in_sequence_order(
    db: asyncpg.Pool, start_hub: StartHub
):
    """Events committed concurrently on one topic arrive gap-free and in seq order."""
    hub = await start_hub()
    place = await make_hall(db)
    topic = f"hall:{place.hall_id}"
    async with Peer.connect(gateway_url(hub)) as peer:
        await peer.hello("hall_display", topics=[{"topic": topic}])
        await peer.recv()

        async def writer(k: int) -> None:
            for i in range(20):
                await emit(hub, topic, k * 100 + i)

        await asyncio.gather(*(writer(k) for k in range(10)))
        got = [await peer.recv() for _ in range(200)]
        assert seqs(got) == list(range(1, 201))
        await peer.expect_quiet()


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (["{not json"], 4400),
        (['{"type": "launch_missiles"}'], 4400),
        (['{"type": "subscribe", "topics": []}'], 4401),
        (['{"type": "hello", "kind": "ticket_machine", "token": "forged"}'], 4401),
        (
            ['{"type": "hello", "kind": "hall_display", "topics": [{"topic": "presence:HALL"}]}'],
            4403,
        ),
        (['{"type": "hello", "kind": "hall_display", "topics": [{"topic": "nosuch:1"}]}'], 4404),
        (['{"type": "hello", "kind": "hall_display"}', "x" * 70_000], 1009),
        (['{"type": "hello", "kind": "hall_display"}', '{"type": "hello", "kind": "x"}'], 4400),
    ],
    ids=[
        "malformed",
        "unknown-type",
        "before-hello",
        "bad-token",
        "out-of-scope",
        "unknown-topic",
        "oversize",
        "hello-twice",
    ],
)
async def test_bad_input_closes_only_that_peer_with_its_code_and_one_log_line(
    db: asyncpg.Pool, start_hub: StartHub, frames: list[str], code: int
):
    """Each bad frame closes its peer with the documented code; other peers see nothing."""
    hub = await start_hub()
    place = await make_hall(db)
    _, token = await make_staff(db, "M1", [("hall_manager", "hall", place.hall_id)])
    topic = f"presence:{place.hall_id}"
    async with Peer.connect(gateway_url(hub)) as watcher:
        await watcher.hello("console", token, topics=[{"topic": topic}])
        await watcher.recv()  # snapshot
        with capture_logs() as logs:
            async with Peer.connect(gateway_url(hub)) as bad:
                for frame in frames:
                    await bad.send(frame.replace("HALL", str(place.hall_id)))
                got, reason = await bad.close_code()
        assert got == code, reason
        assert reason
        refused = [e for e in logs if e["event"] == "peer_refused"]
        assert len(refused) == 1 and refused[0]["code"] == code
        await watcher.expect_quiet()


async def test_a_peer_that_stops_reading_is_capped_and_closed_while_others_keep_pace(
    db: asyncpg.Pool, start_hub: StartHub
):
    """A stalled reader never holds more than the bound and is cut; a reading peer gets all."""
    hub = await start_hub(slow_peer_grace_seconds=1.0)
    assert hub.gateway is not None
    place = await make_hall(db)
    topic = f"hall:{place.hall_id}"
    hello = {"type": "hello", "kind": "hall_display", "topics": [{"topic": topic}]}
    stalled = await StalledPeer.connect(hub.gateway.port, hello)
    async with Peer.connect(gateway_url(hub)) as reader:
        await reader.hello("hall_display", topics=[{"topic": topic}])
        await reader.recv()
        await eventually(lambda: len(hub.gateway.peers) == 2, what="both peers registered")
        peak = 0
        latencies = []
        for n in range(200):
            await emit(hub, topic, n, pad=8000)
            sent = time.time()
            frame = await reader.recv()
            latencies.append(time.time() - sent)
            assert isinstance(frame, Event) and frame.data["n"] == n
            for p in hub.gateway.peers:
                peak = max(peak, p.ws.transport.get_write_buffer_size())
        assert peak <= 256 * 1024
        await eventually(
            lambda: len(hub.gateway.peers) == 1, within=2.0, what="the stalled peer closed"
        )
        latencies.sort()
        assert latencies[int(len(latencies) * 0.99)] < 0.5
    stalled.close()


async def test_a_slow_peer_that_catches_up_gets_resync_and_a_snapshot(
    db: asyncpg.Pool, start_hub: StartHub
):
    """A reader over the bound that drains in time gets ``resync`` and then a snapshot."""
    hub = await start_hub(slow_peer_grace_seconds=30.0)
    assert hub.gateway is not None
    place = await make_hall(db)
    topic = f"hall:{place.hall_id}"
    hello = {"type": "hello", "kind": "hall_display", "topics": [{"topic": topic}]}
    stalled = await StalledPeer.connect(hub.gateway.port, hello)
    await eventually(lambda: bool(hub.gateway.peers), what="the peer registered")
    n = 0
    while not hub.gateway._slow:
        n += 1
        await emit(hub, topic, n, pad=8000)
    await emit(hub, topic, n + 1)
    frames = await stalled.read_frames(
        lambda fs: any(f["type"] == "resync" for f in fs) and fs[-1]["type"] == "snapshot"
    )
    kinds = [f["type"] for f in frames if f["type"] != "tick"]
    assert kinds[0] == "welcome" and "resync" in kinds
    assert kinds[-1] == "snapshot" and kinds[kinds.index("resync") + 1] == "snapshot"
    assert frames[-1]["seq"] == n + 1
    stalled.close()


async def test_a_silent_device_is_closed_at_its_heartbeat_deadline_and_goes_offline(
    db: asyncpg.Pool, start_hub: StartHub
):
    """A device that sends nothing is closed with 4410 and shown offline."""
    hub = await start_hub(tick_seconds=0.2, heartbeat_timeout_seconds=0.6)
    place = await make_hall(db)
    _, device_token = await make_device(db, place.hall_id)
    _, token = await make_staff(db, "M1", [("hall_manager", "hall", place.hall_id)])
    async with Peer.connect(gateway_url(hub)) as watcher:
        await watcher.hello("console", token, topics=[{"topic": f"presence:{place.hall_id}"}])
        await watcher.recv()
        async with Peer.connect(gateway_url(hub)) as device:
            await device.hello("ticket_machine", device_token)
            online = await watcher.recv()
            assert isinstance(online, Event) and online.name == "peer_online"

            # The watcher keeps itself alive; the device stays silent.
            async def keepalive() -> None:
                while True:
                    await watcher.send({"type": "heartbeat"})
                    await asyncio.sleep(0.1)

            task = asyncio.create_task(keepalive())
            code, _ = await device.close_code()
            assert code == 4410
        while True:
            frame = await watcher.recv()
            if isinstance(frame, Event) and frame.seq is not None:
                break
        task.cancel()
        assert frame.name == "peer_offline" and frame.data["online"] is False


async def test_events_of_one_hub_reach_peers_of_another_in_order_even_when_the_bus_drops_some(
    db: asyncpg.Pool, start_hub: StartHub
):
    """Two hubs share PostgreSQL; bus messages lost on the way are filled from PostgreSQL."""
    hub_a = await start_hub()
    hub_b = await start_hub()
    assert hub_a.bus is not None
    place = await make_hall(db)
    topic = f"hall:{place.hall_id}"
    publish = hub_a.bus.publish
    count = 0

    async def lossy(message: Any) -> None:
        nonlocal count
        count += 1
        if count % 3:
            await publish(message)

    hub_a.bus.publish = lossy  # type: ignore[method-assign]
    async with Peer.connect(gateway_url(hub_b)) as peer:
        await peer.hello("hall_display", topics=[{"topic": topic}])
        await peer.recv()
        for n in range(30):
            await emit(hub_a, topic, n)
        got = [await peer.recv() for _ in range(30)]
        assert seqs(got) == list(range(1, 31))
        assert [f.data["n"] for f in got] == list(range(30))
        await peer.expect_quiet()


async def test_a_peer_that_saw_more_through_another_hub_is_caught_up_without_duplicates(
    db: asyncpg.Pool, start_hub: StartHub
):
    """Resuming on a hub that lags behind brings it, and its peers, to the peer's seq first."""
    hub_a = await start_hub()
    hub_b = await start_hub(reconcile_seconds=3600)
    assert hub_a.bus is not None
    place = await make_hall(db)
    topic = f"hall:{place.hall_id}"

    async def lost(message: Any) -> None:
        return None

    hub_a.bus.publish = lost  # type: ignore[method-assign]
    async with Peer.connect(gateway_url(hub_b)) as follower:
        await follower.hello("hall_display", topics=[{"topic": topic}])
        snap = await follower.recv()
        assert isinstance(snap, Snapshot)
        for n in range(3):
            await emit(hub_a, topic, n)
        async with Peer.connect(gateway_url(hub_b)) as mover:
            welcome = await mover.hello(
                "hall_display", topics=[{"topic": topic, "epoch": snap.epoch, "seq": 3}]
            )
            assert isinstance(welcome, Welcome)
            assert [(t.resume, t.seq) for t in welcome.topics] == [("current", 3)]
            await mover.expect_quiet()
        got = [await follower.recv() for _ in range(3)]
        assert seqs(got) == [1, 2, 3]
        await follower.expect_quiet()


async def test_subscribing_again_with_no_position_brings_a_fresh_snapshot(
    db: asyncpg.Pool, start_hub: StartHub
):
    """A peer that saw a gap re-subscribes with a null position and gets the current state."""
    hub = await start_hub()
    place = await make_hall(db)
    topic = f"hall:{place.hall_id}"
    async with Peer.connect(gateway_url(hub)) as peer:
        await peer.hello("hall_display", topics=[{"topic": topic}])
        await peer.recv()
        await emit(hub, topic, 1)
        assert (await peer.recv()).seq == 1
        await peer.send({"type": "subscribe", "topics": [{"topic": topic}]})
        subscribed = await peer.recv()
        assert type(subscribed).__name__ == "Subscribed"
        assert [(t.resume, t.seq) for t in subscribed.topics] == [("snapshot", 1)]
        snap = await peer.recv()
        assert isinstance(snap, Snapshot) and snap.seq == 1
        await emit(hub, topic, 2)
        assert (await peer.recv()).seq == 2
        await peer.expect_quiet()
