"""The SAM frame protocol of second-generation ID card readers (D2, O3), sans-I/O.

GA 467 ("居民身份证验证安全控制模块接口技术规范", §7 business-terminal interface) defines the
frames every reader module speaks over its UART (115200 8N1 by default):

command (host → reader)::

    AA AA AA 96 69 | LEN (2, big-endian) | CMD | PARA | DATA… | CHK

reply (reader → host)::

    AA AA AA 96 69 | LEN (2, big-endian) | SW1 | SW2 | SW3 | DATA… | CHK

``LEN`` counts every byte after it, the check byte included; ``CHK`` is the XOR of every byte
after the preamble except itself (LEN included). SW3 is the module's own status; SW1 SW2
pass on the card's status words and are ``00 00`` for most replies.

A failure status (find failed 0x80, read failed 0x41, …) is a well-formed reply: it parses into
a :class:`SamReply` with ``ok == False``; only malformed bytes raise. Layout, statuses and
the worked examples with their sources: docs/devices/id-reader.md. The card text of a "read
base info" reply is decoded by :mod:`devices.codecs.id_card` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Generic, Literal, TypeVar

import msgspec

from devices.codecs.id_card import (
    IdCard,
    MaskedIdCard,
    encode_base_info,
    parse_base_info,
)
from devices.codecs.wire import Garbage
from devices.errors import ChecksumError, CodecError, EncodeError, FrameError

__all__ = [
    "PREAMBLE",
    "Garbage",
    "IdCard",
    "MaskedIdCard",
    "SamCommand",
    "SamCommandDecoder",
    "SamDecoder",
    "SamReply",
    "encode_base_info",
    "encode_command",
    "encode_find_card",
    "encode_read_base_info",
    "encode_reply",
    "encode_reset",
    "encode_sam_status",
    "encode_select_card",
    "parse_base_info",
    "parse_command",
    "parse_reply",
]

PREAMBLE: Final = b"\xaa\xaa\xaa\x96\x69"
_HEADER = len(PREAMBLE) + 2
# The longest reply in GA 467 is "read base info with fingerprint": 2321 bytes.
MAX_FRAME = 4096

CommandName = Literal["reset", "sam_status", "find_card", "select_card", "read_base_info"]
COMMANDS: Final[dict[CommandName, tuple[int, int]]] = {
    "reset": (0x10, 0xFF),
    "sam_status": (0x11, 0xFF),
    "find_card": (0x20, 0x01),
    "select_card": (0x20, 0x02),
    "read_base_info": (0x30, 0x01),
}
_COMMAND_NAMES: Final = {code: name for name, code in COMMANDS.items()}

SamStatus = Literal[
    "ok",
    "card_found",
    "no_content",
    "checksum_error",
    "length_error",
    "command_error",
    "unauthorized_operation",
    "unrecognised_error",
    "card_rejected_reader",
    "reader_rejected_card",
    "verify_failed",
    "unknown_card_type",
    "read_failed",
    "random_failed",
    "self_test_failed",
    "not_authorised",
    "find_failed",
    "select_failed",
    "unknown_status",
]
# SW3 values of GA 467 (docs/devices/id-reader.md, "Statuses").
STATUSES: Final[dict[int, SamStatus]] = {
    0x90: "ok",
    0x9F: "card_found",
    0x91: "no_content",
    0x10: "checksum_error",
    0x11: "length_error",
    0x21: "command_error",
    0x23: "unauthorized_operation",
    0x24: "unrecognised_error",
    0x31: "card_rejected_reader",
    0x32: "reader_rejected_card",
    0x33: "verify_failed",
    0x40: "unknown_card_type",
    0x41: "read_failed",
    0x47: "random_failed",
    0x60: "self_test_failed",
    0x66: "not_authorised",
    0x80: "find_failed",
    0x81: "select_failed",
}
_SUCCESS: Final = frozenset({0x90, 0x9F})


class SamCommand(msgspec.Struct, frozen=True):
    """A command frame from the host: ``cmd``, ``para`` and optional ``data``."""

    cmd: int
    para: int
    data: bytes = b""

    @property
    def name(self) -> CommandName | None:
        """The command's name for the five commands we use, else ``None``."""
        return _COMMAND_NAMES.get((self.cmd, self.para))


