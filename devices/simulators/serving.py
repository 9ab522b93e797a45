"""What the serial simulators share (and nothing of :mod:`devices.codecs`, which they test):
CRC-16/MODBUS computed bit by bit (the codecs use a table), the port a simulator serves, and
the loop that answers each chunk the host sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import serialx

__all__ = ["answer", "crc16_modbus", "open_port"]


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS, bit by bit (docs/devices/evaluator-serial.md and led-panel.md §2)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


@asynccontextmanager
async def open_port(
    path: str, baudrate: int, ready: asyncio.Event | None = None
) -> AsyncIterator[serialx.AsyncSerial]:
    """The serial port ``path``, open inside; ``ready`` is set once it is. Bytes the host
    sends before that are lost (opening a port discards what is pending).

    Raises:
        serialx.SerialException, OSError: the port cannot be opened.
    """
    async with serialx.async_serial_for_url(path, baudrate=baudrate) as port:
        if ready is not None:
            ready.set()
        yield port


async def answer(port: serialx.AsyncSerial, feed: Callable[[bytes], bytes]) -> None:
    """Hand each chunk the host sends to ``feed`` and write back what it returns, until the
    port reaches end of file.

    Raises:
        serialx.SerialException, OSError: the port fails (a pty whose other end went away
            raises EIO).
    """
    while data := await port.read(4096):
        reply = feed(data)
        if reply:
            await port.write(reply)
