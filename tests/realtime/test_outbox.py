"""The outbox on real PostgreSQL: gap-free numbering, history, pruning, epochs."""

from __future__ import annotations

import asyncio

import asyncpg

from realtime import outbox
from realtime.messages import Event, decode_outbound


async def _append(db: asyncpg.Pool, topic: str, n: int) -> outbox.StoredEvent:
    async with db.acquire() as conn, conn.transaction():
        return await outbox.append(conn, topic, "counted", {"n": n}, ts=1.0)


async def test_concurrent_writers_get_a_gap_free_sequence_in_commit_order(db: asyncpg.Pool):
    """200 appends from 10 writers: seq 1..200, each frame carrying its own seq."""
    results = await asyncio.gather(*(_append(db, "hall:1", n) for n in range(200)))
    assert sorted(e.seq for e in results) == list(range(1, 201))
    assert len({e.epoch for e in results}) == 1
    async with db.acquire() as conn:
        rows = await outbox.history(conn, "hall:1", 0, 200)
    assert [seq for seq, _ in rows] == list(range(1, 201))
    for seq, frame in rows:
        event = decode_outbound(frame)
        assert isinstance(event, Event) and event.seq == seq and event.topic == "hall:1"


async def test_a_rolled_back_append_leaves_no_hole(db: asyncpg.Pool):
    """A transaction that fails takes its number with it; the next writer gets it."""
    await _append(db, "hall:1", 1)
    try:
        async with db.acquire() as conn, conn.transaction():
            await outbox.append(conn, "hall:1", "counted", {"n": 2}, ts=1.0)
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    assert (await _append(db, "hall:1", 3)).seq == 2


async def test_pruning_keeps_the_last_events_and_records_where_history_starts(db: asyncpg.Pool):
    """After prune(keep=3) only the last three remain and kept_from says so."""
    for n in range(10):
        await _append(db, "hall:1", n)
    await _append(db, "hall:2", 0)
    async with db.acquire() as conn:
        deleted = await outbox.prune(conn, keep=3)
        heads = await outbox.heads(conn, ["hall:1", "hall:2"])
        rows = await outbox.history(conn, "hall:1", 0, 10)
    assert deleted == 7
    assert (heads["hall:1"].seq, heads["hall:1"].kept_from) == (10, 8)
    assert (heads["hall:2"].seq, heads["hall:2"].kept_from) == (1, 1)
    assert [seq for seq, _ in rows] == [8, 9, 10]


async def test_resetting_a_topic_starts_a_new_epoch_without_history(db: asyncpg.Pool):
    """A reset changes the epoch, empties the history and restarts numbering."""
    first = await _append(db, "hall:1", 0)
    async with db.acquire() as conn:
        head = await outbox.reset_topic(conn, "hall:1")
        assert await outbox.history(conn, "hall:1", 0, 100) == []
    assert head.epoch != first.epoch and head.seq == 0
    again = await _append(db, "hall:1", 1)
    assert (again.epoch, again.seq) == (head.epoch, 1)


async def test_ensure_topic_gives_an_empty_topic_an_epoch_and_keeps_an_existing_one(
    db: asyncpg.Pool,
):
    """A topic that never had an event can still be resumed from (epoch, 0)."""
    async with db.acquire() as conn:
        empty = await outbox.ensure_topic(conn, "hall:9")
        assert (empty.seq, empty.kept_from) == (0, 1)
        assert (await outbox.ensure_topic(conn, "hall:9")).epoch == empty.epoch
