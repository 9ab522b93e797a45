"""LED window panels (窗口显示屏, SPEC D5) on a shared RS-485 line: the frame protocol of
``docs/devices/led-panel.md``, master side, and :func:`render_window_lines`. Sans-I/O.

Frame: ``AA 55 ADDR CMD LEN PAYLOAD CRC(lo,hi)``; the CRC is CRC-16/MODBUS over
``ADDR..PAYLOAD``. Address 0 is broadcast (no reply), 1–247 one panel. A reply carries the
panel's own address and ``CMD | 0x80``. Texts are a length byte plus GB2312 (the panels' font
ROMs); widths are in cells, one per GB2312 byte (ASCII 8 px, hanzi 16 px).
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

import msgspec

from devices.codecs.led_text import (
    decode_gb2312,
    display_width,
    encode_gb2312,
    gb2312_safe,
    render_window_lines,
)
from devices.codecs.wire import FrameScanner, Garbage, Reader, check_int, crc16_modbus, str8
from devices.errors import ChecksumError, EncodeError, FrameError

__all__ = [
    "BROADCAST",
    "MAX_FRAME",
    "Clear",
    "Garbage",
    "LedDecoder",
    "LedFrame",
    "LedItem",
    "PanelReply",
    "PanelResult",
    "PanelStatus",
    "QueryStatus",
    "SetBrightness",
    "SetHeader",
    "ShowText",
    "display_width",
    "encode_frame",
    "encode_gb2312",
    "gb2312_safe",
    "parse_frame",
    "render_window_lines",
]

HEADER: Final = b"\xaa\x55"
MAX_FRAME: Final = 255 + 7
BROADCAST: Final = 0
MAX_ADDRESS: Final = 247
MAX_LINES: Final = 8
MAX_BRIGHTNESS: Final = 15

CMD_SHOW_TEXT: Final = 0x01
CMD_SET_BRIGHTNESS: Final = 0x02
CMD_CLEAR: Final = 0x03
CMD_QUERY_STATUS: Final = 0x04
CMD_SET_HEADER: Final = 0x05
REPLY: Final = 0x80

PanelResult: TypeAlias = Literal["ok", "unsupported", "bad_payload", "truncated"]
_RESULTS: Final[tuple[PanelResult, ...]] = ("ok", "unsupported", "bad_payload", "truncated")
_INFO_MAX: Final = 32


class ShowText(msgspec.Struct, frozen=True, kw_only=True):
    """``SHOW_TEXT`` (0x01): replace the body lines (1–8, GB2312)."""

    address: int
    lines: tuple[str, ...]


class SetBrightness(msgspec.Struct, frozen=True, kw_only=True):
    """``SET_BRIGHTNESS`` (0x02): level 0 (dimmest, still lit) – 15."""

    address: int
    level: int


class Clear(msgspec.Struct, frozen=True, kw_only=True):
    """``CLEAR`` (0x03): blank the body lines; the header stays."""

    address: int


class QueryStatus(msgspec.Struct, frozen=True, kw_only=True):
    """``QUERY_STATUS`` (0x04); answered by :class:`PanelStatus`. Never broadcast."""

    address: int


class SetHeader(msgspec.Struct, frozen=True, kw_only=True):
    """``SET_HEADER`` (0x05): the static header, drawn ``{window_number}号窗口 {window_name}``;
    the name is at most 64 bytes."""

    address: int
    window_number: int
    window_name: str


class PanelReply(msgspec.Struct, frozen=True, kw_only=True):
    """A reply (``CMD | 0x80``) from panel ``address`` to request ``command``."""

    address: int
    command: int
    result: PanelResult


class PanelStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The successful reply to ``QUERY_STATUS`` (0x84, result 0)."""

    address: int
    rows: int
    columns: int
    brightness: int
    model: str
    firmware: str