class SamReply(msgspec.Struct, frozen=True):
    """A reply frame from the reader: the three status bytes and the data."""

    sw1: int
    sw2: int
    sw3: int
    data: bytes = b""

    @property
    def status(self) -> SamStatus:
        """SW3 by name; ``unknown_status`` for a value GA 467 does not define."""
        return STATUSES.get(self.sw3, "unknown_status")

    @property
    def ok(self) -> bool:
        """SW3 is 0x90 (success) or 0x9F (card found)."""
        return self.sw3 in _SUCCESS


# Garbage (devices.codecs.wire): Bytes the stream decoder skipped: ``code`` is the first reason:
# ``no_header`` (bytes before a preamble), ``too_long`` (a length beyond ``max_frame``),
# ``bad_frame`` (a length too short for a frame) or ``bad_checksum``. Same shape and codes as the
# other codecs'.


# -- encoding -------------------------------------------------------------------------------


def _frame(body: bytes) -> bytes:
    length = len(body) + 1
    if length > 0xFFFF:
        raise EncodeError(f"a SAM frame holds at most {0xFFFF - 1} bytes, not {len(body)}")
    content = length.to_bytes(2, "big") + body
    return PREAMBLE + content + bytes([_xor(content)])


def _xor(data: bytes) -> int:
    check = 0
    for byte in data:
        check ^= byte
    return check


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise EncodeError(f"{what} is a byte, not {value}")
    return value


def encode_command(cmd: int, para: int, data: bytes = b"") -> bytes:
    """A command frame. Raises EncodeError for values that are not bytes or too much data."""
    return _frame(bytes([_byte(cmd, "CMD"), _byte(para, "PARA")]) + data)


def encode_reset() -> bytes:
    """``10 FF``: reset the SAM module (as if powered up again)."""
    return encode_command(*COMMANDS["reset"])


def encode_sam_status() -> bytes:
    """``11 FF``: the module's self-test status (0x90 healthy, 0x60 failed)."""
    return encode_command(*COMMANDS["sam_status"])


def encode_find_card() -> bytes:
    """``20 01``: look for a card in the field (0x9F found, 0x80 none)."""
    return encode_command(*COMMANDS["find_card"])


def encode_select_card() -> bytes:
    """``20 02``: select the card found (0x90 selected, 0x81 failed)."""
    return encode_command(*COMMANDS["select_card"])


def encode_read_base_info() -> bytes:
    """``30 01``: read text and photo of the selected card (0x90 with 1284 bytes, 0x41)."""
    return encode_command(*COMMANDS["read_base_info"])


def encode_reply(sw3: int, data: bytes = b"", *, sw1: int = 0, sw2: int = 0) -> bytes:
    """A reply frame, as a reader (or our simulator) sends it.

    Raises:
        EncodeError: a status that is not a byte, or too much data for one frame.
    """
    return _frame(bytes([_byte(sw1, "SW1"), _byte(sw2, "SW2"), _byte(sw3, "SW3")]) + data)


# -- parsing --------------------------------------------------------------------------------


def _check(frame: bytes, minimum: int) -> bytes:
    """The bytes between LEN and CHK of a complete frame, after every check."""
    if not frame.startswith(PREAMBLE):
        raise FrameError("a SAM frame starts with AA AA AA 96 69")
    if len(frame) < _HEADER:
        raise FrameError("a SAM frame is cut short before its length")
    length = int.from_bytes(frame[5:7], "big")
    if length < minimum:
        raise FrameError(f"a SAM frame's length is at least {minimum}, not {length}")
    if len(frame) != _HEADER + length:
        raise FrameError(f"the frame is {len(frame)} bytes, its length says {_HEADER + length}")
    if _xor(frame[5:-1]) != frame[-1]:
        raise ChecksumError("the SAM frame's XOR check byte does not match")
    return frame[7:-1]


def parse_reply(frame: bytes) -> SamReply:
    """One complete reply frame.

    Raises:
        FrameError: wrong preamble, a length that does not match the frame, or a length
            too short for SW1 SW2 SW3 and the check byte.
        ChecksumError: the XOR check byte does not match.
    """
    body = _check(frame, 4)
    return SamReply(body[0], body[1], body[2], bytes(body[3:]))


