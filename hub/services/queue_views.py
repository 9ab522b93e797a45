"""Read models of the queue (Q5, Q6, Q8): what screens, consoles and the citizen's page show.

Public views carry no personal data: a ticket appears by its number, staff by name and staff
number (by policy, 亮证上岗). Only :class:`ServingTicket` (the staff console's current
ticket) carries the applicant's *masked* name and document number.

The SQL order (hub/services/queue_pick.py) is the priority order of hub.domain.queue; both
are property-tested against each other.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg
import msgspec

from hub.domain.errors import NotFound
from hub.domain.queue import (
    DEFAULT_POLICY,
    Priority,
    PriorityPolicy,
    TicketStatus,
    WindowStatus,
    ahead_estimate_seconds,
    service_day,
)
from hub.services.queue_pick import window_queue_sql

# How many of a group's latest finished tickets make the mean service time (Q8).
SERVICE_SAMPLE = 20
# Below this many served tickets the group's configured prior is the estimate; a measured
# mean is never taken below MIN_SERVICE_SECONDS (a run of instant finishes is not a service).
MIN_SAMPLES = 5
MIN_SERVICE_SECONDS = 30
RECENT_CALLS = 10


# How many wait before the ticket ``t`` in its group's queue (a ticket sent to one window
# counts only those of the same window and those of the whole group): the citizen's
# "前面还有 N 人", on the page and on the printed ticket. Reads ticket_order_idx.
AHEAD_SQL = """SELECT count(*) FROM ticket o
               WHERE o.hall_id = t.hall_id AND o.service_day = t.service_day
                 AND o.group_id = t.group_id AND o.status = 'waiting'
                 AND (o.target_window_id IS NULL
                      OR o.target_window_id IS NOT DISTINCT FROM t.target_window_id)
                 AND (o.order_at, o.id) < (t.order_at, t.id)"""


class WindowView(msgspec.Struct, frozen=True, kw_only=True):
    """A window as its display and the hall display show it (Q6)."""

    window_id: int
    number: int
    name: str
    department: str | None
    status: WindowStatus
    staff_name: str | None
    staff_no: str | None
    star_staff: bool
    red_flag: bool
    current: str | None  # the number of the ticket being served
    group_ids: list[int]


class GroupView(msgspec.Struct, frozen=True, kw_only=True):
    """A service group with its queue: waiting count, open windows, mean service time."""

    group_id: int
    prefix: str
    name: str
    active: bool
    waiting: int
    open_windows: int
    service_seconds: int

    @property
    def estimate_seconds(self) -> int:
        return ahead_estimate_seconds(self.waiting, self.service_seconds, self.open_windows)


class GroupCount(msgspec.Struct, frozen=True, array_like=True):
    """``[group_id, waiting]``."""

    group_id: int
    waiting: int


class CallView(msgspec.Struct, frozen=True, kw_only=True):
    """One call as the hall display lists it."""

    number: str
    window_id: int
    window_number: int
    called_at: datetime
    recall: bool = False


class QueueState(msgspec.Struct, frozen=True, kw_only=True):
    """The queue part of a hall's snapshot."""

    service_day: date
    windows: list[WindowView]
    groups: list[GroupView]
    calls: list[CallView]


class QueueEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Data of every queue event on ``hall:<id>`` (``ticket_called``, ``window_changed`` …).

    ``window`` is the window's new state when the action concerned one, ``call`` is set for
    calls and recalls, ``waiting`` is every group's waiting count after the action.
    """

    action: str
    at: datetime
    ticket: str | None = None
    group_id: int | None = None
    window: WindowView | None = None
    call: CallView | None = None
    waiting: list[GroupCount] = []


class TicketStatusView(msgspec.Struct, frozen=True, kw_only=True):
    """The citizen's page (Q8): public facts of one ticket, by its public token."""

    number: str
    hall_id: int
    hall_name: str
    group_id: int
    group_name: str
    status: TicketStatus
    priority: Priority
    service_day: date
    issued_at: datetime
    ahead: int
    estimate_seconds: int
    window_number: int | None
    called_at: datetime | None


