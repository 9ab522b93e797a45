"""ESC/POS printer status (D1, Q7): the replies to DLE EOT n and the ASB blocks of GS a n.

Everything the printer sends to the host, decoded. Bit tables (Epson ESC/POS Command
Reference, "DLE EOT" and "GS a"; reproduced with sources in docs/devices/printer.md):

=============================  ================================================================
reply                          bits (0 = least significant)
=============================  ================================================================
DLE EOT 1 (printer)            2 drawer pin 3 high, 3 offline, 5 waiting for online recovery,
                               6 paper feed button pressed
DLE EOT 2 (offline cause)      2 cover open, 3 paper fed by the button, 5 printing stopped
                               by paper end, 6 error occurred
DLE EOT 3 (error cause)        3 autocutter error, 5 unrecoverable error, 6 automatically
                               recoverable error
DLE EOT 4 (roll paper sensor)  2,3 near end (both set), 5,6 paper end (both set)
ASB byte 1                     2 drawer pin 3 high, 3 offline, 5 cover open, 6 feed button
ASB byte 2                     3 autocutter error, 5 unrecoverable, 6 auto-recoverable
ASB byte 3                     0,1 near end, 2,3 paper end
ASB byte 4                     (nothing the hub uses)
=============================  ================================================================

Fixed bits tell the replies apart (Citizen/Epson "Identification of send status"): a DLE EOT
reply is ``0**1**10``, the first ASB byte ``0**1**00``, ASB bytes 2 to 4 ``0**0****``, XON
``0x11`` and XOFF ``0x13``. A byte breaking the pattern it must follow is a :class:`FrameError`.

A DLE EOT reply does not say which n it answers: the host must know (the decoder is told with
:meth:`PrinterReplyDecoder.expect`). Pure: no I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Literal, TypeAlias, overload

import msgspec

from devices.codecs.wire import Garbage
from devices.errors import EncodeError, FrameError

Paper: TypeAlias = Literal["ok", "low", "out"]

# DLE EOT reply: bit 1 on, bit 4 on, bits 0 and 7 off (Epson DLE EOT tables, "Fixed").
_EOT_MASK, _EOT_FIXED = 0x93, 0x12
# ASB byte 1: bits 0, 1 off, bit 4 on, bit 7 off; bytes 2..4: bits 4 and 7 off (Epson GS a).
_ASB1_MASK, _ASB1_FIXED = 0x93, 0x10
_ASB_REST_MASK = 0x90
XON, XOFF = 0x11, 0x13
_FLOW_CONTROL = bytes((XON, XOFF))
ASB_LENGTH = 4


class PrinterInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Reply to DLE EOT 1 (printer status)."""

    offline: bool
    drawer_pin3_high: bool
    waiting_online_recovery: bool
    feed_button_pressed: bool


class OfflineCause(msgspec.Struct, frozen=True, kw_only=True):
    """Reply to DLE EOT 2 (offline cause)."""

    cover_open: bool
    feeding_by_button: bool
    paper_end_stop: bool
    error: bool


class ErrorCause(msgspec.Struct, frozen=True, kw_only=True):
    """Reply to DLE EOT 3 (error cause)."""

    autocutter_error: bool
    unrecoverable_error: bool
    auto_recoverable_error: bool


class PaperSensor(msgspec.Struct, frozen=True, kw_only=True):
    """Reply to DLE EOT 4 (roll paper sensor)."""

    near_end: bool
    paper_end: bool


class AsbStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One 4-byte Automatic Status Back block (sent by the printer after GS a n, unasked)."""

    offline: bool
    cover_open: bool
    feed_button_pressed: bool
    drawer_pin3_high: bool
    autocutter_error: bool
    unrecoverable_error: bool
    auto_recoverable_error: bool
    near_end: bool
    paper_end: bool


class PrinterStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the hub needs to know of a printer: the merge of DLE EOT 1, 2, 4 or of an ASB."""

    online: bool
    cover_open: bool
    paper: Paper
    error: bool


# Garbage (devices.codecs.wire): Bytes the decoder skipped: ``code`` is ``bad_byte`` (fits no reply
# pattern), ``unexpected_reply`` (a DLE EOT reply nobody asked for) or ``bad_asb`` (an ASB block
# whose bytes 2 to 4 break their fixed bits; only its first byte is skipped).