def parse_command(frame: bytes) -> SamCommand:
    """One complete command frame (the reader's side, for simulators and tests).

    Raises:
        FrameError, ChecksumError: as :func:`parse_reply`; a command has at least
            CMD, PARA and the check byte.
    """
    body = _check(frame, 3)
    return SamCommand(body[0], body[1], bytes(body[2:]))


# -- stream decoding ------------------------------------------------------------------------

_Item = TypeVar("_Item", SamReply, SamCommand)


class _FrameDecoder(Generic[_Item]):
    """Splits a byte stream into SAM frames; see :class:`SamDecoder`."""

    __slots__ = ("_buffer", "_max_frame", "_minimum", "_parse", "_skip_code", "_skipped")

    _parse: Callable[[bytes], _Item]

    def __init__(
        self, parse: Callable[[bytes], _Item], minimum: int, *, max_frame: int = MAX_FRAME
    ) -> None:
        if max_frame < _HEADER + minimum:
            raise ValueError(f"max_frame is at least {_HEADER + minimum}")
        self._parse = parse
        self._minimum = minimum
        self._max_frame = max_frame
        self._buffer = bytearray()
        self._skipped = 0
        self._skip_code = ""

    def clear(self) -> None:
        """Forget buffered bytes (after a timeout: the next frame starts afresh)."""
        self._buffer.clear()
        self._skipped = 0
        self._skip_code = ""

    def feed(self, data: bytes) -> list[_Item | Garbage]:
        """Append bytes; return every complete item now available, in order.

        Never raises: each run of bytes that are not a frame becomes one :class:`Garbage` item
        (the bytes skipped and the reason: a rejected frame's rest joins its run), reported
        before the next frame or at the end of the call; decoding resumes at the next
        preamble. A frame whose length exceeds ``max_frame`` is garbage. A corrupted length
        that still fits ``max_frame`` holds later frames back until that many bytes arrived
        (the check byte then fails and they are found again); a driver that times out calls
        :meth:`clear`.
        """
        items: list[_Item | Garbage] = []
        buffer = self._buffer
        buffer += data
        while True:
            start = buffer.find(PREAMBLE)
            if start < 0:
                keep = _partial_preamble(buffer)
                self._skip(items, len(buffer) - keep, "no_header")
                break
            self._skip(items, start, "no_header")
            if len(buffer) < _HEADER:
                break
            length = int.from_bytes(buffer[5:7], "big")
            if length < self._minimum or _HEADER + length > self._max_frame:
                # Not a frame we accept: step past this preamble and look for the next one.
                self._skip(items, 1, "bad_frame" if length < self._minimum else "too_long")
                continue
            if len(buffer) < _HEADER + length:
                break
            frame = bytes(buffer[: _HEADER + length])
            try:
                item = self._parse(frame)
            except CodecError as exc:
                # A frame start whose check fails may hide the real next frame inside it.
                self._skip(items, 1, exc.code)
                continue
            self._flush(items)
            items.append(item)
            del buffer[: _HEADER + length]
        self._flush(items)
        return items

    def _skip(self, items: list[_Item | Garbage], count: int, code: str) -> None:
        """Drop ``count`` bytes. A new reason ends the current run of skipped bytes; bytes
        without a header join the run before them (the rest of a rejected frame)."""
        if count <= 0:
            return
        del self._buffer[:count]
        if self._skipped and code not in ("no_header", self._skip_code):
            self._flush(items)
        if not self._skipped:
            self._skip_code = code
        self._skipped += count

    def _flush(self, items: list[_Item | Garbage]) -> None:
        if self._skipped:
            items.append(Garbage(self._skipped, self._skip_code))
            self._skipped = 0
            self._skip_code = ""


def _partial_preamble(buffer: bytearray) -> int:
    """How many trailing bytes of ``buffer`` could be the start of a preamble."""
    for size in range(min(len(PREAMBLE) - 1, len(buffer)), 0, -1):
        if buffer.endswith(PREAMBLE[:size]):
            return size
    return 0


class SamDecoder(_FrameDecoder[SamReply]):
    """Stream decoder for the host side: bytes from a reader → :class:`SamReply` items."""

    __slots__ = ()

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        super().__init__(parse_reply, 4, max_frame=max_frame)


class SamCommandDecoder(_FrameDecoder[SamCommand]):
    """Stream decoder for the reader side: bytes from a host → :class:`SamCommand` items."""

    __slots__ = ()

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        super().__init__(parse_command, 3, max_frame=max_frame)