LedFrame: TypeAlias = (
    ShowText | SetBrightness | Clear | QueryStatus | SetHeader | PanelReply | PanelStatus
)
LedItem: TypeAlias = LedFrame | Garbage


# --- frames -----------------------------------------------------------------------------------


def _ascii(value: str, field: str) -> bytes:
    if not value.isascii() or not value.isprintable():
        raise EncodeError(f"{field} must be printable ASCII")
    return str8(value.encode("ascii"), field, _INFO_MAX)


def _command_payload(frame: LedFrame) -> tuple[int, bytes]:
    if isinstance(frame, ShowText):
        if not 1 <= len(frame.lines) <= MAX_LINES:
            raise EncodeError(f"SHOW_TEXT takes 1..{MAX_LINES} lines, got {len(frame.lines)}")
        body = b"".join(str8(encode_gb2312(t, "line"), "line", 255) for t in frame.lines)
        return CMD_SHOW_TEXT, bytes((len(frame.lines),)) + body
    if isinstance(frame, SetBrightness):
        return CMD_SET_BRIGHTNESS, bytes((check_int(frame.level, 0, MAX_BRIGHTNESS, "level"),))
    if isinstance(frame, Clear):
        return CMD_CLEAR, b""
    if isinstance(frame, QueryStatus):
        if frame.address == BROADCAST:
            raise EncodeError("QUERY_STATUS cannot be broadcast: nobody would answer")
        return CMD_QUERY_STATUS, b""
    if isinstance(frame, SetHeader):
        return CMD_SET_HEADER, (
            check_int(frame.window_number, 0, 0xFFFF, "window_number").to_bytes(2, "big")
            + str8(encode_gb2312(frame.window_name, "window_name"), "window_name", 64)
        )
    if isinstance(frame, PanelStatus):
        return CMD_QUERY_STATUS | REPLY, (
            bytes(
                (
                    0,
                    check_int(frame.rows, 0, 0xFF, "rows"),
                    check_int(frame.columns, 0, 0xFF, "columns"),
                    check_int(frame.brightness, 0, MAX_BRIGHTNESS, "brightness"),
                )
            )
            + _ascii(frame.model, "model")
            + _ascii(frame.firmware, "firmware")
        )
    command = check_int(frame.command, 0, 0x7F, "command")
    if command == CMD_QUERY_STATUS and frame.result == "ok":
        raise EncodeError("a successful QUERY_STATUS reply is a PanelStatus")
    if frame.result not in _RESULTS:
        raise EncodeError(f"unknown result {frame.result!r}")
    return command | REPLY, bytes((_RESULTS.index(frame.result),))


def encode_frame(frame: LedFrame) -> bytes:
    """The bytes of ``frame`` on the line, header to CRC.

    Raises:
        EncodeError: an address outside 0–247 (a reply: 1–247), a broadcast QUERY_STATUS, a
            text outside GB2312, 0 or more than 8 lines, a level outside 0–15, a window name
            over 64 bytes, a payload over 255 bytes, or another number out of range.
    """
    low = 1 if isinstance(frame, PanelReply | PanelStatus) else 0
    address = check_int(frame.address, low, MAX_ADDRESS, "address")
    cmd, payload = _command_payload(frame)
    if len(payload) > 255:
        raise EncodeError(f"payload is {len(payload)} bytes, at most 255")
    body = bytes((address, cmd, len(payload))) + payload
    crc = crc16_modbus(body)
    return HEADER + body + bytes((crc & 0xFF, crc >> 8))


def _check_envelope(frame: bytes) -> None:
    if len(frame) < 7 or frame[:2] != HEADER:
        raise FrameError("a frame starts with AA 55 and has at least 7 bytes")
    if len(frame) != frame[4] + 7:
        raise FrameError(f"LEN {frame[4]} does not match a {len(frame)}-byte frame")
    sent = frame[-2] | frame[-1] << 8
    if crc16_modbus(frame[2:-2]) != sent:
        raise ChecksumError(f"CRC {sent:04X} does not match {crc16_modbus(frame[2:-2]):04X}")


