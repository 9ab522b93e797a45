"""Q1: ticket numbers restart at A001 at the hall's own midnight, and a ticket left waiting
from an earlier service day is never called.

The "server" here runs in Asia/Shanghai: the test process's ``TZ`` and the hub's PostgreSQL
sessions (``timezone`` in the URL) both. The halls are in Asia/Urumqi (UTC+6, two hours
behind the server) and Europe/Berlin (UTC+1 in winter, UTC+2 from the last Sunday of March),
so the hall's midnight, the server's midnight and UTC's midnight are three different
moments. The hub's clock is injected (tests/hub/queue/world.py ``Clock``); the hall issues
tickets around the clock (``opens_minute`` 0, ``closes_minute`` 1440).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from hub.domain.queue import service_day
from hub.services.queue import TicketRequest
from hub.services.queue_views import queue_state, window_queue
from hub.services.tickets import expire_past_days
from tests.hub.queue.world import Clock, QueueWorld, build_world
from tests.realtime.peers import hubs

SERVER_TZ = "Asia/Shanghai"
TINY = timedelta(microseconds=1)


def local(zone: str, *args: int) -> datetime:
    """A hall-local wall-clock time as an aware UTC datetime."""
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


@pytest.fixture
def server_in_shanghai(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", SERVER_TZ)
    time.tzset()
    assert time.localtime(0).tm_hour == 8  # the process's local zone is UTC+8 now
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
async def hub_in_shanghai(
    db: asyncpg.Pool, database_url: str, server_in_shanghai: None
) -> AsyncIterator[QueueWorld]:
    clock = Clock()
    async with hubs(f"{database_url}?timezone={SERVER_TZ}") as start:
        hub = await start()
        hub.clock = clock
        assert await hub.pool.fetchval("SHOW timezone") == SERVER_TZ
        yield await build_world(db, hub, clock, windows=2, code="reset")


async def _hall_in(db: asyncpg.Pool, w: QueueWorld, zone: str) -> None:
    await db.execute(
        "UPDATE hall SET timezone = $2, opens_minute = 0, closes_minute = 1440 WHERE id = $1",
        w.hall_id,
        zone,
    )


async def _issue(w: QueueWorld, at: datetime, group: str = "A") -> tuple[str, date]:
    w.clock.now = at
    issued = await w.queue.issue(
        w.hall_id, TicketRequest(group_id=w.groups[group]), source="kiosk", caller="device"
    )
    return issued.ticket.number, issued.ticket.service_day


async def _statuses(db: asyncpg.Pool, hall_id: int) -> dict[tuple[date, str], str]:
    rows = await db.fetch(
        "SELECT service_day, number, status FROM ticket WHERE hall_id = $1", hall_id
    )
    return {(r["service_day"], r["number"]): r["status"] for r in rows}


async def _never_called(db: asyncpg.Pool, hall_id: int, day: date) -> int:
    """How many of the day's tickets there are, after checking that none was called (still
    waiting, or expired by the hub's expiry job if it ran meanwhile)."""
    rows = await db.fetch(
        "SELECT status, call_count, window_id FROM ticket WHERE hall_id = $1 AND service_day = $2",
        hall_id,
        day,
    )
    assert {(r["status"], r["call_count"], r["window_id"]) for r in rows} <= {
        ("waiting", 0, None),
        ("expired", 0, None),
    }
    return len(rows)


