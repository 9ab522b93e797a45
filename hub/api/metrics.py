"""Prometheus metrics of this process in the text exposition format (``/metrics``)."""

from __future__ import annotations

from litestar import Response, get
from prometheus_client import generate_latest

from hub.api.ratelimit import public_rate_guard
from hub.metrics import REGISTRY

# prometheus_client.CONTENT_TYPE_LATEST without the charset, which Litestar appends itself.
MEDIA_TYPE = "text/plain; version=1.0.0"


@get("/metrics", guards=[public_rate_guard], tags=["probes"], include_in_schema=False)
async def metrics() -> Response[bytes]:
    """Every metric of hub.metrics.REGISTRY."""
    return Response(generate_latest(REGISTRY), media_type=MEDIA_TYPE)
