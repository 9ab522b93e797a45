"""Probes, metrics, realtime info, the OpenAPI page and the public rate limit."""

from __future__ import annotations

import asyncio

import asyncpg
from litestar.testing import AsyncTestClient

from hub.api.ratelimit import PublicRateLimit
from hub.domain.errors import RateLimited
from hub.runtime import Hub
from tests.hub.api.conftest import Client, assert_problem, make_app


async def _close_pool(client: Client) -> None:
    # The app (and its pool) runs on the test client's portal loop, in another thread.
    hub: Hub = client.app.state.hub
    await asyncio.to_thread(client.blocking_portal.call, hub.pool.close)


async def test_health_answers_without_the_database(client: Client) -> None:
    """/health is 200 even when the pool is gone."""
    await _close_pool(client)
    response = await client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_is_200_while_the_database_answers(client: Client) -> None:
    """/ready reports each part and 200 when all are up."""
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"database": True, "bus": True, "bus_kind": "memory"}


async def test_ready_is_503_once_the_pool_is_closed(client: Client) -> None:
    """A hub whose database is unreachable is not ready, and says which part failed."""
    await _close_pool(client)
    response = await client.get("/ready")
    assert response.status_code == 503
    assert response.json()["database"] is False


async def test_metrics_are_prometheus_text(client: Client) -> None:
    """/metrics serves the registry in the text exposition format."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=1.0.0")
    assert "# TYPE hallhub_peers_connected gauge" in response.text


async def test_realtime_info_gives_the_bound_gateway_port_and_tick(client: Client) -> None:
    """With gateway_port 0 the page learns the port the gateway really bound."""
    hub: Hub = client.app.state.hub
    assert hub.gateway is not None
    response = await client.get("/api/realtime")
    assert response.json() == {"gateway_port": hub.gateway.port, "tick_seconds": 5.0}
    assert hub.gateway.port > 0


async def test_the_openapi_schema_lists_the_api(client: Client) -> None:
    """The OpenAPI document at /schema/openapi.json describes the endpoints."""
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert {"/api/halls", "/api/devices", "/api/audit", "/api/auth/sign-in"} <= set(paths)


async def test_public_endpoints_answer_429_with_retry_after_past_the_rate(
    db: asyncpg.Pool, database_url: str
) -> None:
    """The fourth public request within a minute from one address gets 429 + Retry-After."""
    async with AsyncTestClient(make_app(database_url, rate=3)) as client:
        for path in ("/api/realtime", "/health", "/api/realtime"):
            assert (await client.get(path)).status_code == 200
        response = await client.post("/api/auth/sign-in", json={"staff_no": "x", "password": "y"})
        assert_problem(response, 429, "rate_limited")
        assert 1 <= int(response.headers["retry-after"]) <= 60


def test_the_rate_limit_slides_per_address() -> None:
    """Requests leave the window after 60 s; another address has its own budget."""
    now = [1000.0]
    limit = PublicRateLimit(2, clock=lambda: now[0])
    limit.hit("10.0.0.1")
    now[0] += 30
    limit.hit("10.0.0.1")
    limit.hit("10.0.0.2")
    try:
        limit.hit("10.0.0.1")
    except RateLimited as exc:
        assert exc.retry_after == 30
    else:
        raise AssertionError("the third request within a minute was allowed")
    now[0] += 30
    limit.hit("10.0.0.1")