StatusReply: TypeAlias = PrinterInfo | OfflineCause | ErrorCause | PaperSensor
PrinterReply: TypeAlias = StatusReply | AsbStatus | Garbage


def _bit(byte: int, n: int) -> bool:
    return bool(byte >> n & 1)


@overload
def parse_status(n: Literal[1], byte: int) -> PrinterInfo: ...
@overload
def parse_status(n: Literal[2], byte: int) -> OfflineCause: ...
@overload
def parse_status(n: Literal[3], byte: int) -> ErrorCause: ...
@overload
def parse_status(n: Literal[4], byte: int) -> PaperSensor: ...
@overload
def parse_status(n: int, byte: int) -> StatusReply: ...
def parse_status(n: int, byte: int) -> StatusReply:
    """Decode the one-byte reply to ``DLE EOT n``.

    Args:
        n: the n of the request this byte answers (1, 2, 3 or 4).
        byte: the reply, 0..255.

    Raises:
        FrameError: n is not 1..4, byte is not a byte, or its fixed bits are wrong (bit 1 and
            bit 4 on, bits 0 and 7 off): it is not a DLE EOT reply.
    """
    if not 0 <= byte <= 0xFF:
        raise FrameError(f"status byte out of range: {byte}")
    if byte & _EOT_MASK != _EOT_FIXED:
        raise FrameError(f"not a DLE EOT reply (fixed bits): {byte:#04x}")
    if n == 1:
        return PrinterInfo(
            offline=_bit(byte, 3),
            drawer_pin3_high=_bit(byte, 2),
            waiting_online_recovery=_bit(byte, 5),
            feed_button_pressed=_bit(byte, 6),
        )
    if n == 2:
        return OfflineCause(
            cover_open=_bit(byte, 2),
            feeding_by_button=_bit(byte, 3),
            paper_end_stop=_bit(byte, 5),
            error=_bit(byte, 6),
        )
    if n == 3:
        return ErrorCause(
            autocutter_error=_bit(byte, 3),
            unrecoverable_error=_bit(byte, 5),
            auto_recoverable_error=_bit(byte, 6),
        )
    if n == 4:
        # Epson sets bits 2 and 3 (and 5 and 6) together; some models (Citizen CT-S2000) set
        # them one by one for two sensors, so either bit counts.
        return PaperSensor(near_end=bool(byte & 0x0C), paper_end=bool(byte & 0x60))
    raise FrameError(f"no DLE EOT reply for n={n}")


def parse_asb(frame: bytes) -> AsbStatus:
    """Decode one 4-byte ASB block (XOFF bytes already removed).

    Raises:
        FrameError: not 4 bytes, or a fixed bit is wrong (byte 1 ``0**1**00``, bytes 2 to 4
            ``0**0****``).
    """
    if len(frame) != ASB_LENGTH:
        raise FrameError(f"ASB is {ASB_LENGTH} bytes, got {len(frame)}")
    b1, b2, b3, b4 = frame
    if b1 & _ASB1_MASK != _ASB1_FIXED:
        raise FrameError(f"not an ASB first byte (fixed bits): {b1:#04x}")
    if any(b & _ASB_REST_MASK for b in (b2, b3, b4)):
        raise FrameError(f"ASB bytes 2..4 have bit 4 or 7 set: {frame[1:].hex(' ')}")
    return AsbStatus(
        offline=_bit(b1, 3),
        cover_open=_bit(b1, 5),
        feed_button_pressed=_bit(b1, 6),
        drawer_pin3_high=_bit(b1, 2),
        autocutter_error=_bit(b2, 3),
        unrecoverable_error=_bit(b2, 5),
        auto_recoverable_error=_bit(b2, 6),
        near_end=bool(b3 & 0x03),
        paper_end=bool(b3 & 0x0C),
    )


def _paper(near_end: bool, paper_end: bool) -> Paper:
    return "out" if paper_end else "low" if near_end else "ok"


def status_from_replies(
    printer: PrinterInfo, offline: OfflineCause, paper: PaperSensor
) -> PrinterStatus:
    """Merge the replies to DLE EOT 1, 2 and 4 (one poll) into a :class:`PrinterStatus`.

    Paper is ``out`` when the end sensor sees no paper or printing stopped on paper end,
    ``low`` when only the near-end sensor fires.
    """
    return PrinterStatus(
        online=not printer.offline,
        cover_open=offline.cover_open,
        paper=_paper(paper.near_end, paper.paper_end or offline.paper_end_stop),
        error=offline.error,
    )


