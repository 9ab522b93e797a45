"""The real app (create_app with a running Hub) on the test database, through Litestar's
AsyncTestClient; sessions are opened through the auth service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient

from hub.app import create_app
from hub.config import load_settings
from hub.services import auth
from hub.services import staff as staff_service
from tests.hub.conftest import PASSWORD, SYSTEM, Org

Client = AsyncTestClient[Litestar]


def make_app(database_url: str, rate: int = 10_000) -> Litestar:
    settings = load_settings(
        environ={},
        database_url=database_url,
        http_port=0,
        gateway_port=0,
        db_pool_min=1,
        db_pool_max=4,
        worker_prestart=False,
        public_rate_per_minute=rate,
    )
    return create_app(settings)


@pytest.fixture
async def client(db: asyncpg.Pool, database_url: str) -> AsyncIterator[Client]:
    """A client of a started app on the emptied test database."""
    async with AsyncTestClient(make_app(database_url)) as test_client:
        yield test_client


@dataclass(frozen=True)
class World:
    """The test organisation, a session token per staff number, and a device in hall a1.

    ``intern_a1`` is a staff member of hall a1 without any grant."""

    org: Org
    staff: dict[str, int]
    tokens: dict[str, str]
    device_a1: int


@pytest.fixture
async def world(db: asyncpg.Pool, organisation: Org) -> World:
    intern = await staff_service.create_staff(
        db,
        SYSTEM,
        staff_service.StaffNew(
            staff_no="intern_a1", name="intern", password=PASSWORD, hall_id=organisation.hall_a1
        ),
    )
    staff = {**organisation.staff, "intern_a1": intern.id}
    tokens = {
        staff_no: (await auth.sign_in(db, staff_no, PASSWORD, hours=1)).token for staff_no in staff
    }
    device = await auth.register_device(db, SYSTEM, organisation.hall_a1, "kiosk", "kiosk-1")
    return World(org=organisation, staff=staff, tokens=tokens, device_a1=device.device.id)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: object, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code; returns its body."""
    assert isinstance(response, Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:hallhub:problem:{code}"
    assert body["title"]
    return dict(body)


def error_fields(problem: dict[str, Any]) -> list[str]:
    """The field paths of a problem's ``errors``."""
    return [str(e["field"]) for e in problem["errors"]]
