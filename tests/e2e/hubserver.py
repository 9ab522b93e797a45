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

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import uvicorn

from hub.app import create_app
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
    }
    values.update(overrides)
    return Settings(**values)


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, telling us when its sockets are bound, and leaving signals alone:
    uvicorn re-raises a signal it captured once it stops, which would end the test run."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.bound = asyncio.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.bound.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HubServer:
    """One hub process's serving parts, in this process; :meth:`start` / :meth:`stop` may
    alternate. Hubs of one HubServer share a MemoryBroker, as restarted processes share Redis.

    Args:
        settings: with non-zero ``http_port`` and ``gateway_port`` (see :func:`server_settings`).
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.http_port or not settings.gateway_port:
            raise ValueError("a HubServer restarts on the same ports: give both explicitly")
        self.settings = settings
        self.broker = MemoryBroker()
        self.hub: Hub | None = None
        self._server: _Uvicorn | None = None
        self._serving: asyncio.Task[None] | None = None

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

    async def start(self) -> Hub:
        """Start a new Hub and serve it; returns once HTTP and the gateway listen.

        Raises:
            RuntimeError: uvicorn or the Hub did not start (the reason is in the log).
        """
        if self.hub is not None:
            return self.hub
        hub = Hub(self.settings, broker=self.broker)
        config = uvicorn.Config(
            create_app(self.settings, hub),
            host=self.settings.host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="on",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        server = _Uvicorn(config)
        serving = asyncio.create_task(server.serve(), name="e2e-uvicorn")
        bound = asyncio.create_task(server.bound.wait())
        await asyncio.wait([serving, bound], return_when=asyncio.FIRST_COMPLETED)
        if not server.bound.is_set():
            bound.cancel()
            # uvicorn ends a failed start-up with sys.exit(): SystemExit in the task.
            with contextlib.suppress(SystemExit, Exception):
                await serving
            raise RuntimeError("the hub did not start; see the log")
        hub.set_http_port(self.settings.http_port)
        self.hub, self._server, self._serving = hub, server, serving
        return hub

    async def stop(self) -> None:
        """Stop as SIGTERM does: uvicorn closes HTTP, the lifespan stops the Hub (peers get
        1012 and go offline)."""
        server, serving = self._server, self._serving
        self.hub = self._server = self._serving = None
        if server is None or serving is None:
            return
        server.should_exit = True
        await serving

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
