"""What every serial driver of the agent shares: the driver interface the supervisor runs,
the hardware identity a driver reports after connecting, and the receive pump.

A driver owns one :class:`~devices.transport.serial.ByteTransport`. :meth:`Driver.connect`
opens it and checks the device answers; :meth:`Driver.watch` runs the health polling and
returns (or raises) only when the link is lost; :meth:`Driver.close` releases it. The
supervisor (devices/agent/supervisor.py) calls them in that order, again and again, with
backoff between attempts.

:class:`Pump` is the one reader of a transport: a task that hands every chunk to the driver's
decoder, and records why the link ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, NoReturn, Protocol, TypeVar

import msgspec
import structlog

from devices.errors import DeviceError, DeviceOffline, DeviceTimeout
from devices.transport.serial import ByteTransport

__all__ = ["Driver", "HardwareInfo", "Pump", "await_reply"]

T = TypeVar("T")

log = structlog.get_logger("devices.drivers.link")


class HardwareInfo(msgspec.Struct, frozen=True):
    """What a device says it is (the ``device_info`` event, D6): model, firmware, and the
    parts the agent drives for it (``["printer"]``, ``["panel:3"]``)."""

    model: str
    firmware: str
    parts: list[str]


class Driver(Protocol):
    """One device as the supervisor sees it."""

    @property
    def name(self) -> str: ...

    async def connect(self) -> HardwareInfo:
        """Open the link and check the device answers.

        Raises:
            DeviceError: the device is unreachable or does not answer as expected.
        """
        ...

    async def watch(self) -> None:
        """Poll the device's health until the link is lost; returns or raises then
        (DeviceOffline, DeviceTimeout)."""
        ...

    async def close(self) -> None:
        """Release the link; never raises. :meth:`connect` may follow."""
        ...


class Pump:
    """Reads a transport in a task and hands each chunk to ``on_data``.

    ``silence``: after this many seconds without bytes following a chunk, ``on_silence`` is
    called (the protocols of docs/devices/evaluator-serial.md §5 and led-panel.md §5 end a
    partial frame on silence). The pump ends when the transport fails; :attr:`lost` is then
    set and :attr:`reason` says why.
    """

    __slots__ = ("_on_data", "_on_silence", "_silence", "_task", "_transport", "lost", "reason")

    def __init__(
        self,
        transport: ByteTransport,
        on_data: Callable[[bytes], Awaitable[None]],
        *,
        on_silence: Callable[[], Awaitable[None]] | None = None,
        silence: float | None = None,
    ) -> None:
        self._transport = transport
        self._on_data = on_data
        self._on_silence = on_silence
        self._silence = silence
        self._task: asyncio.Task[None] | None = None
        self.lost = asyncio.Event()
        self.reason = ""

    def start(self) -> None:
        """Start reading (once per open link)."""
        self.lost.clear()
        self.reason = ""
        self._task = asyncio.create_task(self._run(), name=f"pump-{self._transport.name}")

    @property
    def running(self) -> bool:
        return self._task is not None and not self.lost.is_set()

    async def wait_lost(self) -> NoReturn:
        """Wait until the link ends.

        Raises:
            DeviceOffline: always, with the reason, once the link is lost.
        """
        await self.lost.wait()
        raise DeviceOffline(self.reason or f"{self._transport.name}: link lost")

    async def stop(self) -> None:
        """Stop reading (the transport stays as it is)."""
        task, self._task = self._task, None
        if not self.lost.is_set():
            self.reason = "stopped"
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        self.lost.set()

    async def _run(self) -> None:
        pending = False  # bytes arrived since the last silence: a frame may be partial
        try:
            while True:
                if pending and self._silence is not None:
                    try:
                        async with asyncio.timeout(self._silence):
                            data = await self._transport.read()
                    except TimeoutError:
                        pending = False
                        if self._on_silence is not None:
                            await self._on_silence()
                        continue
                else:
                    data = await self._transport.read()
                pending = True
                await self._on_data(data)
        except DeviceError as exc:
            self.reason = str(exc)
        except Exception as exc:  # a decoder or handler bug must end the link, not hang it
            log.exception("pump_failed", port=self._transport.name)
            self.reason = f"{self._transport.name}: {type(exc).__name__}: {exc}"
        finally:
            self.lost.set()


async def await_reply(pump: Pump, reply: asyncio.Future[T], timeout: float, what: str) -> T:
    """The result of ``reply``, unless the link ends or ``timeout`` seconds pass first.

    Raises:
        DeviceOffline: the pump reports the link lost (or stopped) before the reply.
        DeviceTimeout: no reply in time.
    """
    if pump.lost.is_set():
        raise DeviceOffline(pump.reason or f"{what}: link lost")
    lost = asyncio.ensure_future(pump.lost.wait())
    both: set[asyncio.Future[Any]] = {reply, lost}
    try:
        done, _ = await asyncio.wait(both, timeout=timeout, return_when="FIRST_COMPLETED")
    finally:
        lost.cancel()
    if reply in done:
        return reply.result()
    if pump.lost.is_set():
        raise DeviceOffline(pump.reason or f"{what}: link lost")
    raise DeviceTimeout(f"{what}: no reply within {timeout:g} s")
