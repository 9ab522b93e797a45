"""Per-client-IP rate limit of the public endpoints (sign-in, /api/realtime, probes).

A sliding window of one minute: each IP may make ``per_minute`` requests in any 60 seconds;
the next gets 429 with ``Retry-After`` set to the seconds until its oldest request leaves
the window. The client IP is the socket's peer: behind a load balancer, configure the ASGI
server's proxy headers (uvicorn ``--forwarded-allow-ips``) so that it is the real client.
Memory is bounded by the number of IPs seen in the last minute; idle IPs are pruned.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from hub.domain.errors import RateLimited

WINDOW_SECONDS = 60.0


class PublicRateLimit:
    """Sliding-window request counter per client key.

    Args:
        per_minute: requests allowed per key in any 60 seconds.
        clock: monotonic seconds; a parameter so that tests control time.
    """

    __slots__ = ("_clock", "_hits", "_last_prune", "per_minute")

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._last_prune = clock()

    def hit(self, key: str) -> None:
        """Count one request of ``key``.

        Raises:
            RateLimited: ``key`` already made ``per_minute`` requests in the last minute.
        """
        now = self._clock()
        if now - self._last_prune > WINDOW_SECONDS:
            self._prune(now)
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - WINDOW_SECONDS:
            hits.popleft()
        if len(hits) >= self.per_minute:
            retry_after = max(1, math.ceil(hits[0] + WINDOW_SECONDS - now))
            raise RateLimited(
                f"more than {self.per_minute} requests per minute from this address",
                retry_after=retry_after,
            )
        hits.append(now)

    def _prune(self, now: float) -> None:
        self._last_prune = now
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - WINDOW_SECONDS]:
            del self._hits[key]


def count_public(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Count one request against its client IP's public rate (raises RateLimited)."""
    limiter: PublicRateLimit = connection.app.state.rate_limit
    client = connection.client
    limiter.hit(client.host if client else "unknown")


def public_rate_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard: count the request against its client IP's public rate."""
    count_public(connection)
