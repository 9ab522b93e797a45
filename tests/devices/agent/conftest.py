"""Fixtures of the agent tests that need the hub: a hall on the test database, a started hub."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from hub.runtime import Hub
from tests.devices.agent.hubside import Hall
from tests.factories import make_hall
from tests.realtime.peers import hubs


@pytest.fixture
async def hall(db: asyncpg.Pool) -> Hall:
    place = await make_hall(db, "agent-hall")
    return Hall(place.hall_id, place.window_ids)


@pytest.fixture
async def hub(database_url: str, db: asyncpg.Pool) -> AsyncIterator[Hub]:
    async with hubs(database_url) as start:
        yield await start()
