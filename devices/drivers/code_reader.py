"""The agent's driver for a serial-mode QR/barcode code reader (D5) on a serial port.

Protocol: docs/devices/code-reader.md (records in :mod:`devices.codecs.code_reader`). The
reader only talks: each decoded code is one record. There is no request, no reply and no
status to poll, so the link is "online" while the port is open and "offline" when it hangs up
(a USB reader unplugged); a reader that is powered but broken cannot be told from an idle one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from devices.codecs.code_reader import CodeReaderDecoder, Encoding, ScannedCode
from devices.codecs.wire import Garbage
from devices.drivers.link import HardwareInfo, PortDriver
from devices.transport.serial import ByteTransport

__all__ = ["CodeReaderDriver"]

log = structlog.get_logger("devices.drivers.code_reader")


class CodeReaderDriver(PortDriver):
    """One code reader on ``transport``; each scanned code is awaited with ``on_code``.

    Args:
        transport: the reader's port.
        name: how logs name it.
        suffix, prefix, encoding, max_len: the reader's record settings
            (:class:`~devices.codecs.code_reader.CodeReaderDecoder`).
        on_code: awaited with each code, in the order scanned.
    """

    def __init__(
        self,
        transport: ByteTransport,
        *,
        name: str = "code_reader",
        suffix: bytes = b"\r",
        prefix: bytes = b"",
        encoding: Encoding = "auto",
        max_len: int = 1024,
        on_code: Callable[[ScannedCode], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(transport, name)
        self._settings = (suffix, prefix, encoding, max_len)
        self.on_code = on_code
        self.scanned = 0
        self._decoder = self._new_decoder()

    def _new_decoder(self) -> CodeReaderDecoder:
        suffix, prefix, encoding, max_len = self._settings
        return CodeReaderDecoder(suffix=suffix, prefix=prefix, encoding=encoding, max_len=max_len)

    async def connect(self) -> HardwareInfo:
        """Open the port (a record cut by an earlier hang-up is forgotten).

        Raises:
            DeviceOffline: the port cannot be opened.
        """
        await self._open()
        return HardwareInfo(model="serial code reader", firmware="", parts=["code_reader"])

    async def watch(self) -> None:
        """Return (raise) when the port hangs up; scanned codes flow meanwhile.

        Raises:
            DeviceOffline: the port hung up or failed.
        """
        await self._pump.wait_lost()

    def _fresh_link(self) -> None:
        self._decoder = self._new_decoder()

    async def _on_data(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, Garbage):
                self.garbage += item.skipped
                log.info("code_reader_garbage", reader=self._name, code=item.code)
                continue
            self.scanned += 1
            if self.on_code is not None:
                try:
                    await self.on_code(item)
                except Exception:  # the reader goes on whatever the listener does
                    log.exception("code_reader_listener_failed", reader=self._name)
