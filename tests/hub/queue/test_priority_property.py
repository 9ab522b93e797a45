"""Q3 property tests: the SQL that orders and calls the queue (QueueService.call_next, the
console's window_queue) agrees with the pure rule of hub.domain.queue (order, pick_next) on
random queues in real PostgreSQL, and a normal ticket is never starved.

Each example writes its queue with plain SQL into one hall: tickets of three groups with
random priorities, ``queued_at`` spread over four hours (on whole minutes often, so that keys
tie and the ticket id decides), some transferred to the window under test or to another
window, some not waiting or of yesterday; the window serves a random subset of the groups at
random ranks, under a random :class:`PriorityPolicy`.

Starvation bound (derived from the order key, see hub.domain.queue)
    A ticket N of rank r queued at t₀ has key t₀ + (r − 1)·d (d = ``rank_delay``). A ticket
    of class c and rank r′ queued at t precedes it iff t − boost(c) + (r′ − 1)·d < t₀ +
    (r − 1)·d, i.e. t < t₀ + boost(c) + (r − r′)·d ≤ t₀ + M with M = max_boost + (r − 1)·d
    (an equal key goes to the lower id: N, which came first). So with priority tickets
    arriving every g seconds after t₀, the k-th arrival (at t₀ + k·g, k ≥ 1) overtakes N only
    if k·g < M: at most ⌈M/g⌉ − 1 of them. N is therefore called after at most
    W(t₀) + ⌈M/g⌉ − 1 calls, W(t₀) being the tickets waiting when it arrived, however long
    the stream lasts and however slow the service: it waits at most M longer than it would
    in plain arrival order. The test runs streams that outpace the window (a strict priority
    queue would never call N) and checks the bound.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hub.domain.queue import (
    PRIORITIES,
    Candidate,
    Priority,
    PriorityPolicy,
    order,
    order_at,
    pick_next,
    service_day,
)
from hub.services.audit import Actor
from hub.services.queue import QueueService
from hub.services.queue_views import window_queue
from tests.hub.queue.world import Clock, QueueWorld, add_group, build_world
from tests.realtime.peers import hubs

TZ = "Asia/Shanghai"
# 09:00 Shanghai; tickets are queued over the next four hours, the window calls at 13:00.
OPENING = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
CALLING = OPENING + timedelta(hours=4)
DAY = service_day(CALLING, TZ)
SPREAD_US = 4 * 3600 * 1_000_000
PREFIXES = ("A", "B", "C")


def _epoch_us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _at(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


@dataclass(frozen=True)
class Spec:
    """One ticket of an example."""

    group: int  # index into PREFIXES
    priority: Priority
    offset_us: int  # queued_at − OPENING
    target: str | None  # None, "here" (the window under test) or "other"
    status: str  # mostly waiting
    yesterday: bool


@dataclass
class PropWorld:
    world: QueueWorld
    groups: list[int]  # ids of A, B, C
    here: int  # the window under test
    other: int
    actor: Actor


@pytest.fixture
async def pworld(db: asyncpg.Pool, database_url: str) -> AsyncIterator[PropWorld]:
    clock = Clock(CALLING)
    async with hubs(database_url) as start:
        hub = await start()
        hub.clock = clock
        world = await build_world(db, hub, clock, windows=2, code="prop")
        c = await add_group(db, world.hall_id, "C", "公积金")
        groups = [world.groups["A"], world.groups["B"], c]
        await world.queue.sign_in(world.actors[0], world.place, world.windows[0])
        yield PropWorld(world, groups, world.windows[0], world.windows[1], world.actors[0])


# --- strategies --------------------------------------------------------------------------

# Whole minutes often (keys tie with whole-minute credits), any microsecond sometimes.
OFFSETS = st.one_of(
    st.integers(0, 240).map(lambda m: m * 60_000_000),
    st.integers(0, SPREAD_US),
)
SECONDS = st.one_of(st.integers(0, 60).map(lambda m: m * 60), st.integers(0, 7200))

POLICIES = st.builds(
    PriorityPolicy,
    green_channel=SECONDS,
    vip=SECONDS,
    appointment=SECONDS,
    rank_delay=st.one_of(st.integers(0, 30).map(lambda m: m * 60), st.integers(0, 3600)),
)

SPECS = st.builds(
    Spec,
    group=st.integers(0, 2),
    priority=st.sampled_from(PRIORITIES),
    offset_us=OFFSETS,
    target=st.sampled_from([None, None, None, "here", "other"]),
    status=st.sampled_from(["waiting"] * 8 + ["called", "done", "held", "no_show"]),
    yesterday=st.sampled_from([False] * 6 + [True]),
)

# Per group: the window's rank for it (1 to 3 often, so that ranks tie), or None when the
# window does not serve the group (one time in four).
RANKS = st.lists(
    st.sampled_from([None, 1, 2, 3]) | st.integers(1, 9) | st.integers(1, 3),
    min_size=3,
    max_size=3,
)


# --- set-up of one example ---------------------------------------------------------------


async def _reset(db: asyncpg.Pool, p: PropWorld, ranks: list[int | None]) -> None:
    await db.execute("DELETE FROM ticket WHERE hall_id = $1", p.world.hall_id)
    await db.execute("DELETE FROM window_group WHERE window_id = $1", p.here)
    await db.executemany(
        "INSERT INTO window_group (window_id, group_id, rank) VALUES ($1, $2, $3)",
        [(p.here, p.groups[g], rank) for g, rank in enumerate(ranks) if rank is not None],
    )


async def _insert(
    db: asyncpg.Pool, p: PropWorld, specs: list[Spec], policy: PriorityPolicy
) -> list[int]:
    """Insert the tickets in list order (so ids follow it), queued under ``policy``; their
    ids."""
    ids = []
    for seq, spec in enumerate(specs, start=1):
        queued = _at(_epoch_us(OPENING) + spec.offset_us)
        day = DAY - timedelta(days=1) if spec.yesterday else DAY
        if spec.yesterday:
            queued -= timedelta(days=1)
        target = {None: None, "here": p.here, "other": p.other}[spec.target]
        placed = spec.status in ("called", "held", "done", "no_show")
        ticket_id = await db.fetchval(
            """INSERT INTO ticket (hall_id, group_id, service_day, seq, number, public_token,
                                   source, priority, status, issued_at, queued_at, order_at,
                                   target_window_id, window_id)
               VALUES ($1, $2, $3, $4, $5, $6, 'kiosk', $7, $8, $9, $9, $12, $10, $11)
               RETURNING id""",
            p.world.hall_id,
            p.groups[spec.group],
            day,
            seq,
            f"{PREFIXES[spec.group]}{seq:03d}",
            secrets.token_urlsafe(12),
            spec.priority,
            spec.status,
            queued,
            None if placed else target,
            p.other if placed else None,
            order_at(queued, spec.priority, policy),
        )
        ids.append(ticket_id)
    return ids


def _service(w: QueueWorld, policy: PriorityPolicy) -> QueueService:
    """A queue service of the same hub under another policy."""
    assert w.hub.events is not None
    return QueueService(w.hub.events, w.clock, b"property", policy)


def _candidates(
    specs: list[Spec], ids: list[int], ranks: list[int | None]
) -> tuple[list[Candidate], set[int]]:
    """The tickets the window may call, as hub.domain.queue sees them; and every other id."""
    candidates, others = [], set()
    for spec, ticket_id in zip(specs, ids, strict=True):
        rank = ranks[spec.group]
        mine = spec.target == "here" or (spec.target is None and rank is not None)
        if spec.status == "waiting" and not spec.yesterday and mine:
            queued = _epoch_us(OPENING) + spec.offset_us
            # A ticket sent to this window of a group it does not serve counts as rank 1.
            candidates.append(Candidate(ticket_id, queued, spec.priority, rank or 1))
        else:
            others.add(ticket_id)
    return candidates, others


async def _untouched(db: asyncpg.Pool, ids: set[int]) -> list[tuple[int, str, int]]:
    rows = await db.fetch(
        "SELECT id, status, call_count FROM ticket WHERE id = any($1::bigint[]) ORDER BY id",
        list(ids),
    )
    return [(r["id"], r["status"], r["call_count"]) for r in rows]


# --- properties --------------------------------------------------------------------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(policy=POLICIES, ranks=RANKS, specs=st.lists(SPECS, min_size=1, max_size=25))
async def test_the_console_queue_is_the_domain_order(
    db: asyncpg.Pool,
    pworld: PropWorld,
    policy: PriorityPolicy,
    ranks: list[int | None],
    specs: list[Spec],
) -> None:
    """window_queue() lists exactly the window's candidates, in order()'s order."""
    await _reset(db, pworld, ranks)
    ids = await _insert(db, pworld, specs, policy)
    candidates, _ = _candidates(specs, ids, ranks)
    expected = [c.ticket_id for c in order(candidates, policy)]
    listed = await window_queue(db, pworld.here, DAY, policy, limit=100)
    assert [t.ticket_id for t in listed] == expected
    first = await window_queue(db, pworld.here, DAY, policy, limit=3)
    assert [t.ticket_id for t in first] == expected[:3]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(policy=POLICIES, ranks=RANKS, specs=st.lists(SPECS, min_size=4, max_size=14))
async def test_call_next_calls_in_the_domain_order_and_loses_nobody(
    db: asyncpg.Pool,
    pworld: PropWorld,
    policy: PriorityPolicy,
    ranks: list[int | None],
    specs: list[Spec],
) -> None:
    """Calling until nobody is left calls every candidate once, each time the one
    pick_next() chooses among those still waiting; every other ticket stays as it was."""
    await _reset(db, pworld, ranks)
    ids = await _insert(db, pworld, specs, policy)
    candidates, others = _candidates(specs, ids, ranks)
    event(f"candidates: {min(len(candidates), 8)}{'+' if len(candidates) >= 8 else ''}")
    before = await _untouched(db, others)
    w = pworld.world
    queue = _service(w, policy)
    left = list(candidates)
    while True:
        result = await queue.call_next(pworld.actor, w.place, pworld.here)
        expected = pick_next(left, policy)
        if expected is None:
            assert result.called is None and result.window.current is None
            break
        assert result.serving and result.serving[0].ticket_id == expected.ticket_id
        left.remove(expected)
        await queue.finish(pworld.actor, w.place, pworld.here)
    assert left == []
    called = await db.fetch(
        "SELECT id, status, call_count FROM ticket WHERE id = any($1::bigint[])",
        [c.ticket_id for c in candidates],
    )
    assert {(r["status"], r["call_count"]) for r in called} <= {("done", 1)}
    assert len(called) == len(candidates)
    assert await _untouched(db, others) == before


@dataclass(frozen=True)
class Stream:
    """A normal ticket N arriving into a backlog, then a steady stream of priority tickets
    that outpaces the window."""

    policy: PriorityPolicy
    n_group: int  # N's group: 0 (rank 1 at the window) or 1 (rank 2)
    backlog: list[tuple[int, Priority, int]]  # (group, class, seconds before N) waiting at t₀
    gap: int  # seconds between priority arrivals
    service: int  # seconds per call, > gap
    classes: list[Priority]  # the stream's classes, cycled
    stream_group: int

    @property
    def reach(self) -> int:
        """M = max_boost + (r − 1)·d: how far after N an arrival may still overtake it."""
        return self.policy.max_boost + self.n_group * self.policy.rank_delay


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    policy = draw(
        st.builds(
            PriorityPolicy,
            green_channel=st.integers(60, 1800),
            vip=st.integers(60, 1800),
            appointment=st.integers(60, 1800),
            rank_delay=st.integers(0, 900),
        )
    )
    n_group = draw(st.integers(0, 1))
    reach = policy.max_boost + n_group * policy.rank_delay
    # At most about 12 overtaking arrivals: keeps an example to a few dozen calls.
    gap = draw(st.integers(max(1, math.ceil(reach / 12)), max(1, math.ceil(reach / 3))))
    service = draw(st.integers(gap + 1, 3 * gap))
    nonnormal = [p for p in PRIORITIES if p != "normal"]
    return Stream(
        policy=policy,
        n_group=n_group,
        backlog=draw(
            st.lists(
                st.tuples(st.integers(0, 1), st.sampled_from(PRIORITIES), st.integers(0, 3600)),
                max_size=5,
            )
        ),
        gap=gap,
        service=service,
        classes=draw(st.lists(st.sampled_from(nonnormal), min_size=1, max_size=4)),
        stream_group=draw(st.integers(0, 1)),
    )


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=streams())
async def test_a_normal_ticket_is_called_within_the_bound_despite_a_priority_stream(
    db: asyncpg.Pool, pworld: PropWorld, stream: Stream
) -> None:
    """The bound of the module docstring: W(t₀) + ⌈M/g⌉ − 1 calls before N."""
    w = pworld.world
    await _reset(db, pworld, [1, 2, None])
    queue = _service(w, stream.policy)
    t0 = OPENING + timedelta(hours=1)
    seq = iter(range(1, 10_000))

    async def arrive(group: int, priority: Priority, at: datetime) -> int:
        number = next(seq)
        ticket_id: int = await db.fetchval(
            """INSERT INTO ticket (hall_id, group_id, service_day, seq, number, public_token,
                                   source, priority, issued_at, queued_at, order_at)
               VALUES ($1, $2, $3, $4, $5, $6, 'kiosk', $7, $8, $8, $9) RETURNING id""",
            w.hall_id,
            pworld.groups[group],
            DAY,
            number,
            f"{PREFIXES[group]}{number:03d}",
            secrets.token_urlsafe(12),
            priority,
            at,
            order_at(at, priority, stream.policy),
        )
        return ticket_id

    for group, priority, before in stream.backlog:
        await arrive(group, priority, t0 - timedelta(seconds=before))
    normal = await arrive(stream.n_group, "normal", t0)
    waiting_at_t0 = len(stream.backlog)
    bound = waiting_at_t0 + math.ceil(stream.reach / stream.gap) - 1

    arrivals = 0  # stream tickets inserted so far; the k-th arrives at t₀ + k·gap
    calls = 0
    while True:
        now = t0 + timedelta(seconds=calls * stream.service)
        while t0 + timedelta(seconds=(arrivals + 1) * stream.gap) <= now:
            arrivals += 1
            cls = stream.classes[arrivals % len(stream.classes)]
            await arrive(stream.stream_group, cls, t0 + timedelta(seconds=arrivals * stream.gap))
        w.clock.now = now
        result = await queue.call_next(pworld.actor, w.place, pworld.here)
        assert result.serving, "the stream never runs dry while N waits"
        await queue.finish(pworld.actor, w.place, pworld.here)
        if result.serving[0].ticket_id == normal:
            break
        calls += 1
        assert calls <= bound, f"N not called after {calls} calls (bound {bound})"
    w.clock.now = CALLING
