"""The real hub in the test's process: a :class:`~hub.runtime.Hub` and uvicorn serving
``create_app(settings, hub)`` (pages, HTTP API, gateway) on the test database, as
``hallhub serve`` runs it (hub/server.py).

The ports are fixed when the settings are made, so the server can be stopped and started again
where the pages expect it, as a restarted process would be::

    settings = server_settings(database_url)
    async with HubServer(settings) as server:
        await page.goto(f"{server.base_url}/status/?hall=1")
        await server.stop()      # peers closed with 1012, the Hub stopped
        await server.start()     # a new Hub (new process id) on the same ports
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any

from hub import server
from hub.config import Settings
from hub.runtime import Hub
from realtime.bus import MemoryBroker

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (bound to 0, then released)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def server_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a hub on the test database: fixed free ports, fast ticks, one worker.

    One worker process: the machine has two cores, and the loop and PostgreSQL need one.
    """
    values: dict[str, Any] = {
        "database_url": database_url,
        "host": HOST,
        "http_port": free_port(),
        "gateway_port": free_port(),
        "tick_seconds": 0.5,
        "reconcile_seconds": 0.5,
        "db_pool_min": 1,
        "db_pool_max": 4,
        "worker_processes": 1,
        "worker_prestart": False,
    }
    values.update(overrides)
    return Settings(**values)


class HubServer(server.HubServer):
    """One hub process's serving parts, in this process; :meth:`start` / :meth:`stop` may
    alternate. Hubs of one HubServer share a MemoryBroker, as restarted processes share Redis.

    Args:
        settings: with non-zero ``http_port`` and ``gateway_port`` (see :func:`server_settings`).
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.http_port or not settings.gateway_port:
            raise ValueError("a HubServer restarts on the same ports: give both explicitly")
        self.broker = MemoryBroker()
        super().__init__(settings, signals=False, broker=self.broker)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.http_port}"

    @property
    def gateway_url(self) -> str:
        """The gateway itself (devices connect here, not through a page's proxy)."""
        return f"ws://{self.settings.host}:{self.settings.gateway_port}/"

    def running_hub(self) -> Hub:
        if self.hub is None:
            raise RuntimeError("the hub server is stopped")
        return self.hub

    async def __aenter__(self) -> HubServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
