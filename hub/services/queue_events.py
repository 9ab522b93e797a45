"""Queue events on ``hall:<hall_id>``: written last in the transaction of the change, after
the hall topic is claimed, so the waiting counts they carry are the counts at commit."""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from hub.services.events import Tx
from hub.services.queue_views import CallView, QueueEvent, WindowView, waiting_counts
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
    hall commits until this one does), read the counts, emit. Everything else (the
    window's new view, the caller's answer) is read before, so the hall waits the least."""
    slot = await tx.claim(topic("hall", hall_id))
    event = QueueEvent(
        action=action or name.removeprefix("ticket_"),
        at=now,
        ticket=ticket,
        group_id=group_id,
        window=window,
        call=call,
        waiting=await waiting_counts(tx.conn, hall_id, day),
    )
    await tx.emit_claimed(slot, name, event)
