"""The command reader of the simulated ESC/POS printer: host bytes to printed pages.

Written from the Epson ESC/POS Command Reference (and the Chinese printer manuals cited in
docs/devices/printer.md), independently of :mod:`devices.codecs.escpos`, so that the encoder
and this reader are each checked against the documents' bytes rather than against each other.

:meth:`EscPosReader.feed` returns events in the order a printer acts on them: real-time
requests (``DLE EOT n``) first, as they are executed on receipt, even inside other data; then
the buffered commands in order. Understood: ``LF``, ``CR``, ``ESC @``, ``ESC a/E/!/d/t/M/-/G n``,
``GS ! n``, ``GS a n``, ``GS V m [n]``, ``GS ( k`` (QR functions 65, 67, 69, 80, 81; other
``GS ( x`` skipped by their length), ``FS &``, ``FS .``, ``FS ! n``, and text (GB18030 in
Chinese mode, code page 437 otherwise). Anything else is skipped a byte at a time and counted
in :attr:`EscPosReader.unknown`, as a printer ignores what it does not know. Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import msgspec

Align: TypeAlias = Literal["left", "center", "right"]

_DLE, _EOT, _ESC, _GS, _FS, _LF, _CR = 0x10, 0x04, 0x1B, 0x1D, 0x1C, 0x0A, 0x0D
_ALIGNS: dict[int, Align] = {
    0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right",
}  # fmt: skip
_QR_LEVELS = {48: "L", 49: "M", 50: "Q", 51: "H"}
_CUT_WITH_FEED = {65, 66, 97, 98, 103, 104}  # GS V m n; other m take no n
_ONE_PARAM_ESC = frozenset(b"aE!dtM-G")  # ESC x n commands this printer knows


class PrintedLine(msgspec.Struct, frozen=True, kw_only=True):
    """One printed line of text, with the style in effect at its first character."""

    text: str
    align: Align = "left"
    width: int = 1
    height: int = 1
    bold: bool = False


class PrintedQr(msgspec.Struct, frozen=True, kw_only=True):
    """A QR code the printer drew (GS ( k function 181), with the settings it used."""

    data: str
    model: int
    module: int
    error: str


class SimTicket(msgspec.Struct, frozen=True, kw_only=True):
    """Everything printed between two cuts."""

    lines: list[PrintedLine]
    qr_codes: list[PrintedQr]

    @property
    def text(self) -> str:
        """The printed text, one line per line."""
        return "\n".join(line.text for line in self.lines)


class StatusRequest(msgspec.Struct, frozen=True):
    """``DLE EOT n`` arrived: answer one status byte now."""

    n: int


class AsbRequest(msgspec.Struct, frozen=True):
    """``GS a n``: enable the ASB items of n (0 disables)."""

    items: int


class Cut(msgspec.Struct, frozen=True):
    """``GS V``: the page so far is complete (the printer decides whether it prints)."""

    ticket: SimTicket


ReaderEvent: TypeAlias = StatusRequest | AsbRequest | Cut


class EscPosReader:
    """Parses the host's byte stream into :data:`ReaderEvent` items.

    Args:
        max_command: longest command kept while incomplete (a ``GS ( k`` can be 65 540
            bytes); a longer one is dropped and counted in :attr:`unknown`.
    """

    __slots__ = (
        "_align", "_bold", "_chinese", "_events", "_height", "_lines", "_qr_codes", "_qr_data",
        "_qr_error", "_qr_model", "_qr_module", "_realtime", "_rx", "_style", "_text",
        "_width", "max_command", "unknown",
    )  # fmt: skip

    def __init__(self, *, max_command: int = 70_000) -> None:
        self.max_command = max_command
        self.unknown = 0
        self._realtime = bytearray()  # a DLE or DLE EOT waiting for its next byte
        self._rx = bytearray()  # print data not yet processed
        self._events: list[ReaderEvent] = []
        # Print modes (ESC @ resets them) and the page being built (a cut ends it).
        self._align: Align = "left"
        self._bold = False
        self._width = self._height = 1
        self._qr_model, self._qr_module, self._qr_error = 2, 3, "L"
        self._qr_data = b""
        self._lines: list[PrintedLine] = []
        self._qr_codes: list[PrintedQr] = []
        self._text: list[str] = []
        self._style = PrintedLine(text="")
        self._chinese = True  # Chinese models start in Chinese mode

    def feed(self, data: bytes) -> list[ReaderEvent]:
        """Take host bytes; return the events they complete. Never raises."""
        for b in data:
            self._receive(b)
        while self._rx:
            used = self._step()
            if used == 0:
                if len(self._rx) > self.max_command:
                    self.unknown += 1
                    self._rx.clear()
                break
            del self._rx[:used]
        out, self._events = self._events, []
        return out

    def _receive(self, b: int) -> None:
        """Real-time stage: answer DLE EOT n (n = 1..4) at once, pass everything else on."""
        rt = self._realtime
        if not rt:
            if b == _DLE:
                rt.append(b)
            else:
                self._rx.append(b)
        elif len(rt) == 1:
            if b == _EOT:
                rt.append(b)
            else:
                self._rx += rt
                rt.clear()
                self._receive(b)
        else:
            rt.clear()
            if 1 <= b <= 4:
                self._events.append(StatusRequest(b))
            else:
                self._rx += bytes((_DLE, _EOT))
                self._receive(b)

    def _step(self) -> int:
        """Process the command or character at the head of the buffer; 0 if incomplete."""
        rx = self._rx
        b = rx[0]
        if b == _LF:
            self._end_line()
            return 1
        if b == _ESC:
            return self._esc()
        if b == _GS:
            return self._gs()
        if b == _FS:
            if len(rx) < 2:
                return 0
            if rx[1] in b"&.":
                self._chinese = rx[1] == ord("&")
                return 2
            if rx[1] == ord("!"):
                return 3 if len(rx) >= 3 else 0
            self.unknown += 1
            return 1
        if b < 0x20 or b == 0x7F:
            if b not in (_CR, _DLE):
                self.unknown += 1
            return 1
        return self._character()

    def _character(self) -> int:
        rx = self._rx
        b = rx[0]
        if self._chinese and 0x81 <= b <= 0xFE:
            if len(rx) < 2:
                return 0
            size = 4 if 0x30 <= rx[1] <= 0x39 else 2  # GB18030 four-byte form
            if len(rx) < size:
                return 0
            self._add_text(bytes(rx[:size]).decode("gb18030", "replace"))
            return size
        self._add_text(bytes((b,)).decode("cp437"))
        return 1

    def _esc(self) -> int:
        rx = self._rx
        if len(rx) < 2:
            return 0
        cmd = rx[1]
        if cmd == ord("@"):
            self._reset_modes()
            self._reset_page()  # ESC @ clears the print buffer
            return 2
        if cmd not in _ONE_PARAM_ESC:
            self.unknown += 1
            return 1
        if len(rx) < 3:
            return 0
        n = rx[2]
        if cmd == ord("a"):
            self._align = _ALIGNS.get(n, self._align)
        elif cmd == ord("E"):
            self._bold = bool(n & 1)
        elif cmd == ord("!"):  # ESC ! n: bit 3 emphasis, bit 4 double height, bit 5 double width
            self._bold = bool(n & 0x08)
            self._height = 2 if n & 0x10 else 1
            self._width = 2 if n & 0x20 else 1
        return 3

    def _gs(self) -> int:
        rx = self._rx
        if len(rx) < 3:
            return 0
        cmd, n = rx[1], rx[2]
        if cmd == ord("!"):
            self._width, self._height = (n >> 4 & 7) + 1, (n & 7) + 1
            return 3
        if cmd == ord("a"):
            self._events.append(AsbRequest(n))
            return 3
        if cmd == ord("V"):
            if n in _CUT_WITH_FEED and len(rx) < 4:
                return 0
            self._cut()
            return 4 if n in _CUT_WITH_FEED else 3
        if cmd == ord("("):
            if len(rx) < 5:
                return 0
            total = 5 + rx[3] + rx[4] * 256
            if len(rx) < total:
                return 0
            if rx[2] == ord("k"):
                self._two_d_code(bytes(rx[5:total]))
            return total
        self.unknown += 1
        return 1

    def _two_d_code(self, body: bytes) -> None:
        """GS ( k with cn = 49 (QR code); other symbologies are skipped."""
        if len(body) < 3 or body[0] != 49:
            self.unknown += 1
            return
        fn, arg = body[1], body[2]
        if fn == 65:
            self._qr_model = arg - 48
        elif fn == 67:
            self._qr_module = arg
        elif fn == 69:
            self._qr_error = _QR_LEVELS.get(arg, "?")
        elif fn == 80:
            self._qr_data = body[3:]
        elif fn == 81:
            self._qr_codes.append(
                PrintedQr(
                    data=self._qr_data.decode("ascii", "replace"),
                    model=self._qr_model,
                    module=self._qr_module,
                    error=self._qr_error,
                )
            )

    # ---- printing --------------------------------------------------------------------------

    def _reset_modes(self) -> None:
        self._align = "left"
        self._bold = False
        self._width = self._height = 1
        self._qr_model, self._qr_module, self._qr_error = 2, 3, "L"
        self._qr_data = b""

    def _reset_page(self) -> None:
        self._lines = []
        self._qr_codes = []
        self._text = []

    def _add_text(self, text: str) -> None:
        if not self._text:
            self._style = PrintedLine(
                text="", align=self._align, width=self._width, height=self._height, bold=self._bold
            )
        self._text.append(text)

    def _end_line(self) -> None:
        if self._text:
            self._lines.append(msgspec.structs.replace(self._style, text="".join(self._text)))
            self._text = []

    def _cut(self) -> None:
        self._end_line()
        self._events.append(Cut(SimTicket(lines=self._lines, qr_codes=self._qr_codes)))
        self._reset_page()
