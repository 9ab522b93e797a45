"""The agent's driver for an ESC/POS thermal ticket printer (D1, Q7) on a serial port.

Protocol: docs/devices/printer.md (bytes in :mod:`devices.codecs.escpos`). The driver

- polls ``DLE EOT 1, 2, 4`` every ``poll_seconds`` (one request of three bytes, answered by
  three bytes in order; one request at a time per port) and, with ``asb``, enables Automatic
  Status Back (``GS a 0E``) after every connect so a change is seen at once;
- reports every change of :class:`PrinterStatus` (and the first status after each connect) to
  ``on_status``;
- prints a ticket only when the printer can print now: paper out, cover open, an error or
  offline fail fast with that reason, and nothing is sent;
- after a ticket, waits for it to be sent and printed (bytes at the line speed plus
  ``print_seconds``, cut short by an ASB saying the printer stopped) and polls again: a printer
  that ran out of paper, opened or failed while printing reports the ticket **failed**, so the
  kiosk offers the e-ticket (Q7: nothing printed is lost silently). ``DLE EOT`` is executed on
  receipt, ahead of the print data still buffered (Epson: "real-time command"), which is why
  the re-check must wait for the print instead of following the ticket bytes at once. A paper
  end sensor that fires at the end of a ticket cannot tell whether that ticket was cut short:
  it counts as failed; a citizen may get both a paper and an e-ticket, never neither.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal, TypeAlias

import msgspec
import structlog

from devices.codecs.escpos import (
    INIT,
    AsbStatus,
    OfflineCause,
    PaperSensor,
    PrintedTicket,
    PrinterInfo,
    PrinterReplyDecoder,
    PrinterStatus,
    StatusReply,
    encode_asb,
    encode_status_request,
    encode_ticket,
    status_from_asb,
    status_from_replies,
)
from devices.codecs.wire import Garbage
from devices.drivers.link import HardwareInfo, PortDriver, exchange
from devices.errors import DeviceOffline, DeviceTimeout, EncodeError
from devices.transport.serial import ByteTransport

__all__ = ["PrintFailure", "PrintResult", "PrinterDriver", "failure_of"]

log = structlog.get_logger("devices.drivers.printer")

PrintFailure: TypeAlias = Literal["paper_out", "cover_open", "offline", "error"]

_POLL = encode_status_request(1) + encode_status_request(2) + encode_status_request(4)
_BITS_PER_BYTE = 10  # 8N1: start, 8 data, stop


class PrintResult(msgspec.Struct, frozen=True):
    """How a print ended: ``ok``, or the ``reason`` it failed; ``status`` as last seen."""

    ok: bool
    reason: PrintFailure | None = None
    status: PrinterStatus | None = None


def failure_of(status: PrinterStatus) -> PrintFailure | None:
    """Why a printer in ``status`` cannot print now, or None when it can (paper low can)."""
    if status.paper == "out":
        return "paper_out"
    if status.cover_open:
        return "cover_open"
    if status.error:
        return "error"
    if not status.online:
        return "offline"
    return None


class PrinterDriver(PortDriver):
    """One ESC/POS printer on ``transport``.

    Args:
        transport: the printer's port.
        name: how logs name it.
        poll_seconds: status polling interval (D6: set from the hub).
        asb: enable Automatic Status Back after each connect.
        reply_timeout: seconds for the three status bytes of one poll.
        max_missed: polls in a row without a reply before the link counts as lost (a printer
            answers ``DLE EOT`` even offline: silence means no printer).
        print_seconds: how long the printer takes to print and cut a ticket once received.
        width_chars: columns of the paper (42 for 80 mm, 32 for 58 mm).
        model: reported as the model (ESC/POS has no portable model query).
        on_status: awaited with each new status.
    """

    def __init__(
        self,
        transport: ByteTransport,
        *,
        name: str = "printer",
        poll_seconds: float = 2.0,
        asb: bool = True,
        reply_timeout: float = 1.0,
        max_missed: int = 2,
        print_seconds: float = 1.0,
        width_chars: int = 42,
        model: str = "ESC/POS",
        on_status: Callable[[PrinterStatus], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(transport, name)
        self.poll_seconds = poll_seconds
        self.asb = asb
        self.reply_timeout = reply_timeout
        self.max_missed = max_missed
        self.print_seconds = print_seconds
        self.width_chars = width_chars
        self.model = model
        self.on_status = on_status
        self.status: PrinterStatus | None = None
        self.printed = 0
        self._decoder = PrinterReplyDecoder()
        self._lock = asyncio.Lock()  # one request on the port at a time
        self._print_lock = asyncio.Lock()  # one ticket at a time, with its re-check
        self._replies: list[StatusReply] = []
        self._waiter: asyncio.Future[list[StatusReply]] | None = None
        self._changed = asyncio.Event()

    async def connect(self) -> HardwareInfo:
        """Open the port, initialise the printer, enable ASB, read the first status.

        Raises:
            DeviceOffline: the port cannot be opened or hung up.
            DeviceTimeout: no status reply: nothing that speaks ESC/POS is there.
        """
        await self._connect(self._initialise)
        return HardwareInfo(model=self.model, firmware="", parts=["printer"])

    def _fresh_link(self) -> None:
        self._decoder.reset()
        self.status = None  # the first status after a connect is always reported

    async def _initialise(self) -> PrinterStatus:
        # ESC @ drops a half-sent ticket of an earlier link; GS a again, as ESC @ may
        # reset the ASB setting on some models (docs/devices/printer.md §6).
        await self.transport.write(INIT + (encode_asb() if self.asb else b""))
        return await self.poll()

    async def watch(self) -> None:
        """Poll every ``poll_seconds`` until the link is lost.

        Raises:
            DeviceOffline: the port hung up, or ``max_missed`` polls got no reply.
        """
        await self._poll_until_lost(
            self.poll,
            lambda: self.poll_seconds,
            max_missed=self.max_missed,
            silent="no status reply",
        )

    async def poll(self) -> PrinterStatus:
        """Ask ``DLE EOT 1, 2, 4`` now; the merged status (reported if it changed).

        Raises:
            DeviceOffline: the link is down.
            DeviceTimeout: the three replies did not come within ``reply_timeout``.
        """
        async with self._lock:
            waiter: asyncio.Future[list[StatusReply]]
            waiter = asyncio.get_running_loop().create_future()
            self._replies = []
            self._waiter = waiter
            for n in (1, 2, 4):
                self._decoder.expect(n)
            try:
                printer, offline, paper = await exchange(
                    self._pump, _POLL, waiter, self.reply_timeout, f"{self._name}: DLE EOT"
                )
            except BaseException:
                # A late reply must not answer the next poll (docs/devices/printer.md §5).
                self._decoder.reset()
                raise
            finally:
                self._waiter = None
        assert isinstance(printer, PrinterInfo)
        assert isinstance(offline, OfflineCause)
        assert isinstance(paper, PaperSensor)
        status = status_from_replies(printer, offline, paper)
        await self._set_status(status)
        return status

    async def print_ticket(self, ticket: PrintedTicket) -> PrintResult:
        """Print ``ticket`` if the printer can, and tell whether it came out.

        Never raises for device trouble: every failure is a :class:`PrintResult` with a
        reason (``offline`` when the port is down or silent, ``error`` for a ticket that
        cannot be encoded).
        """
        async with self._print_lock:
            try:
                data = encode_ticket(ticket, width_chars=self.width_chars)
            except EncodeError as exc:
                log.warning("printer_ticket_unprintable", printer=self._name, error=str(exc))
                return PrintResult(ok=False, reason="error", status=self.status)
            try:
                before = await self.poll()
            except (DeviceOffline, DeviceTimeout):
                return PrintResult(ok=False, reason="offline", status=self.status)
            reason = failure_of(before)
            if reason is not None:
                return PrintResult(ok=False, reason=reason, status=before)
            self._changed.clear()
            try:
                async with self._lock:
                    await self.transport.write(data)
            except DeviceOffline:
                return PrintResult(ok=False, reason="offline", status=self.status)
            await self._wait_printed(len(data))
            try:
                after = await self.poll()
            except (DeviceOffline, DeviceTimeout):
                return PrintResult(ok=False, reason="offline", status=self.status)
            reason = failure_of(after)
            if reason is not None:
                log.warning("printer_print_failed", printer=self._name, reason=reason)
                return PrintResult(ok=False, reason=reason, status=after)
            self.printed += 1
            return PrintResult(ok=True, status=after)

    async def _wait_printed(self, size: int) -> None:
        """Wait until a ticket of ``size`` bytes is sent and printed, or an ASB says the
        printer stopped meanwhile."""
        baudrate = self.transport.baudrate or 115_200
        settle = size * _BITS_PER_BYTE / baudrate + self.print_seconds
        try:
            async with asyncio.timeout(settle):
                while True:
                    await self._changed.wait()
                    self._changed.clear()
                    if self.status is not None and failure_of(self.status) is not None:
                        return
        except TimeoutError:
            return

    async def _on_data(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, AsbStatus):
                await self._set_status(status_from_asb(item))
            elif isinstance(item, Garbage):
                self.garbage += item.skipped
                log.debug("printer_garbage", printer=self._name, skipped=item.skipped)
            else:
                self._replies.append(item)
                waiter = self._waiter
                if len(self._replies) == 3 and waiter is not None and not waiter.done():
                    waiter.set_result(self._replies)

    async def _set_status(self, status: PrinterStatus) -> None:
        if status == self.status:
            return
        previous, self.status = self.status, status
        self._changed.set()
        log.info(
            "printer_status",
            printer=self._name,
            online=status.online,
            paper=status.paper,
            cover_open=status.cover_open,
            error=status.error,
            first=previous is None,
        )
        if self.on_status is not None:
            try:
                await self.on_status(status)
            except Exception:  # the reader must go on whatever the listener does
                log.exception("printer_status_listener_failed", printer=self._name)
