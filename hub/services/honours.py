"""Honour marks (Q6): red-flag windows (红旗窗口) and star staff (先进个人).

Honours, not supervision: the hall manager sets them and every public display shows them
(WindowView.red_flag, WindowView.star_staff). Yellow and red cards are supervision findings
and never reach public screens (S4). Each change is audited and announced as
``queue_configured`` (hub/services/queue_config.py) so displays redraw at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import msgspec

from hub.domain.access import Place
from hub.domain.errors import NotFound
from hub.services import audit
from hub.services.events import EventWriter
from hub.services.queue_config import HallStaff, announce_config, hall_staff
from hub.services.queue_views import WindowView, window_view


class RedFlag(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """红旗窗口: set by the hall manager, shown on public displays."""

    red_flag: bool


class StarStaff(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """先进个人: shown on the window the staff member works."""

    star_staff: bool


async def set_red_flag(
    events: EventWriter,
    clock: Callable[[], datetime],
    actor: audit.Actor,
    place: Place,
    window_id: int,
    red_flag: bool,
) -> WindowView:
    """Mark (or unmark) a window of the hall of ``place`` as a red-flag window.

    Raises:
        NotFound: the window is not the hall's (``path.window_id``).
    """
    assert place.hall_id is not None
    async with events.transaction() as tx:
        before = await tx.conn.fetchval(
            'SELECT red_flag FROM "window" WHERE id = $1 AND hall_id = $2 FOR NO KEY UPDATE',
            window_id,
            place.hall_id,
        )
        if before is None:
            raise NotFound(f"window {window_id} is not in this hall", field="path.window_id")
        if before != red_flag:
            await tx.conn.execute(
                'UPDATE "window" SET red_flag = $2 WHERE id = $1', window_id, red_flag
            )
            await audit.record(tx.conn, actor, "window.red_flag", "window", window_id,
                               place=place, before={"red_flag": before},
                               after={"red_flag": red_flag})  # fmt: skip
            await announce_config(tx, place.hall_id, clock())
        return await window_view(tx.conn, window_id)


async def set_star_staff(
    events: EventWriter,
    clock: Callable[[], datetime],
    actor: audit.Actor,
    place: Place,
    staff_id: int,
    star: bool,
) -> HallStaff:
    """Mark (or unmark) a staff member as star staff. Announced on their own hall and on the
    hall where they work a window now: those displays show the mark.

    Raises:
        NotFound: no such staff member (``path.staff_id``).
    """
    async with events.transaction() as tx:
        row = await tx.conn.fetchrow(
            "SELECT star_staff, hall_id FROM staff WHERE id = $1 FOR NO KEY UPDATE", staff_id
        )
        if row is None:
            raise NotFound(f"staff {staff_id} does not exist", field="path.staff_id")
        if row["star_staff"] != star:
            await tx.conn.execute("UPDATE staff SET star_staff = $2 WHERE id = $1", staff_id, star)
            await audit.record(tx.conn, actor, "staff.star", "staff", staff_id, place=place,
                               before={"star_staff": row["star_staff"]},
                               after={"star_staff": star})  # fmt: skip
            halls = await tx.conn.fetch(
                """SELECT hall_id FROM staff WHERE id = $1 AND hall_id IS NOT NULL
                   UNION SELECT hall_id FROM window_state WHERE staff_id = $1
                   ORDER BY 1""",
                staff_id,
            )
            for hall in halls:
                await announce_config(tx, hall["hall_id"], clock())
        [honoured] = await hall_staff(tx.conn, row["hall_id"], staff_id)
        return honoured