class QueuedTicket(msgspec.Struct, frozen=True, kw_only=True):
    """A waiting ticket in a window's calling order (staff console)."""

    ticket_id: int
    number: str
    group_id: int
    priority: Priority
    queued_at: datetime
    transferred_here: bool


class ServingTicket(msgspec.Struct, frozen=True, kw_only=True):
    """The ticket at a window, for its staff: masked applicant details when there are any."""

    ticket_id: int
    number: str
    group_id: int
    status: TicketStatus
    priority: Priority
    source: str
    called_at: datetime | None
    call_count: int
    id_kind: str | None
    id_masked: str | None
    name_masked: str | None


_WINDOW_SQL = """
    SELECT w.id AS window_id, w.number, w.name, d.name AS department,
           coalesce(ws.status, 'closed') AS status, s.name AS staff_name, s.staff_no,
           coalesce(s.star_staff, false) AS star_staff, w.red_flag, t.number AS current,
           ARRAY(SELECT wg.group_id FROM window_group wg WHERE wg.window_id = w.id
                 ORDER BY wg.rank, wg.group_id) AS group_ids
    FROM "window" w
    LEFT JOIN department d ON d.id = w.department_id
    LEFT JOIN window_state ws ON ws.window_id = w.id
    LEFT JOIN staff s ON s.id = ws.staff_id
    LEFT JOIN ticket t ON t.id = ws.current_ticket_id
"""


def _view(cls: type[Any], row: asyncpg.Record) -> Any:
    return msgspec.convert(dict(row), cls)


async def window_views(conn: asyncpg.Connection | asyncpg.Pool, hall_id: int) -> list[WindowView]:
    rows = await conn.fetch(_WINDOW_SQL + " WHERE w.hall_id = $1 ORDER BY w.number", hall_id)
    return [_view(WindowView, r) for r in rows]


async def window_view(conn: asyncpg.Connection | asyncpg.Pool, window_id: int) -> WindowView:
    row = await conn.fetchrow(_WINDOW_SQL + " WHERE w.id = $1", window_id)
    if row is None:
        raise NotFound(f"window {window_id} does not exist", field="path.window_id")
    view: WindowView = _view(WindowView, row)
    return view


async def group_views(
    conn: asyncpg.Connection | asyncpg.Pool,
    hall_id: int,
    day: date,
    group_id: int | None = None,
) -> list[GroupView]:
    """The hall's groups with their queues (only ``group_id``'s when given)."""
    rows = await conn.fetch(
        f"""SELECT g.id AS group_id, g.prefix, g.name, g.active,
                  (SELECT count(*) FROM ticket t WHERE t.hall_id = g.hall_id
                     AND t.service_day = $2 AND t.group_id = g.id AND t.status = 'waiting')
                     AS waiting,
                  (SELECT count(*) FROM window_group wg JOIN window_state ws
                     ON ws.window_id = wg.window_id AND ws.status = 'open'
                     WHERE wg.group_id = g.id) AS open_windows,
                  coalesce((SELECT greatest(round(avg(extract(epoch FROM
                                                        f.finished_at - f.called_at))),
                                            {MIN_SERVICE_SECONDS})
                            FROM (SELECT finished_at, called_at FROM ticket t
                                  WHERE t.hall_id = g.hall_id AND t.status = 'done'
                                    AND t.group_id = g.id AND t.finished_at IS NOT NULL
                                  ORDER BY t.finished_at DESC LIMIT {SERVICE_SAMPLE}) f
                            HAVING count(*) >= {MIN_SAMPLES}),
                           g.service_seconds)::int AS service_seconds
           FROM service_group g WHERE g.hall_id = $1 AND ($3::bigint IS NULL OR g.id = $3)
           ORDER BY g.prefix""",
        hall_id,
        day,
        group_id,
    )
    return [_view(GroupView, r) for r in rows]


