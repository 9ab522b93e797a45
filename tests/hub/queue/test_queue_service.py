"""The queue service on real PostgreSQL: tickets, calls and every window action."""

from __future__ import annotations

import asyncpg
import pytest

from hub.domain.queue import (
    NoCurrentTicket,
    WindowBusy,
    WindowClosed,
    WindowNotOpen,
)
from hub.services.queue import TicketRequest, Transfer
from realtime.messages import Event, Snapshot
from tests.hub.queue.world import QueueWorld
from tests.realtime.peers import Peer, gateway_url


async def _issue(w: QueueWorld, group: str = "A", **kw: object) -> str:
    issued = await w.queue.issue(
        w.hall_id, TicketRequest(group_id=w.groups[group], **kw), source="kiosk", caller="device"
    )
    return issued.ticket.number


async def _state(db: asyncpg.Pool, number: str) -> tuple[str, int | None]:
    row = await db.fetchrow("SELECT status, window_id FROM ticket WHERE number = $1", number)
    return row["status"], row["window_id"]


async def test_numbers_run_per_group_and_calls_follow_arrival(db: asyncpg.Pool, qworld: QueueWorld):
    w = qworld
    numbers = [await _issue(w, "A"), await _issue(w, "B"), await _issue(w, "A")]
    assert numbers == ["A001", "B001", "A002"]
    await w.queue.sign_in(w.actors[0], w.place, w.windows[0])
    called = []
    for _ in range(3):
        w.clock.advance(seconds=1)
        result = await w.queue.call_next(w.actors[0], w.place, w.windows[0])
        called.append(result.called)
        await w.queue.finish(w.actors[0], w.place, w.windows[0])
    # Window 1 serves A first (rank 1): B waits rank_delay longer in its order.
    assert called == ["A001", "A002", "B001"]
    empty = await w.queue.call_next(w.actors[0], w.place, w.windows[0])
    assert empty.called is None and empty.window.current is None


async def test_illegal_window_actions_are_refused_and_change_nothing(
    db: asyncpg.Pool, qworld: QueueWorld
):
    w = qworld
    await _issue(w)
    actor, window = w.actors[0], w.windows[0]
    await w.queue.sign_in(actor, w.place, window)
    await w.queue.pause(actor, w.place, window)
    with pytest.raises(WindowNotOpen):
        await w.queue.call_next(actor, w.place, window)
    assert await _state(db, "A001") == ("waiting", None)
    await w.queue.resume(actor, w.place, window)
    await w.queue.call_next(actor, w.place, window)
    with pytest.raises(WindowBusy):
        await w.queue.call_next(actor, w.place, window)
    await w.queue.finish(actor, w.place, window)
    with pytest.raises(NoCurrentTicket):
        await w.queue.finish(actor, w.place, window)
    assert await _state(db, "A001") == ("done", window)


async def test_transfer_to_a_closed_window_is_refused(db: asyncpg.Pool, qworld: QueueWorld):
    w = qworld
    await _issue(w)
    await w.queue.sign_in(w.actors[0], w.place, w.windows[0])
    await w.queue.call_next(w.actors[0], w.place, w.windows[0])
    with pytest.raises(WindowClosed) as refused:
        await w.queue.transfer(w.actors[0], w.place, w.windows[0], Transfer(window_id=w.windows[1]))
    assert refused.value.code == "window_closed" and refused.value.field == "body.window_id"
    assert await _state(db, "A001") == ("called", w.windows[0])


async def test_transfer_keeps_the_number_and_only_the_target_window_calls_it(
    db: asyncpg.Pool, qworld: QueueWorld
):
    w = qworld
    await _issue(w)
    await _issue(w)
    for i in range(3):
        await w.queue.sign_in(w.actors[i], w.place, w.windows[i])
    await w.queue.call_next(w.actors[0], w.place, w.windows[0])
    await w.queue.transfer(w.actors[0], w.place, w.windows[0], Transfer(window_id=w.windows[2]))
    # Window 2 does not get A001 (it is for window 3), but A002.
    assert (await w.queue.call_next(w.actors[1], w.place, w.windows[1])).called == "A002"
    assert (await w.queue.call_next(w.actors[2], w.place, w.windows[2])).called == "A001"


async def test_skip_requeues_once_then_ends_as_no_show(db: asyncpg.Pool, qworld: QueueWorld):
    w = qworld
    await _issue(w)
    actor, window = w.actors[0], w.windows[0]
    await w.queue.sign_in(actor, w.place, window)
    await w.queue.call_next(actor, w.place, window)
    await w.queue.skip(actor, w.place, window)
    assert await _state(db, "A001") == ("waiting", window)
    w.clock.advance(seconds=5)
    assert (await w.queue.call_next(actor, w.place, window)).called == "A001"
    await w.queue.skip(actor, w.place, window)
    assert (await _state(db, "A001"))[0] == "no_show"


