"""ESC/POS for the thermal ticket printer (D1, Q7): the ticket, the QR code, status requests.

The host-to-printer half is here; the printer-to-host half (DLE EOT replies, ASB blocks,
:class:`PrinterReplyDecoder`) is in :mod:`devices.codecs.escpos_status` and re-exported.

Commands used (Epson ESC/POS Command Reference; docs/devices/printer.md has the table):

==================  =====================  ===========================================
command             bytes                  use
==================  =====================  ===========================================
ESC @               1B 40                  initialise (styles reset, buffer kept)
FS &                1C 26                  Chinese mode: two-byte GB18030 characters
ESC a n             1B 61 n                alignment (0 left, 1 centre, 2 right)
ESC E n             1B 45 n                emphasis on (1) / off (0)
GS ! n              1D 21 n                size: width ``n >> 4`` + 1, height ``n & 7`` + 1
LF                  0A                     print the line and feed
GS ( k …            1D 28 6B pL pH 31 fn…  QR code: fn 65 model, 67 module, 69 error level,
                                           80 store data, 81 print
GS V 66 0           1D 56 42 00            feed to the cutter and partial cut
DLE EOT n           10 04 n                real-time status request (n = 1..4)
GS a n              1D 61 n                enable Automatic Status Back items
==================  =====================  ===========================================

Text is GB18030, what Chinese thermal printers read in Chinese mode. Control characters are
refused (a group name must not smuggle commands in, least of all ``10 04``), as are strings
GB18030 cannot encode (lone surrogates). Pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from typing import Literal, TypeAlias

import msgspec

from devices.codecs.escpos_status import (
    AsbStatus,
    ErrorCause,
    OfflineCause,
    Paper,
    PaperSensor,
    PrinterInfo,
    PrinterReply,
    PrinterReplyDecoder,
    PrinterStatus,
    StatusReply,
    parse_asb,
    parse_status,
    status_from_asb,
    status_from_replies,
)
from devices.codecs.wire import Garbage
from devices.errors import EncodeError

__all__ = [
    "ASB_DEFAULT",
    "ASB_DRAWER",
    "ASB_ERROR",
    "ASB_ONLINE",
    "ASB_PAPER",
    "CUT",
    "INIT",
    "QR_CAPACITY",
    "AsbStatus",
    "ErrorCause",
    "Garbage",
    "OfflineCause",
    "Paper",
    "PaperSensor",
    "PrintedTicket",
    "PrinterInfo",
    "PrinterReply",
    "PrinterReplyDecoder",
    "PrinterStatus",
    "QrErrorLevel",
    "StatusReply",
    "encode_asb",
    "encode_qr",
    "encode_status_request",
    "encode_text",
    "encode_ticket",
    "parse_asb",
    "parse_status",
    "status_from_asb",
    "status_from_replies",
]

INIT = b"\x1b\x40"
CHINESE_MODE = b"\x1c\x26"
LF = b"\x0a"
# GS V 66 0: "Feeds paper to (cutting position + 0) and executes a partial cut" (Epson GS V,
# function B; the reference's own program example sends exactly these bytes).
CUT = b"\x1d\x56\x42\x00"

# GS a n item bits (Epson GS a): 0 drawer pin 3, 1 online/offline, 2 error, 3 roll paper sensor.
ASB_DRAWER, ASB_ONLINE, ASB_ERROR, ASB_PAPER = 0x01, 0x02, 0x04, 0x08
ASB_DEFAULT = ASB_ONLINE | ASB_ERROR | ASB_PAPER

QrErrorLevel: TypeAlias = Literal["L", "M", "Q", "H"]
_QR_ERROR_N = {"L": 48, "M": 49, "Q": 50, "H": 51}  # GS ( k function 169, n = 48..51
# Model 2 holds at most these many 8-bit bytes (version 40; ISO/IEC 18004 capacity table).
QR_CAPACITY: dict[str, int] = {"L": 2953, "M": 2331, "Q": 1663, "H": 1273}
_QR_MODULE_RANGE = range(1, 17)  # GS ( k function 167: 1 <= n <= 16 dots

_ALIGN = {"left": 0, "center": 1, "right": 2}
_MIN_WIDTH, _MAX_WIDTH = 16, 96
_MAX_NUMBER_SIZE = 4


class PrintedTicket(msgspec.Struct, frozen=True, kw_only=True):
    """The content of one paper ticket.

    ``issued_at`` is already formatted in the hall's time zone ("2026-11-26 09:30");
    ``qr_url`` is the citizen's page (printable ASCII: percent-encode anything else);
    ``header`` and ``footer`` come from the printer's remote configuration (D6).
    """

    hall_name: str
    number: str
    group_name: str
    people_ahead: int
    issued_at: str
    qr_url: str
    header: str = ""
    footer: list[str] = []


def encode_status_request(n: int) -> bytes:
    """``DLE EOT n``: ask for status n in real time (1 printer, 2 offline cause, 3 error
    cause, 4 roll paper sensor). The printer answers one byte even while offline.

    Raises:
        EncodeError: n is not 1..4.
    """
    if n not in (1, 2, 3, 4):
        raise EncodeError(f"DLE EOT n must be 1..4, got {n}")
    return bytes((0x10, 0x04, n))


def encode_asb(items: int = ASB_DEFAULT) -> bytes:
    """``GS a n``: send a 4-byte ASB block now and whenever one of ``items`` changes.

    ``items`` is an OR of ``ASB_*``; 0 turns ASB off.

    Raises:
        EncodeError: items is not 0..255.
    """
    if not 0 <= items <= 0xFF:
        raise EncodeError(f"GS a n must be 0..255, got {items}")
    return bytes((0x1D, 0x61, items))


def encode_text(text: str) -> bytes:
    """``text`` as GB18030 bytes for Chinese mode.

    Raises:
        EncodeError: text has a control character (line breaks included: one call, one
            line) or a code point GB18030 cannot encode.
    """
    for ch in text:
        if unicodedata.category(ch) == "Cc":
            raise EncodeError(f"control character {ord(ch):#06x} in printed text")
    try:
        return text.encode("gb18030")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"not encodable in GB18030: {text[exc.start : exc.end]!r}") from exc


def encode_qr(data: str, *, module: int = 6, error: QrErrorLevel = "M") -> bytes:
    """The five ``GS ( k`` commands that print ``data`` as a model 2 QR code.

    Function 165 (model 2), 167 (module size in dots), 169 (error correction level),
    180 (store ``data``) and 181 (print), in that order.

    Raises:
        EncodeError: data is empty, not printable ASCII, or longer than a model 2 symbol holds
            at this error level (:data:`QR_CAPACITY`); module is not 1..16; error unknown.
    """
    if module not in _QR_MODULE_RANGE:
        raise EncodeError(f"QR module size must be 1..16 dots, got {module}")
    if error not in _QR_ERROR_N:
        raise EncodeError(f"QR error level must be L, M, Q or H, got {error!r}")
    if not data or not all(" " <= ch <= "~" for ch in data):
        raise EncodeError("QR data must be non-empty printable ASCII")
    payload = data.encode("ascii")
    if len(payload) > QR_CAPACITY[error]:
        raise EncodeError(
            f"QR data is {len(payload)} bytes, model 2 level {error} holds {QR_CAPACITY[error]}"
        )
    size = len(payload) + 3  # pL pH count cn, fn and m too
    return b"".join(
        (
            b"\x1d\x28\x6b\x04\x00\x31\x41\x32\x00",  # 165: model 2
            b"\x1d\x28\x6b\x03\x00\x31\x43" + bytes((module,)),  # 167: module size
            b"\x1d\x28\x6b\x03\x00\x31\x45" + bytes((_QR_ERROR_N[error],)),  # 169: level
            b"\x1d\x28\x6b" + size.to_bytes(2, "little") + b"\x31\x50\x30" + payload,  # 180
            b"\x1d\x28\x6b\x03\x00\x31\x51\x30",  # 181: print
        )
    )


def _columns(ch: str) -> int:
    # One-byte (ASCII) characters take one column, GB18030 multi-byte ones two.
    return 1 if ord(ch) < 0x80 else 2


def _wrap(text: str, columns: int) -> list[str]:
    """Split ``text`` into lines of at most ``columns`` printed columns (never mid-character)."""
    lines: list[str] = []
    line, used = "", 0
    for ch in text:
        w = _columns(ch)
        if used + w > columns and line:
            lines.append(line)
            line, used = "", 0
        line += ch
        used += w
    if line or not lines:
        lines.append(line)
    return lines


def _size(width: int, height: int) -> bytes:
    return bytes((0x1D, 0x21, (width - 1) << 4 | (height - 1)))


def _align(where: Literal["left", "center", "right"]) -> bytes:
    return bytes((0x1B, 0x61, _ALIGN[where]))


def _bold(on: bool) -> bytes:
    return bytes((0x1B, 0x45, int(on)))


def _lines(text: str, columns: int) -> bytes:
    return b"".join(encode_text(line) + LF for line in _wrap(text, columns))


def encode_ticket(
    t: PrintedTicket,
    *,
    width_chars: int = 42,
    qr_module: int = 6,
    qr_error: QrErrorLevel = "M",
) -> bytes:
    """The whole ticket, from ``ESC @`` to the cut, centred.

    Layout: header, hall name (bold, double height), group, the number (bold, up to four
    times wide and high, smaller if it would not fit), people ahead, time, the QR code of
    ``qr_url``, a hint to scan it, the footer lines, then feed and partial cut.

    Args:
        t: what to print.
        width_chars: columns of the normal font across the paper: 42 for font A (12 dots)
            on a 512-dot line (80 mm paper, Epson TM-T88), 48 on 576 dots, 32 on 58 mm
            paper. A Chinese character takes two columns. Long lines wrap.
        qr_module: QR module size in dots (1..16).
        qr_error: QR error correction level.

    Raises:
        EncodeError: a text field cannot be printed (control character, not GB18030), the
            number is empty or does not fit even at normal size, ``people_ahead`` is
            negative, ``width_chars`` is outside 16..96, or the QR data is refused by
            :func:`encode_qr`.
    """
    if not _MIN_WIDTH <= width_chars <= _MAX_WIDTH:
        raise EncodeError(f"width_chars must be {_MIN_WIDTH}..{_MAX_WIDTH}, got {width_chars}")
    if t.people_ahead < 0:
        raise EncodeError(f"people_ahead must be >= 0, got {t.people_ahead}")
    number_columns = sum(_columns(ch) for ch in t.number)
    if not number_columns or number_columns > width_chars:
        raise EncodeError(f"ticket number must be 1..{width_chars} columns: {t.number!r}")
    number_size = min(_MAX_NUMBER_SIZE, width_chars // number_columns)

    out = bytearray(INIT + CHINESE_MODE + _align("center"))
    if t.header:
        out += _lines(t.header, width_chars)
    out += _bold(True) + _size(1, 2) + _lines(t.hall_name, width_chars) + _size(1, 1)
    out += _bold(False) + _lines(t.group_name, width_chars)
    out += _bold(True) + _size(number_size, number_size) + encode_text(t.number) + LF
    out += _size(1, 1) + _bold(False)
    out += _lines(f"前面还有 {t.people_ahead} 人等候", width_chars)
    out += _lines(f"取号时间 {t.issued_at}", width_chars)
    out += encode_qr(t.qr_url, module=qr_module, error=qr_error) + LF
    out += _lines("请扫码查看排队进度", width_chars)
    for line in t.footer:
        out += _lines(line, width_chars)
    out += CUT
    return bytes(out)
