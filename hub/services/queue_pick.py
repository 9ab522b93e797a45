"""The SQL of the priority order (Q3): which waiting tickets a window may call, in calling
order, read from the index instead of sorted from the whole queue.

A window's candidates are the waiting tickets of today of the groups it serves (not sent to
one window) and the tickets transferred to it. Their order key is that of hub.domain.queue::

    key = order_at + (rank − 1) × rank_delay,   ties by ticket id

with ``order_at = queued_at − boost(priority)`` stored on the ticket (migration 011). Within
one group the rank is constant, so the group's calling order is its index order
(``ticket_order_idx``: hall, day, group, order_at, id); the window's first ``n`` tickets are
therefore among the first ``n`` of each group it serves, plus those transferred to it. Call
next reads that short list with one index probe per group, sorts it, and locks the first
ticket nobody else holds (``FOR UPDATE SKIP LOCKED``). When every ticket of the short list is
held by windows calling at the same moment, :func:`call_full_sql` picks from all candidates.

Under contention the order is that of ``SKIP LOCKED``: a ticket being taken by another window
is passed over, so a window may get the next one. With several groups the same holds one
step further: if all eight read of one group are being taken at that instant, the window
takes the best free ticket of its other groups rather than that group's ninth. Either way the
passed-over tickets are called by the windows that hold them, and without contention the
order is exactly hub.domain.queue's (tests/hub/queue/test_priority_property.py).

Both statements take ``$1`` the window, ``$2`` the staff member signed in there, ``$3`` now;
they lock the window's state row first (open, idle, signed in by ``$2``) and return the
called ticket (``id, number, group_id, hall_id, service_day``), or no row.
"""

from __future__ import annotations

from hub.domain.queue import PriorityPolicy

# Tickets read per served group on the fast path: a call succeeds there unless this many
# windows serving the group take tickets of it at the same moment.
PER_GROUP = 8


def candidates_sql(policy: PriorityPolicy, per_group: int | None) -> str:
    """A SELECT of a window's candidates ``(id, group_id, target, k)``; ``target`` is the
    window for a ticket transferred there, else NULL; ``k`` the order key. Reads the window
    from a row source ``w (window_id, hall_id, day)`` the caller provides. ``per_group``:
    the first that many of each group (the window's first ``per_group`` are among them);
    None for all."""
    limit = "" if per_group is None else f"LIMIT {per_group}"
    delay = policy.rank_delay
    return f"""
        SELECT c.id, wg.group_id, NULL::bigint AS target,
               c.order_at + make_interval(secs => (wg.rank - 1) * {delay}) AS k
        FROM w JOIN window_group wg ON wg.window_id = w.window_id
        CROSS JOIN LATERAL (
            SELECT t.id, t.order_at FROM ticket t
            WHERE t.hall_id = w.hall_id AND t.service_day = w.day AND t.group_id = wg.group_id
              AND t.status = 'waiting' AND t.target_window_id IS NULL
            ORDER BY t.order_at, t.id {limit}) c
        UNION ALL
        SELECT t.id, t.group_id, t.target_window_id,
               t.order_at + make_interval(secs => (coalesce(wg.rank, 1) - 1) * {delay})
        FROM w JOIN ticket t ON t.target_window_id = w.window_id AND t.status = 'waiting'
                            AND t.service_day = w.day
        LEFT JOIN window_group wg ON wg.window_id = w.window_id AND wg.group_id = t.group_id"""


def _call_sql(policy: PriorityPolicy, per_group: int | None) -> str:
    return f"""
    WITH w AS (
        SELECT ws.window_id, ws.hall_id, ($3::timestamptz AT TIME ZONE h.timezone)::date AS day
        FROM window_state ws JOIN hall h ON h.id = ws.hall_id
        WHERE ws.window_id = $1 AND ws.staff_id = $2 AND ws.status = 'open'
          AND ws.current_ticket_id IS NULL
        FOR UPDATE OF ws
    ), cand AS ({candidates_sql(policy, per_group)}
    ), pick AS (
        -- Re-checked on the locked row: still waiting, still in the queue it was read from.
        SELECT t.id FROM cand JOIN ticket t ON t.id = cand.id
        WHERE t.status = 'waiting' AND t.group_id = cand.group_id
          AND t.target_window_id IS NOT DISTINCT FROM cand.target
        ORDER BY cand.k, cand.id
        LIMIT 1
        FOR UPDATE OF t SKIP LOCKED
    ), called AS (
        UPDATE ticket t SET status = 'called', window_id = $1, staff_id = $2, called_at = $3,
               call_count = t.call_count + 1, target_window_id = NULL
        FROM pick WHERE t.id = pick.id
        RETURNING t.id, t.number, t.group_id, t.hall_id, t.service_day
    ), seated AS (
        UPDATE window_state ws SET current_ticket_id = called.id, changed_at = $3
        FROM called WHERE ws.window_id = $1
        RETURNING ws.window_id
    )
    SELECT called.*, (SELECT count(*) FROM seated) AS seated FROM called
    """


def call_fast_sql(policy: PriorityPolicy) -> str:
    """Call next from the first :data:`PER_GROUP` tickets of each served group."""
    return _call_sql(policy, PER_GROUP)


def call_full_sql(policy: PriorityPolicy) -> str:
    """Call next from every candidate (after the fast path found none free)."""
    return _call_sql(policy, None)


def window_queue_sql(policy: PriorityPolicy, limit: int) -> str:
    """The first ``limit`` tickets a window would call, in calling order (``$1`` the window,
    ``$2`` the service day), with what the staff console shows of them."""
    return f"""
    WITH w AS (SELECT id AS window_id, hall_id, $2::date AS day FROM "window" WHERE id = $1),
    cand AS ({candidates_sql(policy, limit)})
    SELECT t.id AS ticket_id, t.number, t.group_id, t.priority, t.queued_at,
           cand.target IS NOT NULL AS transferred_here
    FROM cand JOIN ticket t ON t.id = cand.id
    ORDER BY cand.k, cand.id
    LIMIT {limit}"""
