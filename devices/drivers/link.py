"""What every serial driver of the agent shares: the driver interface the supervisor runs,
the hardware identity a driver reports after connecting, the receive pump, the request with
resends, and the base of a driver that owns its port.

A driver owns one :class:`~devices.transport.serial.ByteTransport`. :meth:`Driver.connect`
opens it and checks the device answers; :meth:`Driver.watch` runs the health polling and
returns (or raises) only when the link is lost; :meth:`Driver.close` releases it. The
supervisor (devices/agent/supervisor.py) calls them in that order, again and again, with
backoff between attempts.

:class:`Pump` is the one reader of a transport: a task that hands every chunk to the driver's
decoder, and records why the link ended. :class:`PortDriver` is the part of a driver that owns
one port: its pump, connect (open, a fresh decoder, a first check), close, and health polling.
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

__all__ = ["Driver", "HardwareInfo", "PortDriver", "Pump", "await_reply", "exchange"]

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
    def transport(self) -> ByteTransport:
        return self._transport

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

    async def idle(self, seconds: float) -> None:
        """Wait ``seconds`` (between two health polls).

        Raises:
            DeviceOffline: as soon as the link ends meanwhile.
        """
        try:
            async with asyncio.timeout(seconds):
                await self.wait_lost()
        except TimeoutError:
            pass

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


async def exchange(
    pump: Pump,
    data: bytes,
    reply: asyncio.Future[T],
    timeout: float,
    what: str,
    *,
    retries: int = 0,
    on_timeout: Callable[[bool], None] | None = None,
) -> T:
    """Write ``data`` to the pump's transport and wait for ``reply`` (:func:`await_reply`);
    after ``timeout`` seconds of silence write the same bytes again, at most ``retries`` times.

    ``on_timeout`` is called after each unanswered attempt, with whether a resend follows.

    Raises:
        DeviceOffline: the link is down, or ends before the reply.
        DeviceTimeout: no reply after the resends.
    """
    for attempt in range(retries + 1):
        await pump.transport.write(data)
        try:
            return await await_reply(pump, reply, timeout, what)
        except DeviceTimeout:
            if on_timeout is not None:
                on_timeout(attempt < retries)
            if attempt == retries:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


class PortDriver:
    """The part of a driver that owns one port (:class:`Driver`'s connect, close and health
    polling): the subclass decodes what :meth:`_on_data` gets and resets its decoder in
    :meth:`_fresh_link`.

    Args:
        transport: the device's port.
        name: how logs name the device.
        on_silence, silence: as :class:`Pump`'s.
    """

    def __init__(
        self,
        transport: ByteTransport,
        name: str,
        *,
        on_silence: Callable[[], Awaitable[None]] | None = None,
        silence: float | None = None,
    ) -> None:
        self.transport = transport
        self._name = name
        self.garbage = 0
        """Bytes from the device that made no sense (line noise); the device page's count."""
        self._pump = Pump(transport, self._on_data, on_silence=on_silence, silence=silence)

    @property
    def name(self) -> str:
        return self._name

    async def close(self) -> None:
        """Stop reading and close the port; never raises."""
        await self._pump.stop()
        await self.transport.close()

    async def _open(self) -> None:
        """Close whatever was open, open the port, start reading from a fresh decoder.

        Raises:
            DeviceOffline: the port cannot be opened.
        """
        await self.close()
        await self.transport.open()
        self._fresh_link()
        self._pump.start()

    async def _connect(self, check: Callable[[], Awaitable[T]]) -> T:
        """:meth:`_open`, then ``check`` that the device answers; the port is closed again
        when it does not.

        Raises:
            DeviceOffline: the port cannot be opened, or what ``check`` raises.
        """
        await self._open()
        try:
            return await check()
        except BaseException:
            await self.close()
            raise

    async def _poll_until_lost(
        self,
        poll: Callable[[], Awaitable[object]],
        interval: Callable[[], float],
        *,
        max_missed: int,
        silent: str,
    ) -> NoReturn:
        """Run ``poll`` every ``interval()`` seconds (read each time: it may change live)
        until the link is lost.

        Raises:
            DeviceOffline: the port hung up, or ``max_missed`` polls in a row timed out
                (``<name>: <silent> (<why>)``).
        """
        missed = 0
        while True:
            await self._pump.idle(interval())
            try:
                await poll()
                missed = 0
            except DeviceTimeout as exc:
                missed += 1
                if missed >= max_missed:
                    raise DeviceOffline(f"{self._name}: {silent} ({exc})") from exc

    def _fresh_link(self) -> None:
        """Forget what an earlier link left (a partial frame): called before reading starts."""

    async def _on_data(self, data: bytes) -> None:
        """Decode bytes from the device (the pump's ``on_data``)."""
        raise NotImplementedError
