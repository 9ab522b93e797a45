"""Queue events on ``hall:<hall_id>``: written last in the transaction of the change, after
the hall topic is claimed, so the waiting counts they carry are the counts at commit."""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from hub.services.events import Tx
from hub.services.queue_views import CallView, GroupCount, QueueEvent, WindowView
from realtime.outbox import Slot, new_epoch
from realtime.topics import topic


class RatingRequest(msgspec.Struct, frozen=True, kw_only=True):
    """``rating_requested`` on ``window:<id>``: the evaluator asks the citizen (O9)."""

    ticket_id: int
    number: str
    window_id: int
    staff_id: int | None


async def announce(
    tx: Tx,
    now: datetime,
    hall_id: int,
    day: date,
    name: str,
    *,
    ticket: str | None = None,
    group_id: int | None = None,
    window: WindowView | None = None,
    call: CallView | None = None,
    action: str | None = None,
) -> None:
    """Write the queue event last: claim the hall topic (no other queue change of the
    hall commits until this one does) and read the counts, in one round trip (the SQL
    function ``queue_claim``, migration 011), then emit. Everything else (the window's new
    view, the caller's answer) is read before, so the hall waits the least."""
    name_of_topic = topic("hall", hall_id)
    row = await tx.conn.fetchrow(
        "SELECT * FROM queue_claim($1, $2, $3, $4)", name_of_topic, new_epoch(), hall_id, day
    )
    slot = Slot(name_of_topic, row["o_epoch"], row["o_seq"])
    event = QueueEvent(
        action=action or name.removeprefix("ticket_"),
        at=now,
        ticket=ticket,
        group_id=group_id,
        window=window,
        call=call,
        waiting=[GroupCount(g, n) for g, n in zip(row["o_groups"], row["o_waiting"], strict=True)],
    )
    await tx.emit_claimed(slot, name, event)
