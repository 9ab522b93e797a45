"""Run one hub process: uvicorn serving the Litestar app, whose lifespan runs the Hub."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import uvicorn

from hub.app import create_app
from hub.config import Settings
from hub.runtime import Hub

log = structlog.get_logger("hub.server")

OnReady = Callable[[Hub, int], Awaitable[None]]


class _Server(uvicorn.Server):
    """uvicorn's server, telling us when its sockets are bound."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.bound = asyncio.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.bound.set()


async def run_server(settings: Settings, on_ready: OnReady | None = None) -> None:
    """Serve until SIGINT/SIGTERM; then peers are closed with 1012 and the hub stops.

    Args:
        settings: the process's settings.
        on_ready: awaited once HTTP and the gateway listen, with the hub and the HTTP port.
    """
    hub = Hub(settings)
    app = create_app(settings, hub)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        ws="none",
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(), name="uvicorn")
    bound = asyncio.create_task(server.bound.wait())
    await asyncio.wait([serving, bound], return_when=asyncio.FIRST_COMPLETED)
    if not server.bound.is_set():
        bound.cancel()
        await serving  # start-up failed: uvicorn has logged why
        raise SystemExit(1)
    port = server.servers[0].sockets[0].getsockname()[1]
    hub.set_http_port(port)
    assert hub.gateway is not None
    log.info(
        "hub_serving",
        http=f"http://{settings.host}:{port}/",
        gateway=f"ws://{settings.host}:{hub.gateway.port}/",
        process=hub.process_id,
    )
    if on_ready is not None:
        await on_ready(hub, port)
    await serving
