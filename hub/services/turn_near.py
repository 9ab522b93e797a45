"""Q8, H6: "your turn is near" by SMS for tickets that left a phone number.

After a call (and after issuing a ticket) the first :data:`NEAR` + 1 waiting tickets of the
group, in calling order, are looked at; each one with a phone gets one message through the
notification outbox, in the same transaction (so it is sent if and only if the change
commits; its key ``turn_near:<ticket_id>`` makes it once per ticket). The citizen's page
shows the same warning live from the ticket's position (in-page push).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import asyncpg

from hub.services import notify

# "Near": this many tickets or fewer before it.
NEAR = 3
# A "your turn is near" message that could not go out within this time is dropped.
VALID_FOR = timedelta(minutes=30)


async def notify_turn_near(
    conn: asyncpg.Connection,
    hall_id: int,
    day: date,
    group_id: int,
    now: datetime,
) -> int:
    """Enqueue the message for the group's tickets now near the front. Returns how many
    were new."""
    rows = await conn.fetch(
        f"""SELECT id, number, phone, ahead FROM (
                SELECT t.id, t.number, t.phone,
                       row_number() OVER (ORDER BY t.order_at, t.id) - 1 AS ahead
                FROM ticket t
                WHERE t.hall_id = $1 AND t.service_day = $2 AND t.group_id = $3
                  AND t.status = 'waiting' AND t.target_window_id IS NULL
                ORDER BY t.order_at, t.id
                LIMIT {NEAR + 1}) q
            WHERE phone IS NOT NULL""",
        hall_id,
        day,
        group_id,
    )
    sent = 0
    for row in rows:
        message = notify.turn_near(
            ticket_id=row["id"],
            ticket_number=row["number"],
            ahead=row["ahead"],
            phone=row["phone"],
            hall_id=hall_id,
            expires_at=now + VALID_FOR,
        )
        sent += await notify.enqueue(conn, message)
    return sent
