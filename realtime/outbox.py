"""The outbox: events appended inside the writer's transaction, numbered there (H3).

PostgreSQL owns each topic's epoch, gap-free sequence and history. ``append`` takes the next
number with one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` on the topic row; the row lock
it takes serialises writers of one topic until they commit, so:

* commit order and sequence order agree (an id sequence would not: ids are taken before
  commits), and
* once seq n is committed, every seq below n of the same epoch is committed too; a reader
  that sees n can always fill the gap below it from ``topic_event``.

The frame is encoded here, once, and the same bytes go to every subscriber and to replay.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec

from realtime.messages import Event, encode

_EPOCH_BITS = 52  # fits a JavaScript number exactly


def new_epoch() -> int:
    return secrets.randbits(_EPOCH_BITS) or 1


class StoredEvent(msgspec.Struct, frozen=True):
    """A committed (or about to be) event: where it sits in its topic, and its frame."""

    topic: str
    epoch: int
    seq: int
    frame: bytes


class TopicHead(msgspec.Struct, frozen=True):
    """A topic's current epoch, last seq and the lowest seq still kept in history."""

    topic: str
    epoch: int
    seq: int
    kept_from: int


async def append(
    conn: asyncpg.Connection, topic: str, name: str, data: Any, *, ts: float
) -> StoredEvent:
    """Append one event to ``topic`` inside the caller's transaction.

    Args:
        conn: a connection inside a transaction; the event is visible on commit only.
        topic: topic name (``kind:key``).
        name: event name, e.g. ``peer_online``.
        data: a Struct or builtins; encoded once into the frame.
        ts: the event time (unix seconds), from the caller's clock.
    """
    slot = await claim(conn, topic)
    return await write(conn, slot, name, data, ts=ts)


class Slot(msgspec.Struct, frozen=True):
    """A sequence number taken on a topic inside a transaction, not yet written."""

    topic: str
    epoch: int
    seq: int


async def claim(conn: asyncpg.Connection, topic: str) -> Slot:
    """Take ``topic``'s next sequence number inside the caller's transaction.

    The topic row stays locked until the transaction ends, so the writer may read state
    that no other writer of the topic can change before its event is written (e.g. the
    waiting counts a queue event carries), then :func:`write` the event.

    The SQL function ``queue_claim`` (storage/migrations/011_ticket_order.sql) takes a hall
    topic's number with this same statement and reads the queue's counts in the same round
    trip; a change to the topic row's numbering changes both.
    """
    row = await conn.fetchrow(
        """INSERT INTO topic AS t (name, epoch, seq) VALUES ($1, $2, 1)
           ON CONFLICT (name) DO UPDATE SET seq = t.seq + 1
           RETURNING epoch, seq""",
        topic,
        new_epoch(),
    )
    return Slot(topic, int(row["epoch"]), int(row["seq"]))


async def write(
    conn: asyncpg.Connection, slot: Slot, name: str, data: Any, *, ts: float
) -> StoredEvent:
    """Write the event of a claimed slot (encoded once) into the topic's history."""
    frame = encode(
        Event(topic=slot.topic, epoch=slot.epoch, seq=slot.seq, ts=ts, name=name, data=data)
    )
    await conn.execute(
        "INSERT INTO topic_event (topic, seq, type, frame) VALUES ($1, $2, $3, $4)",
        slot.topic,
        slot.seq,
        name,
        frame,
    )
    return StoredEvent(slot.topic, slot.epoch, slot.seq, frame)


def volatile_frame(topic: str, epoch: int, name: str, data: Any, *, ts: float) -> bytes:
    """A frame that is not kept or replayed (``seq`` None), e.g. heartbeat times."""
    return encode(Event(topic=topic, epoch=epoch, seq=None, ts=ts, name=name, data=data))


async def heads(conn: asyncpg.Connection, topics: Sequence[str]) -> dict[str, TopicHead]:
    """The heads of ``topics`` that exist (a topic with no event yet has no row)."""
    rows = await conn.fetch(
        "SELECT name, epoch, seq, kept_from FROM topic WHERE name = ANY($1::text[])",
        list(topics),
    )
    return {
        r["name"]: TopicHead(r["name"], int(r["epoch"]), int(r["seq"]), int(r["kept_from"]))
        for r in rows
    }


async def history(
    conn: asyncpg.Connection, topic: str, after: int, upto: int
) -> list[tuple[int, bytes]]:
    """Events of ``topic`` with ``after < seq <= upto`` in order, as (seq, frame)."""
    rows = await conn.fetch(
        "SELECT seq, frame FROM topic_event WHERE topic = $1 AND seq > $2 AND seq <= $3 "
        "ORDER BY seq",
        topic,
        after,
        upto,
    )
    return [(int(r["seq"]), bytes(r["frame"])) for r in rows]


async def ensure_topic(conn: asyncpg.Connection, topic: str) -> TopicHead:
    """The head of ``topic``, creating the row (seq 0) if the topic never had an event, so
    that a snapshot of an empty topic still has an epoch to resume from."""
    row = await conn.fetchrow(
        """INSERT INTO topic AS t (name, epoch, seq) VALUES ($1, $2, 0)
           ON CONFLICT (name) DO UPDATE SET name = t.name
           RETURNING epoch, seq, kept_from""",
        topic,
        new_epoch(),
    )
    return TopicHead(topic, int(row["epoch"]), int(row["seq"]), int(row["kept_from"]))


async def prune(conn: asyncpg.Connection, keep: int) -> int:
    """Drop history beyond the last ``keep`` events of every topic. Returns rows deleted.
    Peers further behind than what is kept get a snapshot when they resume."""
    deleted = await conn.fetchval(
        """WITH cut AS (
               UPDATE topic SET kept_from = seq - $1 + 1
               WHERE seq - $1 + 1 > kept_from
               RETURNING name, kept_from),
           gone AS (
               DELETE FROM topic_event e USING cut
               WHERE e.topic = cut.name AND e.seq < cut.kept_from
               RETURNING 1)
           SELECT count(*) FROM gone""",
        keep,
    )
    return int(deleted)


async def reset_topic(conn: asyncpg.Connection, topic: str) -> TopicHead:
    """Start a new epoch for ``topic`` and drop its history: every peer resumes by snapshot."""
    await conn.execute("DELETE FROM topic_event WHERE topic = $1", topic)
    row = await conn.fetchrow(
        "UPDATE topic SET epoch = $2, seq = 0, kept_from = 1 WHERE name = $1 "
        "RETURNING epoch, seq, kept_from",
        topic,
        new_epoch(),
    )
    if row is None:
        return await ensure_topic(conn, topic)
    return TopicHead(topic, int(row["epoch"]), int(row["seq"]), int(row["kept_from"]))
