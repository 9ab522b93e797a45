"""An asyncio TCP proxy for tests that need a network which fails silently.

:meth:`TcpProxy.blackhole` stops forwarding in both directions but keeps every socket open,
as a dropped route or a stuck middlebox does: neither side sees an error or an EOF, so only an
application-level heartbeat can notice. Bytes that arrive meanwhile wait in the proxy and flow
on :meth:`TcpProxy.restore`, as TCP retransmission delivers them once a route is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

_CHUNK = 64 * 1024


class TcpProxy:
    """Forwards every connection accepted on ``host:port`` to ``upstream_host:upstream_port``.

    Args:
        upstream_host: where to forward to.
        upstream_port: where to forward to.
        host: address to listen on.
        port: port to listen on; 0 picks a free one, read it from :attr:`port` after start.
    """

    def __init__(
        self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listen = (host, port)
        self.port = port
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, *self._listen)
        self.port = self._server.sockets[0].getsockname()[1]

    def blackhole(self) -> None:
        """Stop forwarding in both directions; sockets stay open, nothing is sent or closed."""
        self._flowing.clear()

    def restore(self) -> None:
        """Forward again, starting with the bytes held back while blackholed."""
        self._flowing.set()

    async def aclose(self) -> None:
        """Stop listening and abort every proxied connection."""
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        for pump in pumps:
            pump.add_done_callback(self._tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(_CHUNK)
                if not data:
                    break
                # Read while flowing, but held back if the hole opened meanwhile.
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            # One side closed: close the other, so an EOF travels through the proxy.
            with contextlib.suppress(OSError):
                writer.close()
            self._writers.discard(writer)
