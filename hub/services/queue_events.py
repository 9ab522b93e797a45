"""Queue events on ``hall:<hall_id>``: written last in the transaction of the change, after
the hall topic is claimed, so the waiting counts they carry are the counts at commit."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg
import msgspec

from hub.domain.devices import TIMEOUTS, configured_timeout
from hub.services.events import Tx
from hub.services.queue_views import CallView, GroupCount, QueueEvent, WindowView
from realtime.outbox import Slot, new_epoch
from realtime.topics import topic

# O9: how long an evaluator waits for a grade when its configuration says nothing (D6
# ``timeout_s`` of the window's evaluator; bounds in hub.domain.devices.TIMEOUTS).
RATING_TIMEOUT_S = TIMEOUTS["evaluator"][0]


class RatingRequest(msgspec.Struct, frozen=True, kw_only=True):
    """``rating_requested`` on ``window:<id>``: the evaluator asks the citizen (O9). The pad
    shows the window's number and the staff member's name and number while it asks, and
    records the ticket as unrated after ``timeout_s`` without a grade."""

    ticket_id: int
    number: str
    window_id: int
    staff_id: int | None
    window_number: int = 0
    staff_name: str = ""
    staff_no: str = ""
    timeout_s: int = RATING_TIMEOUT_S


# The window's number, its staff member, and the timeout of its evaluator (the lowest id of
# the unrevoked evaluators standing at it): $1 window, $2 staff.
RATING_CONTEXT_SQL = """
    SELECT w.number AS window_number, s.name AS staff_name, s.staff_no,
           (SELECT CASE WHEN jsonb_typeof(d.config -> 'timeout_s') = 'number'
                        THEN (d.config ->> 'timeout_s')::numeric END
            FROM device d
            WHERE d.window_id = w.id AND d.kind = 'evaluator' AND d.revoked_at IS NULL
            ORDER BY d.id LIMIT 1) AS timeout_s
    FROM "window" w LEFT JOIN staff s ON s.id = $2
    WHERE w.id = $1"""


async def rating_request(
    conn: asyncpg.Connection | asyncpg.Pool,
    ticket_id: int,
    number: str,
    window_id: int,
    staff_id: int | None,
) -> RatingRequest:
    """The ``rating_requested`` of a ticket finished at ``window_id`` by ``staff_id``."""
    row = await conn.fetchrow(RATING_CONTEXT_SQL, window_id, staff_id)
    return RatingRequest(
        ticket_id=ticket_id,
        number=number,
        window_id=window_id,
        staff_id=staff_id,
        window_number=row["window_number"] if row else 0,
        staff_name=(row["staff_name"] or "") if row else "",
        staff_no=(row["staff_no"] or "") if row else "",
        timeout_s=configured_timeout("evaluator", row["timeout_s"] if row else None),
    )


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
