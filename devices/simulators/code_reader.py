"""A serial-mode QR/barcode code reader, for tests and the demo.

:func:`open_code_reader` opens the reader's end of a serial port (a pseudo-terminal in tests,
``hallhub simulate code_reader``); :meth:`CodeReaderSimulator.scan` sends one scanned code as
the reader would: prefix, the code's bytes, suffix (docs/devices/code-reader.md). The record
is built here, not with the codec's encoder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import serialx


def record(
    text: str, *, suffix: bytes = b"\r", prefix: bytes = b"", encoding: str = "utf-8"
) -> bytes:
    """The bytes a reader sends for ``text``. Raises UnicodeEncodeError for text the
    encoding cannot hold (a scripting error)."""
    return b"".join((prefix, text.encode(encoding), suffix))


class CodeReaderSimulator:
    """A code reader on an open serial port."""

    __slots__ = ("_encoding", "_port", "_prefix", "_suffix")

    def __init__(
        self,
        port: serialx.AsyncSerial,
        *,
        suffix: bytes = b"\r",
        prefix: bytes = b"",
        encoding: str = "utf-8",
    ) -> None:
        self._port = port
        self._suffix = suffix
        self._prefix = prefix
        self._encoding = encoding

    async def scan(self, text: str) -> None:
        """Send ``text`` as one scanned code, and wait until it is written."""
        data = record(text, suffix=self._suffix, prefix=self._prefix, encoding=self._encoding)
        await self._port.write(data)

    async def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (line noise, a record cut short, a wrong encoding)."""
        await self._port.write(data)


@asynccontextmanager
async def open_code_reader(
    path: str,
    *,
    baudrate: int = 9600,
    suffix: bytes = b"\r",
    prefix: bytes = b"",
    encoding: str = "utf-8",
) -> AsyncIterator[CodeReaderSimulator]:
    """A code reader on the serial port at ``path``, closed on exit."""
    async with serialx.async_serial_for_url(path, baudrate=baudrate) as port:
        yield CodeReaderSimulator(port, suffix=suffix, prefix=prefix, encoding=encoding)