@pytest.mark.parametrize("zone", ["Asia/Urumqi", "Europe/Berlin"])
async def test_numbers_restart_at_the_halls_midnight_and_yesterdays_tickets_are_never_called(
    db: asyncpg.Pool, hub_in_shanghai: QueueWorld, zone: str
) -> None:
    w = hub_in_shanghai
    await _hall_in(db, w, zone)
    day, today = date(2026, 11, 25), date(2026, 11, 26)
    midnight = local(zone, 2026, 11, 26)  # the hall's
    server_midnight = local(SERVER_TZ, 2026, 11, 26)
    utc_midnight = datetime(2026, 11, 26, tzinfo=UTC)
    # Shanghai's midnight comes first, then the hall's, then UTC's.
    assert server_midnight < midnight < utc_midnight

    evening = [
        await _issue(w, server_midnight - timedelta(hours=1)),
        await _issue(w, server_midnight + TINY, "B"),  # the server's date changed; not the hall's
        await _issue(w, server_midnight + timedelta(minutes=30)),
        await _issue(w, midnight - TINY),
    ]
    assert evening == [("A001", day), ("B001", day), ("A002", day), ("A003", day)]
    # The expiry job, run before the hall's midnight, leaves them waiting.
    async with db.acquire() as conn:
        await expire_past_days(conn, midnight - TINY)
    assert set((await _statuses(db, w.hall_id)).values()) == {"waiting"}

    morning = [
        await _issue(w, midnight),
        await _issue(w, midnight + timedelta(minutes=1), "B"),
        await _issue(w, utc_midnight + TINY),
    ]
    assert morning == [("A001", today), ("B001", today), ("A002", today)]
    assert service_day(midnight, zone) == today

    # A window calls today's tickets, and only those, though yesterday's still wait (the
    # expiry job has not run since midnight) and came first. It calls late in the hall's
    # day, when the server's date is already the next one.
    w.clock.now = local(SERVER_TZ, 2026, 11, 27, 1)
    assert service_day(w.clock.now, zone) == today
    await w.queue.sign_in(w.actors[0], w.place, w.windows[0])
    # B001 came a minute after A001 (rank 2 at this window: 10 minutes' delay), hours
    # before A002.
    assert [t.number for t in await window_queue(db, w.windows[0], today)] == [
        "A001",
        "B001",
        "A002",
    ]
    called = []
    for _ in range(4):
        result = await w.queue.call_next(w.actors[0], w.place, w.windows[0])
        called.append(result.called)
        if result.called is not None:
            await w.queue.finish(w.actors[0], w.place, w.windows[0])
    assert called == ["A001", "B001", "A002", None]
    assert await _never_called(db, w.hall_id, day) == 4
    # Today's counts leave yesterday's tickets out.
    async with db.acquire() as conn:
        state = await queue_state(conn, w.hall_id, w.clock.now)
    assert state.service_day == today
    assert {g.prefix: g.waiting for g in state.groups} == {"A": 0, "B": 0}
    # The expiry job after the hall's midnight ends them (if it has not run already).
    async with db.acquire() as conn:
        await expire_past_days(conn, w.clock.now)
    statuses = await _statuses(db, w.hall_id)
    assert {v for k, v in statuses.items() if k[0] == day} == {"expired"}
    assert {v for k, v in statuses.items() if k[0] == today} == {"done"}


async def test_a_23_hour_day_in_berlin_resets_at_each_local_midnight(
    db: asyncpg.Pool, hub_in_shanghai: QueueWorld
) -> None:
    """Summer time starts in Berlin on 29 March 2026 (02:00 → 03:00): that service day is
    23 hours long, from 23:00 UTC on the 28th to 22:00 UTC on the 29th."""
    w = hub_in_shanghai
    zone = "Europe/Berlin"
    await _hall_in(db, w, zone)
    start, end = local(zone, 2026, 3, 29), local(zone, 2026, 3, 30)
    assert (start, end) == (
        datetime(2026, 3, 28, 23, tzinfo=UTC),
        datetime(2026, 3, 29, 22, tzinfo=UTC),
    )
    assert [
        await _issue(w, start - TINY),
        await _issue(w, start),
        await _issue(w, start + timedelta(hours=3)),  # 03:00 CEST, just after the change
        await _issue(w, end - TINY),  # 23:59:59.999999 CEST; a fixed UTC+1 would say 22:59
        await _issue(w, end),
        await _issue(w, end + timedelta(hours=1)),
    ] == [
        ("A001", date(2026, 3, 28)),
        ("A001", date(2026, 3, 29)),
        ("A002", date(2026, 3, 29)),
        ("A003", date(2026, 3, 29)),
        ("A001", date(2026, 3, 30)),
        ("A002", date(2026, 3, 30)),
    ]
    w.clock.now = end + timedelta(hours=2)
    await w.queue.sign_in(w.actors[0], w.place, w.windows[0])
    called = []
    while (result := await w.queue.call_next(w.actors[0], w.place, w.windows[0])).called:
        called.append(result.called)
        await w.queue.finish(w.actors[0], w.place, w.windows[0])
    assert called == ["A001", "A002"]
    assert await _never_called(db, w.hall_id, date(2026, 3, 28)) == 1
    assert await _never_called(db, w.hall_id, date(2026, 3, 29)) == 3
