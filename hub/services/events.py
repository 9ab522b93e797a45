"""Transactions that change state and announce it: durable first, announced after commit.

    async with hub.events.transaction() as tx:
        await tx.conn.execute("UPDATE …")
        await tx.emit(topic("presence", hall_id), "peer_online", peer)
    # committed here; the events now go to local subscribers and the bus

Events are appended to the outbox in the same transaction as the change they describe
(realtime/outbox.py), so a crash after commit loses no event (the feed's reconcile finds
it) and a rollback announces nothing.

A VOLATILE event (:meth:`Tx.emit_volatile`: personal data such as an ID card read) is never
stored: it is sent to the topic's current subscribers after commit, and only if the
transaction commits; a subscriber that is not connected then never gets it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from realtime import outbox
from realtime.feed import Feed
from realtime.outbox import StoredEvent, volatile_frame


class Tx:
    """A transaction in progress: its connection and the events it will announce."""

    __slots__ = ("_clock", "conn", "events", "volatile")

    def __init__(self, conn: asyncpg.Connection, clock: Callable[[], float]) -> None:
        self.conn = conn
        self.events: list[StoredEvent] = []
        self.volatile: list[tuple[str, bytes]] = []
        self._clock = clock

    async def emit(self, topic: str, name: str, data: Any) -> StoredEvent:
        event = await outbox.append(self.conn, topic, name, data, ts=self._clock())
        self.events.append(event)
        return event

    def emit_volatile(self, topic: str, name: str, data: Any) -> None:
        """An event that is never stored nor replayed (seq None), sent after commit to the
        topic's subscribers of that moment (module docstring)."""
        self.volatile.append((topic, volatile_frame(topic, 0, name, data, ts=self._clock())))

    async def claim(self, topic: str) -> outbox.Slot:
        """Take ``topic``'s next number now (locking the topic until commit); the event
        follows with :meth:`emit_claimed`. Between the two, no other writer of the topic
        can commit, so what the transaction reads then is what the event should say."""
        return await outbox.claim(self.conn, topic)

    async def emit_claimed(self, slot: outbox.Slot, name: str, data: Any) -> StoredEvent:
        event = await outbox.write(self.conn, slot, name, data, ts=self._clock())
        self.events.append(event)
        return event


class EventWriter:
    """Opens transactions whose events are published once they commit."""

    def __init__(
        self, pool: asyncpg.Pool, feed: Feed, clock: Callable[[], float] = time.time
    ) -> None:
        self._pool = pool
        self._feed = feed
        self._clock = clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._pool.acquire() as conn:
            tx = Tx(conn, self._clock)
            async with conn.transaction():
                yield tx
            if tx.events:
                await self._feed.publish(tx.events)
            for topic, frame in tx.volatile:
                await self._feed.publish_volatile(topic, frame)