async def recent_calls(
    conn: asyncpg.Connection | asyncpg.Pool, hall_id: int, day: date
) -> list[CallView]:
    rows = await conn.fetch(
        f"""SELECT t.number, t.window_id, w.number AS window_number, t.called_at
            FROM ticket t JOIN "window" w ON w.id = t.window_id
            WHERE t.hall_id = $1 AND t.service_day = $2 AND t.called_at IS NOT NULL
            ORDER BY t.called_at DESC, t.id DESC LIMIT {RECENT_CALLS}""",
        hall_id,
        day,
    )
    return [_view(CallView, r) for r in rows]


async def hall_day(conn: asyncpg.Connection | asyncpg.Pool, hall_id: int, now: datetime) -> date:
    timezone = await conn.fetchval("SELECT timezone FROM hall WHERE id = $1", hall_id)
    if timezone is None:
        raise NotFound(f"hall {hall_id} does not exist", field="path.hall_id")
    return service_day(now, timezone)


async def queue_state(conn: asyncpg.Connection, hall_id: int, now: datetime) -> QueueState:
    day = await hall_day(conn, hall_id, now)
    return QueueState(
        service_day=day,
        windows=await window_views(conn, hall_id),
        groups=await group_views(conn, hall_id, day),
        calls=await recent_calls(conn, hall_id, day),
    )


async def ticket_status(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> TicketStatusView:
    """The public status of the ticket whose public token is ``token``.

    Raises:
        NotFound: no such ticket (field ``path.token``).
    """
    row = await conn.fetchrow(
        f"""SELECT t.number, t.hall_id, h.name AS hall_name, t.group_id, g.name AS group_name,
                   t.status, t.priority, t.service_day, t.issued_at, t.called_at,
                   CASE WHEN t.status IN ('called', 'held') THEN w.number END AS window_number,
                   CASE WHEN t.status = 'waiting' THEN ({AHEAD_SQL}) ELSE 0 END AS ahead
            FROM ticket t JOIN hall h ON h.id = t.hall_id
            JOIN service_group g ON g.id = t.group_id
            LEFT JOIN "window" w ON w.id = t.window_id
            WHERE t.public_token = $1""",
        token,
    )
    if row is None:
        raise NotFound("no ticket has this code", field="path.ticket_token")
    # The ticket's own group only: this runs on every refresh of every citizen's page.
    (group,) = await group_views(conn, row["hall_id"], row["service_day"], row["group_id"])
    estimate = ahead_estimate_seconds(row["ahead"], group.service_seconds, group.open_windows)
    return msgspec.convert({**dict(row), "estimate_seconds": estimate}, TicketStatusView)


async def window_queue(
    conn: asyncpg.Connection | asyncpg.Pool,
    window_id: int,
    day: date,
    policy: PriorityPolicy = DEFAULT_POLICY,
    limit: int = 50,
) -> list[QueuedTicket]:
    """The tickets ``window_id`` would call, in calling order: the candidates of call next
    (hub/services/queue.py), a ticket transferred here included even when the window does
    not serve its group (rank 1 then)."""
    rows = await conn.fetch(window_queue_sql(policy, limit), window_id, day)
    return [_view(QueuedTicket, r) for r in rows]


async def serving_ticket(
    conn: asyncpg.Connection | asyncpg.Pool, window_id: int
) -> list[ServingTicket]:
    """The window's current ticket (first, status ``called``) and its held tickets."""
    rows = await conn.fetch(
        """SELECT t.id AS ticket_id, t.number, t.group_id, t.status, t.priority, t.source,
                  t.called_at, t.call_count, t.id_kind, t.id_masked, t.name_masked
           FROM ticket t WHERE t.window_id = $1 AND t.status IN ('called', 'held')
           ORDER BY t.status = 'held', t.called_at""",
        window_id,
    )
    return [_view(ServingTicket, r) for r in rows]
