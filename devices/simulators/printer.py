"""A simulated ESC/POS thermal ticket printer (D1, Q7): a sans-I/O model and a serial shell.

:class:`PrinterModel` reads the bytes a host sends (with
:class:`~devices.simulators.escpos_reader.EscPosReader`), "prints" them (keeps each cut ticket
as decoded text lines and QR payloads), answers ``DLE EOT n`` and sends ASB blocks after
``GS a n``. It is scriptable: the paper runs low and out after N tickets, the cover opens, the
cutter jams; while the printer is offline (no paper, cover open, cutter error) a ticket is
refused: it is not recorded and the status tells why. Status bytes are built here from the
Epson tables, independently of :mod:`devices.codecs.escpos_status`.

:func:`serve` runs a model on a serial port (a pseudo-terminal in tests and demos),
:func:`serve_port` on one already open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal, TypeAlias

import serialx
import structlog

from devices.simulators.escpos_reader import (
    AsbRequest,
    Cut,
    EscPosReader,
    PrintedLine,
    PrintedQr,
    SimTicket,
    StatusRequest,
)
from devices.simulators.serving import answer, open_port

__all__ = [
    "Paper",
    "PrintedLine",
    "PrintedQr",
    "PrinterModel",
    "SimTicket",
    "serve",
    "serve_port",
]

log = structlog.get_logger("devices.simulators.printer")

Paper: TypeAlias = Literal["ok", "low", "out"]


class PrinterModel:
    """The printer's state machine: host bytes in, reply bytes out.

    Args:
        paper_low_after: after this many tickets on a roll the near-end sensor fires.
        paper_out_after: after this many tickets on a roll the paper ends.
        max_command: longest command kept while incomplete (a ``GS ( k`` can be 65 540
            bytes); a longer one is dropped and counted in :attr:`unknown`.

    Attributes:
        tickets: the tickets printed, oldest first.
        refused: tickets cut while offline, so not printed.
        unknown: bytes or commands the model did not understand (skipped).
        on_unsolicited: called with each ASB block a scripted change (:meth:`refill`,
            :meth:`open_cover`, ...) causes; :func:`serve` sets it to write to the port.
    """

    def __init__(
        self,
        *,
        paper_low_after: int | None = None,
        paper_out_after: int | None = None,
        max_command: int = 70_000,
    ) -> None:
        self.paper_low_after = paper_low_after
        self.paper_out_after = paper_out_after
        self.paper: Paper = "ok"
        self.cover_open = False
        self.cutter_error = False
        self.asb_items = 0
        self.tickets: list[SimTicket] = []
        self.refused = 0
        self.on_unsolicited: Callable[[bytes], None] | None = None
        self._reader = EscPosReader(max_command=max_command)
        self._on_roll = 0
        self._asb_seen: tuple[int, ...] | None = None
        self._replies: list[bytes] = []

    # ---- state -----------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """Printing is possible: paper present, cover closed, no error."""
        return self.paper != "out" and not self.cover_open and not self.cutter_error

    def status_byte(self, n: int) -> int:
        """The reply to ``DLE EOT n`` now (Epson DLE EOT tables: bits 1 and 4 always on)."""
        byte = 0x12
        if n == 1:
            byte |= 0 if self.online else 0x08
        elif n == 2:
            byte |= 0x04 if self.cover_open else 0
            byte |= 0x20 if self.paper == "out" else 0
            byte |= 0x40 if self.cutter_error else 0
        elif n == 3:
            byte |= 0x08 if self.cutter_error else 0
        elif n == 4:
            byte |= 0x0C if self.paper != "ok" else 0  # no roll: the near-end sensor sees none
            byte |= 0x60 if self.paper == "out" else 0
        return byte

    def asb_block(self) -> bytes:
        """The 4-byte ASB block now (Epson GS a tables: byte 1 bit 4 always on)."""
        b1 = 0x10 | (0 if self.online else 0x08) | (0x20 if self.cover_open else 0)
        b2 = 0x08 if self.cutter_error else 0
        b3 = (0x03 if self.paper != "ok" else 0) | (0x0C if self.paper == "out" else 0)
        return bytes((b1, b2, b3, 0))

    # ---- scripting -------------------------------------------------------------------------

    def refill(self) -> list[bytes]:
        """Load a new roll: paper ok, the per-roll ticket count starts again."""
        self._on_roll = 0
        return self.set_paper("ok")

    def set_paper(self, paper: Paper) -> list[bytes]:
        """Set the paper sensors; returns the ASB blocks this sends (also to on_unsolicited)."""
        self.paper = paper
        return self._scripted()

    def open_cover(self) -> list[bytes]:
        """Open the cover: the printer goes offline."""
        self.cover_open = True
        return self._scripted()

    def close_cover(self) -> list[bytes]:
        """Close the cover."""
        self.cover_open = False
        return self._scripted()

    def jam_cutter(self) -> list[bytes]:
        """Jam the autocutter: an error, the printer goes offline."""
        self.cutter_error = True
        return self._scripted()

    def clear_jam(self) -> list[bytes]:
        """Clear the cutter jam."""
        self.cutter_error = False
        return self._scripted()

    def _scripted(self) -> list[bytes]:
        self._check_asb()
        out, self._replies = self._replies, []
        if self.on_unsolicited is not None:
            for block in out:
                self.on_unsolicited(block)
        return out

    # ---- host bytes ------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[bytes]:
        """Take bytes from the host; return the replies to send, in order (1 byte for a
        DLE EOT reply, 4 for an ASB block). Never raises."""
        for event in self._reader.feed(data):
            if isinstance(event, StatusRequest):
                self._replies.append(bytes((self.status_byte(event.n),)))
            elif isinstance(event, AsbRequest):
                self.asb_items = event.items
                if event.items & 0x0F:
                    self._send_asb()  # enabling ASB sends the status at once (Epson GS a)
            elif isinstance(event, Cut):
                self._cut(event.ticket)
        out, self._replies = self._replies, []
        return out

    @property
    def unknown(self) -> int:
        """Bytes or commands the printer did not understand (skipped)."""
        return self._reader.unknown

    def _cut(self, ticket: SimTicket) -> None:
        if not self.online:
            self.refused += 1
            log.info("printer_sim.refused", paper=self.paper, cover_open=self.cover_open)
            return
        self.tickets.append(ticket)
        self._on_roll += 1
        if self.paper_out_after is not None and self._on_roll >= self.paper_out_after:
            self.paper = "out"
        elif self.paper_low_after is not None and self._on_roll >= self.paper_low_after:
            self.paper = "low" if self.paper == "ok" else self.paper
        log.debug("printer_sim.printed", tickets=len(self.tickets), paper=self.paper)
        self._check_asb()

    # ---- automatic status back -------------------------------------------------------------

    def _asb_view(self) -> tuple[int, ...]:
        """The parts of the ASB block that the enabled items cover (a change there sends)."""
        b1, b2, b3, _ = self.asb_block()
        items = self.asb_items
        return (
            b1 & 0x04 if items & 0x01 else 0,
            b1 & 0x28 if items & 0x02 else 0,
            b2 if items & 0x04 else 0,
            b3 if items & 0x08 else 0,
        )

    def _send_asb(self) -> None:
        self._asb_seen = self._asb_view()
        self._replies.append(self.asb_block())

    def _check_asb(self) -> None:
        if self.asb_items & 0x0F and self._asb_view() != self._asb_seen:
            self._send_asb()


async def serve(
    path: str,
    model: PrinterModel,
    *,
    baudrate: int = 9600,
    ready: asyncio.Event | None = None,
) -> None:
    """Be the printer on the serial port ``path`` until cancelled or the port reaches EOF.

    Host bytes go to :meth:`PrinterModel.feed` and its replies back; ASB blocks caused by
    scripted changes (``model.refill()`` from a test or the demo) are written as they happen.

    Args:
        path: the port (``/dev/ttyUSB0``, ``COM3``, a pty).
        model: the printer; it keeps its state across serve calls (replug).
        baudrate: line speed.
        ready: set once the port is open. Bytes the host sends before that are lost (opening
            a port discards what is pending), so a test waits for it before writing.

    Raises:
        serialx.SerialException, OSError: the port cannot be opened, or it hung up (a pty
            whose other end went away raises EIO: the cable was unplugged).
    """
    async with open_port(path, baudrate, ready) as port:
        log.info("printer_sim.serving", path=path)
        await serve_port(port, model)


async def serve_port(
    port: serialx.AsyncSerial,
    model: PrinterModel,
    *,
    feed: Callable[[bytes], list[bytes]] | None = None,
) -> None:
    """Be the printer on the open ``port`` until it reaches EOF, as :func:`serve`.

    Args:
        feed: takes the host's bytes instead of :meth:`PrinterModel.feed` (one that calls it
            and logs what was printed, say).

    Raises:
        serialx.SerialException, OSError: the port fails.
    """
    take = model.feed if feed is None else feed
    model.on_unsolicited = port.write_nowait
    try:
        await answer(port, lambda data: b"".join(take(data)))
    finally:
        model.on_unsolicited = None