async def test_hold_and_return(db: asyncpg.Pool, qworld: QueueWorld):
    w = qworld
    await _issue(w)
    await _issue(w)
    actor, window = w.actors[0], w.windows[0]
    await w.queue.sign_in(actor, w.place, window)
    await w.queue.call_next(actor, w.place, window)
    held = await w.queue.hold(actor, w.place, window)
    assert [t.number for t in held.serving] == ["A001"] and held.window.current is None
    await w.queue.call_next(actor, w.place, window)
    with pytest.raises(WindowBusy):
        await w.queue.return_held(actor, w.place, window, held.serving[0].ticket_id)
    await w.queue.finish(actor, w.place, window)
    back = await w.queue.return_held(actor, w.place, window, held.serving[0].ticket_id)
    assert back.called == "A001" and back.window.current == "A001"


async def test_a_call_reaches_the_hall_display_after_commit(db: asyncpg.Pool, qworld: QueueWorld):
    w = qworld
    await _issue(w)
    async with Peer.connect(gateway_url(w.hub)) as display:
        await display.hello("hall_display", topics=[{"topic": f"hall:{w.hall_id}"}])
        snapshot = await display.recv()
        assert isinstance(snapshot, Snapshot)
        groups = {g["prefix"]: g["waiting"] for g in snapshot.data["queue"]["groups"]}
        assert groups == {"A": 1, "B": 0}
        await w.queue.sign_in(w.actors[0], w.place, w.windows[0])
        opened = await display.recv()
        assert isinstance(opened, Event) and opened.name == "window_changed"
        assert opened.data["window"]["status"] == "open"
        assert opened.data["window"]["staff_name"] == "窗口1"
        await w.queue.call_next(w.actors[0], w.place, w.windows[0])
        event = await display.recv()
        assert isinstance(event, Event) and event.name == "ticket_called"
        assert event.data["call"]["number"] == "A001"
        assert event.data["call"]["window_number"] == 1
        assert event.data["window"]["current"] == "A001"
        assert event.data["waiting"] == [[w.groups["A"], 0], [w.groups["B"], 0]]


async def test_waiting_tickets_of_a_past_day_expire_at_the_halls_midnight(
    db: asyncpg.Pool, qworld: QueueWorld
):
    from hub.services.tickets import expire_past_days

    w = qworld
    await _issue(w)
    async with db.acquire() as conn:
        # 23:59 in Shanghai the same day: nothing expires yet.
        assert await expire_past_days(conn, w.clock.advance(hours=13, minutes=59)) == 0
        assert await expire_past_days(conn, w.clock.advance(minutes=1)) == 1
    assert (await _state(db, "A001"))[0] == "expired"


async def test_turn_near_sms_is_enqueued_once_per_ticket_when_it_nears_the_front(
    db: asyncpg.Pool, qworld: QueueWorld
):
    """Q8: tickets with a phone get one "your turn is near" message when at most 3 wait
    before them, in the transaction of the call that moved them up."""
    w = qworld
    for i in range(6):
        await _issue(w, phone=f"1380013800{i}")
    rows = await db.fetch("SELECT key, recipient, body FROM notification ORDER BY key")
    # At issue time A001..A004 had at most 3 before them.
    assert [r["recipient"] for r in rows] == [f"1380013800{i}" for i in range(4)]
    await w.queue.sign_in(w.actors[0], w.place, w.windows[0])
    await w.queue.call_next(w.actors[0], w.place, w.windows[0])
    await w.queue.finish(w.actors[0], w.place, w.windows[0])
    await w.queue.call_next(w.actors[0], w.place, w.windows[0])
    rows = await db.fetch("SELECT recipient, body FROM notification ORDER BY id")
    assert len(rows) == 6 and rows[-1]["recipient"] == "13800138005"
    assert "A006" in rows[-1]["body"]


async def test_the_estimate_uses_the_prior_until_five_are_served_and_never_drops_to_zero(
    db: asyncpg.Pool, qworld: QueueWorld
):
    from hub.services.queue_views import group_views

    w = qworld
    for _ in range(7):
        await _issue(w)
    actor, window = w.actors[0], w.windows[0]
    await w.queue.sign_in(actor, w.place, window)

    async def a_group() -> int:
        views = await group_views(db, w.hall_id, w.clock.now.date())
        return next(g.service_seconds for g in views if g.prefix == "A")

    for served in range(5):
        assert await a_group() == 300, f"prior expected after {served} served"
        await w.queue.call_next(actor, w.place, window)
        await w.queue.finish(actor, w.place, window)  # served in no time at all
    assert await a_group() == 30
