"""A hall with service groups, windows serving them, and staff signed in: the queue tests'
world, built with plain SQL on the real test database, plus a started Hub whose clock the
test controls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from hub.domain.access import Grant, Place, staff_principal
from hub.runtime import Hub
from hub.services.audit import Actor
from hub.services.queue import QueueService
from tests.factories import make_hall, make_staff
from tests.realtime.peers import hubs

# 10:00 in Shanghai: inside the default issuing hours (09:00–17:00).
MORNING = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


class Clock:
    """A settable clock; ``advance`` moves it on."""

    def __init__(self, now: datetime = MORNING) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class QueueWorld:
    hub: Hub
    clock: Clock
    hall_id: int
    place: Place
    windows: list[int]
    groups: dict[str, int]
    staff: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    actors: list[Actor] = field(default_factory=list)

    @property
    def queue(self) -> QueueService:
        assert self.hub.queue is not None
        return self.hub.queue


async def add_group(db: asyncpg.Pool, hall_id: int, prefix: str, name: str, **cols: object) -> int:
    names = ["hall_id", "prefix", "name", *cols]
    values = [hall_id, prefix, name, *cols.values()]
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    group_id: int = await db.fetchval(
        f"INSERT INTO service_group ({', '.join(names)}) VALUES ({marks}) RETURNING id", *values
    )
    return group_id


async def serve(db: asyncpg.Pool, window_id: int, *group_ids: int) -> None:
    """The window serves these groups, in this order of preference."""
    await db.executemany(
        "INSERT INTO window_group (window_id, group_id, rank) VALUES ($1, $2, $3)",
        [(window_id, g, rank) for rank, g in enumerate(group_ids, start=1)],
    )


async def build_world(
    db: asyncpg.Pool, hub: Hub, clock: Clock, windows: int = 3, code: str = "q1"
) -> QueueWorld:
    hall = await make_hall(db, code=code, windows=windows)
    place = Place(region_path=f"/{hall.province_id}/{hall.city_id}/", hall_id=hall.hall_id)
    groups = {
        "A": await add_group(db, hall.hall_id, "A", "社保业务"),
        "B": await add_group(db, hall.hall_id, "B", "不动产登记"),
    }
    world = QueueWorld(hub, clock, hall.hall_id, place, hall.window_ids, groups)
    for i, window_id in enumerate(hall.window_ids):
        await serve(db, window_id, groups["A"], groups["B"])
        staff_id, token = await make_staff(
            db, f"{code}-W{i + 1}", [("window_staff", "hall", hall.hall_id)], name=f"窗口{i + 1}"
        )
        world.staff.append(staff_id)
        world.tokens.append(token)
        principal = staff_principal(
            staff_id, f"窗口{i + 1}", (Grant("window_staff", "hall", hall.hall_id),)
        )
        world.actors.append(Actor.of(principal, principal.grants[0]))
    return world


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def qworld(db: asyncpg.Pool, database_url: str, clock: Clock) -> AsyncIterator[QueueWorld]:
    async with hubs(database_url) as start:
        hub = await start()
        hub.clock = clock
        yield await build_world(db, hub, clock)
