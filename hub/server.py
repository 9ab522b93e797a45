"""Run one hub process: uvicorn serving the Litestar app, whose lifespan runs the Hub."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import structlog
import uvicorn

from hub.app import create_app
from hub.config import Settings
from hub.runtime import Hub
from realtime.bus import MemoryBroker

log = structlog.get_logger("hub.server")

OnReady = Callable[[Hub, int], Awaitable[None]]


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, telling us when its sockets are bound; optionally leaving signals
    alone (uvicorn re-raises a signal it captured once it stops: right for a process, wrong
    inside a test run)."""

    def __init__(self, config: uvicorn.Config, signals: bool) -> None:
        super().__init__(config)
        self.bound = asyncio.Event()
        self._signals = signals

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.bound.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if self._signals:
            with super().capture_signals():
                yield
        else:
            yield


class HubServer:
    """HTTP (uvicorn) and a Hub, started and stopped together; may start again.

    Args:
        settings: the process's settings.
        signals: let uvicorn handle SIGINT/SIGTERM (a real process) or not (tests).
        broker: MemoryBroker for the hubs of this server (tests: shared across restarts).
    """

    def __init__(
        self, settings: Settings, *, signals: bool = True, broker: MemoryBroker | None = None
    ) -> None:
        self.settings = settings
        self.hub: Hub | None = None
        self.http_port = 0
        self._signals = signals
        self._broker = broker
        self._server: _Uvicorn | None = None
        self._serving: asyncio.Task[None] | None = None

    async def start(self) -> Hub:
        """Start a new Hub and serve it; returns once HTTP and the gateway listen.

        Raises:
            RuntimeError: uvicorn or the Hub did not start (the reason is in the log).
        """
        if self.hub is not None:
            return self.hub
        settings = self.settings
        hub = Hub(settings, broker=self._broker)
        config = uvicorn.Config(
            create_app(settings, hub),
            host=settings.host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="on",
            ws="none",
            timeout_graceful_shutdown=5,
        )
        server = _Uvicorn(config, self._signals)
        serving = asyncio.create_task(server.serve(), name="uvicorn")
        bound = asyncio.create_task(server.bound.wait())
        await asyncio.wait([serving, bound], return_when=asyncio.FIRST_COMPLETED)
        if not server.bound.is_set():
            bound.cancel()
            # uvicorn ends a failed start-up with sys.exit(): SystemExit in the task.
            with contextlib.suppress(SystemExit, Exception):
                await serving
            raise RuntimeError("the hub did not start; see the log")
        self.http_port = server.servers[0].sockets[0].getsockname()[1]
        hub.set_http_port(self.http_port)
        self.hub, self._server, self._serving = hub, server, serving
        return hub

    async def wait(self) -> None:
        """Until serving ends (a signal, or :meth:`stop`)."""
        if self._serving is not None:
            await self._serving

    async def stop(self) -> None:
        """Stop as SIGTERM does: uvicorn closes HTTP, the lifespan stops the Hub (peers get
        1012 and go offline)."""
        server, serving = self._server, self._serving
        self.hub = self._server = self._serving = None
        if server is None or serving is None:
            return
        server.should_exit = True
        await serving


async def run_server(settings: Settings, on_ready: OnReady | None = None) -> None:
    """Serve until SIGINT/SIGTERM; then peers are closed with 1012 and the hub stops.

    Args:
        settings: the process's settings.
        on_ready: awaited once HTTP and the gateway listen, with the hub and the HTTP port.
    """
    server = HubServer(settings)
    try:
        hub = await server.start()
    except RuntimeError:
        raise SystemExit(1) from None
    assert hub.gateway is not None
    log.info(
        "hub_serving",
        http=f"http://{settings.host}:{server.http_port}/",
        gateway=f"ws://{settings.host}:{hub.gateway.port}/",
        process=hub.process_id,
    )
    if on_ready is not None:
        await on_ready(hub, server.http_port)
    await server.wait()
