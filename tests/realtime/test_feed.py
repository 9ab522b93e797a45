"""The feed on real PostgreSQL, with subscribers that record what they are given."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from realtime import outbox
from realtime.bus import MemoryBus
from realtime.feed import Feed
from realtime.messages import Event, Position, Snapshot, decode_outbound
from realtime.topics import TopicName
from tests.realtime.peers import eventually


class Recorder:
    def __init__(self) -> None:
        self.frames: list[Event | Snapshot] = []
        self.arrived = asyncio.Event()

    def deliver(self, topic: str, frame: bytes) -> None:
        decoded = decode_outbound(frame)
        assert isinstance(decoded, Event | Snapshot)
        self.frames.append(decoded)
        self.arrived.set()

    deliver_snapshot = deliver

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.frames) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def gate() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
async def feed(db: asyncpg.Pool, gate: asyncio.Event) -> AsyncIterator[Feed]:
    async def slow_snapshot(conn: asyncpg.Connection, name: TopicName) -> dict[str, str]:
        await gate.wait()
        return {"state": "as of the snapshot"}

    feed = Feed(db, MemoryBus("test"), {"t": slow_snapshot}, reconcile_seconds=3600)
    await feed.start()
    yield feed
    await feed.stop()


async def _commit(db: asyncpg.Pool, feed: Feed, n: int) -> outbox.StoredEvent:
    async with db.acquire() as conn, conn.transaction():
        event = await outbox.append(conn, "t:1", "counted", {"n": n}, ts=1.0)
    await feed.publish([event])
    return event


async def test_an_event_committed_while_the_first_subscriber_resumes_is_not_lost(
    db: asyncpg.Pool, feed: Feed, gate: asyncio.Event
):
    """The first subscriber of a topic gets the snapshot and then every later event, even
    one published while its snapshot was being read (no reconcile runs here)."""
    subscriber = Recorder()
    resuming = asyncio.create_task(feed.subscribe(subscriber, Position("t:1")))
    await eventually(lambda: "t:1" in feed._topics and feed._topics["t:1"].loaded)
    event = await _commit(db, feed, 1)  # the resume is now held inside its snapshot
    gate.set()
    state = await resuming
    assert (state.resume, state.seq) == ("snapshot", 0)
    await subscriber.wait_for(2)
    assert [(type(f).__name__, f.seq) for f in subscriber.frames] == [
        ("Snapshot", 0),
        ("Event", event.seq),
    ]
