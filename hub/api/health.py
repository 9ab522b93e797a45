"""Liveness (``/health``, no database) and readiness (``/ready``) probes."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency

from hub.api.ratelimit import public_rate_guard
from hub.runtime import Hub, Readiness


class Alive(msgspec.Struct, frozen=True):
    status: str


@get("/health", guards=[public_rate_guard], tags=["probes"])
async def health() -> Alive:
    """The process answers; no dependency is checked."""
    return Alive(status="ok")


@get("/ready", guards=[public_rate_guard], tags=["probes"])
async def ready(hub: NamedDependency[Hub]) -> Response[Readiness]:
    """200 when the database and the bus work, else 503; the body lists the parts."""
    readiness = await hub.readiness()
    return Response(readiness, status_code=200 if readiness.ready else 503)
