"""Fixtures of the rating tests: the queue world (tests/hub/queue/world.py), and the same
world behind the real HTTP app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.hub.api.conftest import Client, make_app
from tests.hub.queue.world import Clock, QueueWorld, build_world, clock, qworld

__all__ = ["api", "clock", "qworld"]


@pytest.fixture
async def api(
    db: asyncpg.Pool, database_url: str, clock: Clock
) -> AsyncIterator[tuple[Client, QueueWorld]]:
    """The real app on the test database, its hub on the test's clock, and the queue world
    built on that hub."""
    app = make_app(database_url)
    async with AsyncTestClient(app) as client:
        hub = app.state.hub
        hub.clock = clock
        yield client, await build_world(db, hub, clock)
