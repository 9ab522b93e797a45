"""Locks that order queue changes: the queue event's slot and counts (SQL function
queue_claim, migration 011) are read after the hall topic is locked, so they include every
change committed before; a ticket waits for a prefix change of its group in flight."""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec

from hub.domain.queue import service_day
from hub.services.queue import TicketRequest
from tests.hub.queue.world import QueueWorld


async def _waiting(conn: asyncpg.Connection, w: QueueWorld, topic: str) -> tuple[int, int]:
    day = service_day(w.clock(), "Asia/Shanghai")
    row = await conn.fetchrow("SELECT * FROM queue_claim($1, 1, $2, $3)", topic, w.hall_id, day)
    counts = dict(zip(row["o_groups"], row["o_waiting"], strict=True))
    return row["o_seq"], counts[w.groups["A"]]


async def _lock_wait(db: asyncpg.Pool, pid: int) -> None:
    query = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1"
    async with asyncio.timeout(10):
        while not await db.fetchval(query, pid):  # noqa: ASYNC110 (a server-side state)
            await asyncio.sleep(0.005)


async def test_counts_see_a_change_committed_while_the_claim_waited_for_the_topic(
    db: asyncpg.Pool, qworld: QueueWorld, database_url: str
) -> None:
    """B claims while A holds the hall topic with a new waiting ticket; A commits; B's
    counts (read after its claim got the lock) include A's ticket, and its number follows."""
    w = qworld
    topic = f"hall:{w.hall_id}"
    day = service_day(w.clock(), "Asia/Shanghai")
    a = await asyncpg.connect(database_url)
    b = await asyncpg.connect(database_url)
    try:
        async with a.transaction():
            seq_a, before = await _waiting(a, w, topic)
            await a.execute(
                """INSERT INTO ticket (hall_id, group_id, service_day, seq, number,
                                       public_token, source, issued_at, queued_at, order_at)
                   VALUES ($1, $2, $3, 900, 'A900', 'claim-test', 'kiosk', now(), now(),
                           now())""",
                w.hall_id,
                w.groups["A"],
                day,
            )
            b_tx = b.transaction()
            await b_tx.start()
            waiting_b = asyncio.create_task(_waiting(b, w, topic))
            # B is blocked on the topic row A holds: wait until it shows as a lock wait.
            await _lock_wait(db, b.get_server_pid())
            assert not waiting_b.done()
        seq_b, after = await waiting_b
        await b_tx.commit()
    finally:
        await a.close()
        await b.close()
    assert (seq_b, after) == (seq_a + 1, before + 1)


async def test_a_hall_without_groups_still_gets_its_slot(db: asyncpg.Pool) -> None:
    """No groups: empty counts, and the topic's numbers still run."""
    async with db.acquire() as conn, conn.transaction():
        claim = "SELECT * FROM queue_claim('hall:test-empty', 7, -1, now()::date)"
        first = await conn.fetchrow(claim)
        second = await conn.fetchrow(claim)
    assert (first["o_seq"], second["o_seq"]) == (1, 2)
    assert first["o_groups"] == [] and first["o_waiting"] == []


async def test_issue_events_carry_counts_that_include_the_new_ticket(
    db: asyncpg.Pool, qworld: QueueWorld
) -> None:
    """Through the service: the event of each issued ticket counts it."""
    w = qworld
    for _ in range(2):
        await w.queue.issue(
            w.hall_id, TicketRequest(group_id=w.groups["A"]), source="kiosk", caller="device"
        )
    frames = await db.fetch(
        "SELECT frame FROM topic_event WHERE topic = $1 ORDER BY seq", f"hall:{w.hall_id}"
    )
    waiting = [dict(msgspec.json.decode(f["frame"])["data"]["waiting"]) for f in frames]
    assert [counts[w.groups["A"]] for counts in waiting] == [1, 2]


async def test_a_first_ticket_racing_a_prefix_change_takes_the_new_prefix(
    db: asyncpg.Pool, qworld: QueueWorld, database_url: str
) -> None:
    """A prefix change is committing while the group's first ticket is issued: the ticket
    waits for it and is numbered with the new prefix, not the one it would have read."""
    w = qworld
    group = w.groups["A"]
    change = await asyncpg.connect(database_url)
    try:
        tx = change.transaction()
        await tx.start()
        await change.execute("SELECT 1 FROM service_group WHERE id = $1 FOR UPDATE", group)
        await change.execute("UPDATE service_group SET prefix = 'Z' WHERE id = $1", group)
        issuing = asyncio.create_task(
            w.queue.issue(w.hall_id, TicketRequest(group_id=group), source="kiosk", caller="device")
        )
        await _lock_wait(db, await _issuing_pid(db, change.get_server_pid()))
        await tx.commit()
        issued = await issuing
    finally:
        await change.close()
    assert issued.ticket.number == "Z001"


async def _issuing_pid(db: asyncpg.Pool, blocker: int) -> int:
    """The backend that waits for ``blocker``'s lock."""
    query = "SELECT pid FROM pg_stat_activity WHERE $1 = any(pg_blocking_pids(pid))"
    async with asyncio.timeout(10):
        while (pid := await db.fetchval(query, blocker)) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    return int(pid)