def status_from_asb(asb: AsbStatus) -> PrinterStatus:
    """The :class:`PrinterStatus` an ASB block reports; any error bit of byte 2 is an error."""
    return PrinterStatus(
        online=not asb.offline,
        cover_open=asb.cover_open,
        paper=_paper(asb.near_end, asb.paper_end),
        error=asb.autocutter_error or asb.unrecoverable_error or asb.auto_recoverable_error,
    )


class PrinterReplyDecoder:
    """Splits the printer-to-host byte stream into DLE EOT replies and ASB blocks.

    The host calls :meth:`expect` with n each time it sends ``DLE EOT n``; replies come back
    in request order, so a reply byte is matched with the oldest pending n. A reply byte with
    nothing pending is garbage: nobody can tell what it answers.

    ASB blocks are recognised by their first byte and need no request. XON and XOFF (the
    printer's flow control, also allowed inside an ASB block) are dropped silently.

    The buffer holds at most the 3 first bytes of an ASB block; at most ``max_pending``
    requests wait for their reply (beyond that the oldest is forgotten: its reply is lost).
    After a timeout a driver should call :meth:`reset`, or a late reply would be matched with
    the next request.
    """

    __slots__ = ("_buf", "_garbage", "_garbage_code", "_out", "_pending")

    def __init__(self, *, max_pending: int = 16) -> None:
        self._buf = bytearray()
        self._pending: deque[int] = deque(maxlen=max(1, max_pending))
        self._garbage = 0
        self._garbage_code = ""
        self._out: list[PrinterReply] = []

    def expect(self, n: int) -> None:
        """Record that ``DLE EOT n`` was sent and its one-byte reply is awaited.

        Raises:
            EncodeError: n is not 1, 2, 3 or 4.
        """
        if n not in (1, 2, 3, 4):
            raise EncodeError(f"DLE EOT n must be 1..4, got {n}")
        self._pending.append(n)

    @property
    def pending(self) -> tuple[int, ...]:
        """The n of the requests still waiting for a reply, oldest first."""
        return tuple(self._pending)

    def reset(self) -> None:
        """Forget buffered bytes and pending requests (after a timeout or a reconnect)."""
        self._buf.clear()
        self._pending.clear()

    def feed(self, data: bytes) -> list[PrinterReply]:
        """Append bytes; return every complete reply now available, in order.

        Never raises: bytes that fit no pattern become :class:`Garbage` (consecutive ones of
        the same kind merged) and decoding resumes at the next byte.
        """
        buf = self._buf
        # Flow control may come anywhere, even inside an ASB block: drop it first.
        buf += data.translate(None, _FLOW_CONTROL)
        i = 0
        while i < len(buf):
            b = buf[i]
            if b & _ASB1_MASK == _ASB1_FIXED:
                block = buf[i : i + ASB_LENGTH]
                if any(c & _ASB_REST_MASK for c in block[1:]):
                    # Not a block after all: decide now, without waiting for all 4 bytes, so
                    # that a reply right behind a stray byte is not held back.
                    self._skip("bad_asb")
                    i += 1
                elif len(block) < ASB_LENGTH:
                    break  # a block so far: wait for the rest
                else:
                    self._emit(parse_asb(bytes(block)))
                    i += ASB_LENGTH
            elif b & _EOT_MASK == _EOT_FIXED and self._pending:
                self._emit(parse_status(self._pending.popleft(), b))
                i += 1
            else:
                self._skip("unexpected_reply" if b & _EOT_MASK == _EOT_FIXED else "bad_byte")
                i += 1
        del buf[:i]
        self._flush_garbage()
        out, self._out = self._out, []
        return out

    def _skip(self, code: str) -> None:
        if self._garbage and code != self._garbage_code:
            self._flush_garbage()
        self._garbage += 1
        self._garbage_code = code

    def _flush_garbage(self) -> None:
        if self._garbage:
            self._out.append(Garbage(self._garbage, self._garbage_code))
            self._garbage = 0

    def _emit(self, item: PrinterReply) -> None:
        self._flush_garbage()
        self._out.append(item)