def _decode_request(address: int, cmd: int, r: Reader) -> LedFrame:
    if cmd == CMD_SHOW_TEXT:
        count = r.u8()
        if not 1 <= count <= MAX_LINES:
            raise FrameError(f"SHOW_TEXT with {count} lines")
        lines = tuple(decode_gb2312(r.str8(), "line") for _ in range(count))
        return ShowText(address=address, lines=lines)
    if cmd == CMD_SET_BRIGHTNESS:
        level = r.u8()
        if level > MAX_BRIGHTNESS:
            raise FrameError(f"brightness {level} is not 0..{MAX_BRIGHTNESS}")
        return SetBrightness(address=address, level=level)
    if cmd == CMD_CLEAR:
        return Clear(address=address)
    if cmd == CMD_QUERY_STATUS:
        return QueryStatus(address=address)
    if cmd == CMD_SET_HEADER:
        number = r.u16()
        return SetHeader(
            address=address,
            window_number=number,
            window_name=decode_gb2312(r.str8(), "window_name"),
        )
    raise FrameError(f"unknown command 0x{cmd:02X}")


def _decode_reply(address: int, command: int, r: Reader) -> LedFrame:
    code = r.u8()
    if code >= len(_RESULTS):
        raise FrameError(f"unknown result {code}")
    if command == CMD_QUERY_STATUS and code == 0:
        rows, columns, brightness = r.u8(), r.u8(), r.u8()
        model, firmware = r.str8(), r.str8()
        if not (model + firmware).isascii():
            raise FrameError("model and firmware are ASCII")
        return PanelStatus(
            address=address,
            rows=rows,
            columns=columns,
            brightness=brightness,
            model=model.decode("ascii"),
            firmware=firmware.decode("ascii"),
        )
    return PanelReply(address=address, command=command, result=_RESULTS[code])


def _decode_body(frame: bytes) -> LedFrame:
    address, cmd = frame[2], frame[3]
    if address > MAX_ADDRESS:
        raise FrameError(f"address {address} is reserved")
    r = Reader(frame[5:-2])
    if cmd & REPLY:
        if address == BROADCAST:
            raise FrameError("a reply comes from a panel address, never 0")
        item = _decode_reply(address, cmd & 0x7F, r)
    else:
        item = _decode_request(address, cmd, r)
    r.end()
    return item


def parse_frame(frame: bytes) -> LedFrame:
    """Decode one complete frame, header to CRC (a request or a reply).

    Raises:
        FrameError: no header, LEN not matching, a reserved address (248–255), an unknown
            command or result, invalid fields (short or long payload, text not GB2312, 0 or
            more than 8 lines, brightness over 15).
        ChecksumError: the CRC does not match.
    """
    _check_envelope(frame)
    return _decode_body(frame)


class LedDecoder:
    """Finds frames in the bytes of the RS-485 line."""

    __slots__ = ("_scanner",)

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        """``max_frame`` bounds the buffer: a frame claiming more bytes is garbage.

        Raises:
            ValueError: ``max_frame`` under 7 (no frame would fit).
        """
        self._scanner: FrameScanner[LedFrame] = FrameScanner(
            header=HEADER,
            len_at=4,
            overhead=7,
            max_frame=max_frame,
            check=_check_envelope,
            decode=_decode_body,
        )

    def feed(self, data: bytes) -> list[LedItem]:
        """Append bytes; return every complete item now available, in order. Never raises:
        garbage becomes a :class:`Garbage` item and the decoder resynchronises on the next
        ``AA 55``."""
        return self._scanner.feed(data)

    def flush(self) -> list[LedItem]:
        """Call after a reply timeout or 3.5 character times of silence: a partial frame
        becomes ``Garbage(code="truncated")``, frames after it are decoded."""
        return self._scanner.flush()
