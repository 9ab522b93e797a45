"""The feed: one process's ordered delivery of topic events to its local subscribers (H3).

Events reach the feed from this process's own commits and, through the bus, from other
processes. For every topic with local subscribers the feed remembers the epoch and the last
seq it delivered, and keeps the last frames in memory. An event is delivered only when it is
the next one; a duplicate is dropped; a gap is filled from PostgreSQL (every seq below a
committed one is committed, see realtime/outbox.py), so a lost or reordered bus message
never makes a peer skip or repeat an event. A periodic reconcile compares the topics' heads
in PostgreSQL with what was delivered: this catches events whose publisher died between
commit and publish, and everything missed while the bus was down.

Per topic, everything that changes its state (events out of order, subscriptions, catch-ups,
resyncs) runs through one queue, so a resuming subscriber is added at exactly the seq its
backlog ends with. The common case, the next event with nothing queued, is delivered inline
without a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import asyncpg
import structlog

from realtime import outbox
from realtime.bus import Bus, BusMessage
from realtime.errors import UnknownTopic
from realtime.messages import Position, Snapshot, TopicState, encode
from realtime.metrics import BUS_HEALTHY, BUS_LAG, GAP_FILLS, MESSAGES_DELIVERED
from realtime.outbox import StoredEvent, TopicHead
from realtime.resume import plan_resume
from realtime.topics import TopicName, parse_topic

log = structlog.get_logger("realtime.feed")

SnapshotProvider = Callable[[asyncpg.Connection, TopicName], Awaitable[Any]]


class Subscriber(Protocol):
    """What the feed needs of a peer connection (realtime.gateway.PeerConn)."""

    def deliver(self, topic: str, frame: bytes) -> None:
        """Queue one event frame; must not block (the peer applies its own bound)."""

    def deliver_snapshot(self, topic: str, frame: bytes) -> None:
        """Queue a snapshot frame; it also ends a resync of ``topic``."""


class _Topic:
    __slots__ = (
        "epoch",
        "kept_from",
        "last",
        "loaded",
        "name",
        "ops",
        "ring",
        "snapshot",
        "subscribers",
        "worker",
    )

    def __init__(self, name: str, ring_size: int) -> None:
        self.name = name
        self.loaded = False
        self.epoch = 0
        self.last = 0
        self.kept_from = 1
        self.ring: deque[tuple[int, bytes]] = deque(maxlen=ring_size)
        self.subscribers: set[Subscriber] = set()
        self.ops: deque[Callable[[], Awaitable[None]]] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.snapshot: tuple[int, int, bytes] | None = None  # (epoch, seq, frame)

    def next_is(self, message: BusMessage) -> bool:
        return self.loaded and message.epoch == self.epoch and message.seq == self.last + 1

    def accept(self, seq: int, frame: bytes) -> None:
        self.last = seq
        self.ring.append((seq, frame))

    def ring_from(self) -> int:
        return self.ring[0][0] if self.ring else self.last + 1


class Feed:
    """Ordered, gap-free delivery of topic events to this process's subscribers.

    Args:
        pool: the hub's pool (history, heads, snapshots).
        bus: cross-process fan-out; the feed installs its handlers on it.
        snapshots: snapshot provider per topic kind.
        ring_size: event frames kept in memory per topic for resumes.
        reconcile_seconds: period of the comparison with PostgreSQL's heads.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: Bus,
        snapshots: dict[str, SnapshotProvider],
        *,
        ring_size: int = 256,
        reconcile_seconds: float = 2.0,
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._snapshots = snapshots
        self._ring_size = ring_size
        self._reconcile_seconds = reconcile_seconds
        self._topics: dict[str, _Topic] = {}
        self._reconciler: asyncio.Task[None] | None = None
        self._reconcile_now = asyncio.Event()
        bus.set_handlers(self._on_bus_message, self._on_bus_health)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self._bus.start()
        BUS_HEALTHY.set(1 if self._bus.healthy else 0)
        self._reconciler = asyncio.create_task(self._reconcile_loop(), name="feed-reconcile")

    async def stop(self) -> None:
        tasks = [t.worker for t in self._topics.values() if t.worker is not None]
        if self._reconciler is not None:
            tasks.append(self._reconciler)
            self._reconciler = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._bus.stop()

    # --- publishing ------------------------------------------------------------------------

    async def publish(self, events: Iterable[StoredEvent]) -> None:
        """Deliver committed events locally and send them to the other processes.
        Call only after the transaction that appended them has committed."""
        now = time.time()
        for event in events:
            message = BusMessage(
                self._bus.origin, event.topic, event.epoch, event.seq, event.frame, now
            )
            self._ingest(message)
            await self._bus.publish(message)

    async def publish_volatile(self, topic: str, frame: bytes) -> None:
        """Send a frame that is not kept (seq None) to the topic's current subscribers."""
        message = BusMessage(self._bus.origin, topic, 0, None, frame, time.time())
        self._ingest(message)
        await self._bus.publish(message)

    def _on_bus_message(self, message: BusMessage) -> None:
        if message.sent:
            BUS_LAG.observe(max(0.0, time.time() - message.sent))
        self._ingest(message)

    def _on_bus_health(self, healthy: bool) -> None:
        BUS_HEALTHY.set(1 if healthy else 0)
        if healthy:
            # Whatever crossed the bus while it was down is in PostgreSQL: fetch it now.
            self._reconcile_now.set()

    def _ingest(self, message: BusMessage) -> None:
        topic = self._topics.get(message.topic)
        # A topic whose first subscriber is being resumed (worker running) takes the event
        # into its queue: it is applied right after that resume.
        if topic is None or not (topic.subscribers or topic.ops or topic.worker):
            return
        if message.seq is None:
            self._fanout(topic, message.frame)
            return
        if topic.worker is None and topic.next_is(message):
            topic.accept(message.seq, message.frame)
            self._fanout(topic, message.frame)
            return
        self._enqueue(topic, lambda: self._apply(topic, message))

    # --- subscriptions ---------------------------------------------------------------------

    async def subscribe(self, subscriber: Subscriber, position: Position) -> TopicState:
        """Add ``subscriber`` to a topic, first bringing it up to date from ``position``.

        The backlog (events or a snapshot) is delivered to the subscriber before any later
        event of the topic. Returns how the subscriber was resumed.

        Raises:
            UnknownTopic: no snapshot provider for the topic's kind.
        """
        kind = parse_topic(position.topic).kind
        if kind not in self._snapshots:
            raise UnknownTopic(f"no topic kind {kind!r}")
        topic = self._topics.get(position.topic)
        if topic is None:
            topic = self._topics[position.topic] = _Topic(position.topic, self._ring_size)
        future: asyncio.Future[TopicState] = asyncio.get_running_loop().create_future()

        async def op() -> None:
            try:
                future.set_result(await self._resume(topic, subscriber, position))
            except BaseException as exc:
                if not future.done():
                    future.set_exception(exc)
                raise

        self._enqueue(topic, op)
        return await future

    def unsubscribe(self, subscriber: Subscriber, name: str) -> None:
        topic = self._topics.get(name)
        if topic is None:
            return
        topic.subscribers.discard(subscriber)
        self._forget_if_idle(topic)

    def resync(self, subscriber: Subscriber, name: str) -> None:
        """Send ``subscriber`` a fresh snapshot of ``name`` in the topic's order (a slow peer
        whose events were skipped)."""
        topic = self._topics.get(name)
        if topic is None or subscriber not in topic.subscribers:
            return

        async def op() -> None:
            subscriber.deliver_snapshot(name, await self._snapshot_frame(topic))

        self._enqueue(topic, op)

    def subscriber_count(self, name: str) -> int:
        topic = self._topics.get(name)
        return len(topic.subscribers) if topic else 0

    # --- per-topic work (runs in the topic's queue) -----------------------------------------

    def _enqueue(self, topic: _Topic, op: Callable[[], Awaitable[None]]) -> None:
        topic.ops.append(op)
        if topic.worker is None:
            topic.worker = asyncio.create_task(self._run(topic), name=f"feed:{topic.name}")

    async def _run(self, topic: _Topic) -> None:
        try:
            while topic.ops:
                op = topic.ops.popleft()
                try:
                    await op()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("feed_op_failed", topic=topic.name)
        finally:
            topic.worker = None
            self._forget_if_idle(topic)

    def _forget_if_idle(self, topic: _Topic) -> None:
        if not topic.subscribers and not topic.ops and topic.worker is None:
            self._topics.pop(topic.name, None)

    async def _load(self, topic: _Topic) -> None:
        async with self._pool.acquire() as conn:
            head = (await outbox.heads(conn, [topic.name])).get(topic.name)
            if head is None:
                head = await outbox.ensure_topic(conn, topic.name)
            tail = await outbox.history(
                conn, topic.name, max(head.kept_from - 1, head.seq - self._ring_size), head.seq
            )
        self._reset(topic, head)
        for seq, frame in tail:
            topic.ring.append((seq, frame))
        topic.loaded = True

    def _reset(self, topic: _Topic, head: TopicHead) -> None:
        topic.epoch, topic.last, topic.kept_from = head.epoch, head.seq, head.kept_from
        topic.ring.clear()
        topic.snapshot = None

    async def _apply(self, topic: _Topic, message: BusMessage) -> None:
        assert message.seq is not None
        if not topic.loaded:
            return  # the subscribe that loads the topic starts from PostgreSQL's head
        if message.epoch == topic.epoch:
            if message.seq <= topic.last:
                return  # duplicate (already delivered, or filled from history)
            if message.seq == topic.last + 1:
                topic.accept(message.seq, message.frame)
                self._fanout(topic, message.frame)
                return
        await self._catch_up(topic)

    async def _catch_up(self, topic: _Topic) -> None:
        """Bring the topic to PostgreSQL's head, delivering what is missing in order."""
        async with self._pool.acquire() as conn:
            head = (await outbox.heads(conn, [topic.name])).get(topic.name)
            if head is None:
                return
            if head.epoch == topic.epoch and head.seq <= topic.last:
                return
            missing: list[tuple[int, bytes]] = []
            if head.epoch == topic.epoch:
                missing = await outbox.history(conn, topic.name, topic.last, head.seq)
        GAP_FILLS.inc()
        if head.epoch == topic.epoch and self._advance(topic, head.seq, missing):
            topic.kept_from = head.kept_from
            return
        # A new epoch, or history pruned under us: everyone gets the current state.
        log.info("feed_topic_reset", topic=topic.name, epoch=head.epoch, seq=head.seq)
        self._reset(topic, head)
        frame = await self._snapshot_frame(topic)
        for subscriber in list(topic.subscribers):
            subscriber.deliver_snapshot(topic.name, frame)

    def _advance(self, topic: _Topic, upto: int, missing: list[tuple[int, bytes]]) -> bool:
        """Deliver the frames of ``missing`` that follow ``topic.last`` without a gap.
        Returns whether the topic reached ``upto``."""
        for seq, frame in missing:
            if seq != topic.last + 1:
                break
            topic.accept(seq, frame)
            self._fanout(topic, frame)
        return topic.last == upto

    async def _resume(
        self, topic: _Topic, subscriber: Subscriber, position: Position
    ) -> TopicState:
        if not topic.loaded:
            await self._load(topic)
        elif position.epoch == topic.epoch and (position.seq or 0) > topic.last:
            # The peer saw, through another process, more than this one has delivered.
            # (Another epoch means a snapshot, which itself reads PostgreSQL's head.)
            await self._catch_up(topic)
        plan = plan_resume(
            epoch=topic.epoch,
            last=topic.last,
            kept_from=topic.kept_from,
            peer_epoch=position.epoch,
            peer_seq=position.seq,
        )
        mode = plan.mode
        if mode == "events":
            frames = await self._backlog(topic, plan.after)
            if frames is None:
                mode = "snapshot"
            else:
                for frame in frames:
                    subscriber.deliver(topic.name, frame)
        if mode == "snapshot":
            subscriber.deliver_snapshot(topic.name, await self._snapshot_frame(topic))
        topic.subscribers.add(subscriber)
        return TopicState(topic=topic.name, epoch=topic.epoch, seq=topic.last, resume=mode)

    async def _backlog(self, topic: _Topic, after: int) -> list[bytes] | None:
        """Frames with seq in (after, last], from memory when kept there; None if pruned."""
        if after + 1 >= topic.ring_from():
            return [frame for seq, frame in topic.ring if seq > after]
        async with self._pool.acquire() as conn:
            rows = await outbox.history(conn, topic.name, after, topic.last)
        if len(rows) != topic.last - after:
            return None
        return [frame for _seq, frame in rows]

    async def _snapshot_frame(self, topic: _Topic) -> bytes:
        """The topic's full state at exactly ``topic.last`` (catching the topic up first if
        PostgreSQL is already further), encoded once and reused until the next event."""
        cached = topic.snapshot
        if cached is not None and cached[0] == topic.epoch and cached[1] == topic.last:
            return cached[2]
        name = parse_topic(topic.name)
        provider = self._snapshots[name.kind]
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            head = (await outbox.heads(conn, [topic.name]))[topic.name]
            data = await provider(conn, name)
            missing: list[tuple[int, bytes]] = []
            if head.epoch == topic.epoch and head.seq > topic.last:
                missing = await outbox.history(conn, topic.name, topic.last, head.seq)
        frame = encode(Snapshot(topic=topic.name, epoch=head.epoch, seq=head.seq, data=data))
        # Subscribers already present reach the snapshot's seq through events; if they
        # cannot (a new epoch, history pruned in between), they get this snapshot too.
        if not (head.epoch == topic.epoch and self._advance(topic, head.seq, missing)):
            self._reset(topic, head)
            for subscriber in list(topic.subscribers):
                subscriber.deliver_snapshot(topic.name, frame)
        topic.snapshot = (head.epoch, head.seq, frame)
        return frame

    def _fanout(self, topic: _Topic, frame: bytes) -> None:
        for subscriber in topic.subscribers:
            subscriber.deliver(topic.name, frame)
        MESSAGES_DELIVERED.inc(len(topic.subscribers))

    # --- reconcile -------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Compare every followed topic with PostgreSQL's head; catch up those behind."""
        loaded = [t for t in self._topics.values() if t.loaded]
        if not loaded:
            return
        async with self._pool.acquire() as conn:
            found = await outbox.heads(conn, [t.name for t in loaded])
        for topic in loaded:
            head = found.get(topic.name)
            if head is not None and (head.epoch != topic.epoch or head.seq > topic.last):
                self._enqueue(topic, lambda t=topic: self._catch_up(t))  # type: ignore[misc]

    async def _reconcile_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reconcile_now.wait(), self._reconcile_seconds)
            self._reconcile_now.clear()
            try:
                await self.reconcile()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("feed_reconcile_failed", error=str(exc))
