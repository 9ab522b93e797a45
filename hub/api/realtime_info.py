"""``GET /api/realtime``: what a page needs to open the gateway websocket."""

from __future__ import annotations

import msgspec
from litestar import get
from litestar.di import NamedDependency

from hub.api.ratelimit import public_rate_guard
from hub.runtime import Hub


class RealtimeInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Pages connect to ``ws://<host of this page>:<gateway_port>/`` and expect a ``tick``
    every ``tick_seconds``."""

    gateway_port: int
    tick_seconds: float


@get("/api/realtime", guards=[public_rate_guard], tags=["realtime"])
async def realtime_info(hub: NamedDependency[Hub]) -> RealtimeInfo:
    """The gateway's port and tick period (public)."""
    # Behind a proxy or load balancer pages use its port; with gateway_port 0 the gateway
    # binds a free port: report the bound one.
    port = hub.settings.gateway_public_port or (
        hub.gateway.port if hub.gateway is not None else hub.settings.gateway_port
    )
    return RealtimeInfo(
        gateway_port=port,
        tick_seconds=hub.settings.tick_seconds,
    )
