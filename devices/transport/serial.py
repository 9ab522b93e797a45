"""Serial ports for the device agent, on serialx (native asyncio on Windows, Linux and macOS).

:class:`SerialPort` opens a port by name (``COM3``, ``/dev/ttyUSB0``, a
``/dev/serial/by-id/…`` link, or a serialx URL such as ``socket://host:4001`` for a serial
server) and reads and writes bytes. Every failure of the port (it does not exist, it is held by
another program, the USB adapter was pulled, the pty's other end went away) becomes
:class:`~devices.errors.DeviceOffline` at this boundary, so drivers and the supervisor deal with
one error for "the link is gone". serialx surfaces a hung-up tty as ``OSError(EIO)`` on read
(``descriptor_transport._read_ready``), which is what the tests' unplug produces.

:class:`ByteTransport` is the interface drivers use; tests and other links (TCP serial
servers) can provide their own.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from types import TracebackType
from typing import Protocol

import serialx
import structlog

from devices.errors import DeviceOffline

__all__ = ["ByteTransport", "SerialPort"]

log = structlog.get_logger("devices.transport.serial")

# What the OS and serialx raise for a port that is missing, busy, or hung up.
_PORT_ERRORS = (OSError, serialx.SerialException, ValueError)
_CLOSE_TIMEOUT = 2.0


class ByteTransport(Protocol):
    """A bidirectional byte link to one device (or one bus)."""

    @property
    def name(self) -> str:
        """How logs name the link (the port)."""
        ...

    @property
    def baudrate(self) -> int:
        """Line speed in bit/s, for timing estimates (0 if not a serial line)."""
        ...

    @property
    def is_open(self) -> bool: ...

    async def open(self) -> None:
        """Open the link. Raises DeviceOffline."""
        ...

    async def read(self) -> bytes:
        """The next bytes received (at least one). Raises DeviceOffline at EOF or failure."""
        ...

    async def write(self, data: bytes) -> None:
        """Send ``data`` (queued to the OS). Raises DeviceOffline."""
        ...

    async def close(self) -> None:
        """Release the link; never raises. The link may be opened again."""
        ...


class SerialPort:
    """One serial port, opened on demand and reopened after :meth:`close`.

    Args:
        port: the port name or serialx URL.
        baudrate: line speed; the format is 8N1 without flow control (what every device page
            in docs/devices/ specifies).
        read_size: most bytes one :meth:`read` returns.
    """

    __slots__ = ("_port", "_serial", "baudrate", "port", "read_size")

    def __init__(self, port: str, *, baudrate: int = 9600, read_size: int = 4096) -> None:
        self.port = port
        self.baudrate = baudrate
        self.read_size = read_size
        self._serial: serialx.AsyncSerial | None = None

    @property
    def name(self) -> str:
        return serialx.redact_uri(self.port)

    @property
    def is_open(self) -> bool:
        return self._serial is not None and self._serial.is_open

    async def open(self) -> None:
        """Open the port (a no-op when open).

        Raises:
            DeviceOffline: the port does not exist, is in use, or refuses the settings.
        """
        if self.is_open:
            return
        await self.close()
        serial = serialx.async_serial_for_url(self.port, baudrate=self.baudrate)
        try:
            await serial.open()
        except _PORT_ERRORS as exc:
            raise DeviceOffline(f"{self.name}: cannot open: {_describe(exc)}") from exc
        self._serial = serial

    async def read(self) -> bytes:
        """Wait for bytes from the device.

        Raises:
            DeviceOffline: the port is closed, hung up (EOF, EIO) or failed.
        """
        serial = self._require()
        try:
            data = await serial.read(self.read_size)
        except _PORT_ERRORS as exc:
            raise DeviceOffline(f"{self.name}: read failed: {_describe(exc)}") from exc
        if not data:
            raise DeviceOffline(f"{self.name}: port hung up")
        return data

    async def write(self, data: bytes) -> None:
        """Write ``data`` and wait until the OS took it (or the buffer drained below its mark).

        Raises:
            DeviceOffline: the port is closed or the write failed.
        """
        serial = self._require()
        try:
            await serial.write(data)
        except _PORT_ERRORS as exc:
            raise DeviceOffline(f"{self.name}: write failed: {_describe(exc)}") from exc
        except RuntimeError as exc:  # asyncio: "handler is closed" on a transport going away
            raise DeviceOffline(f"{self.name}: write failed: {exc}") from exc

    async def close(self) -> None:
        """Close the port; never raises. Shielded, so a cancelled caller still releases it."""
        serial, self._serial = self._serial, None
        if serial is not None:
            await asyncio.shield(_close(serial))

    def _require(self) -> serialx.AsyncSerial:
        serial = self._serial
        if serial is None or not serial.is_open:
            raise DeviceOffline(f"{self.name}: port not open")
        return serial

    async def __aenter__(self) -> SerialPort:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"SerialPort({self.name!r}, baudrate={self.baudrate})"


async def _close(serial: serialx.AsyncSerial) -> None:
    # A hung-up port may never finish a graceful close (pending writes): abort after a while.
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await serial.close()
    except (TimeoutError, *_PORT_ERRORS, RuntimeError) as exc:
        log.debug("serial_close_aborted", error=_describe(exc))
        with suppress(*_PORT_ERRORS, RuntimeError):
            serial.abort()


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
