"""Serial-mode QR/barcode code readers (D5), sans-I/O.

A reader sends each code it decodes as one record: an optional prefix, the code's bytes and a
record suffix (CR by default; LF or CRLF as configured). No length, no checksum. The decoding
rules, what the kinds of :func:`classify` mean and the worked examples are in
docs/devices/code-reader.md; the tests use those examples as golden vectors.
"""

from __future__ import annotations

import re
from typing import Final, Literal
from urllib.parse import parse_qs, urlsplit

import msgspec

from devices.codecs.wire import Garbage
from devices.errors import EncodeError, FrameError

__all__ = [
    "Classified",
    "CodeKind",
    "CodeReaderDecoder",
    "Encoding",
    "Garbage",
    "ScannedCode",
    "classify",
    "encode_code",
    "parse_line",
]

MAX_LEN: Final = 1024
Encoding = Literal["auto", "utf-8", "gb18030"]
CodeKind = Literal["appointment", "ticket", "other"]

# hub/domain/appointment.py: a check-in code is CODE_DIGITS (6) ASCII digits.
_APPOINTMENT = re.compile(r"[0-9]{6}")
# hub/api/ticket_qr.py: tokens up to TOKEN_MAX (64) characters; hub/services/tickets.py makes
# them with secrets.token_urlsafe(16): 22 characters of the URL-safe base64 alphabet.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BARE_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
_TICKET_PATHS = frozenset({"/ticket/", "/ticket", "/ticket/index.html"})
_LINE_ENDS = "\r\n"


class ScannedCode(msgspec.Struct, frozen=True):
    """One code as the reader decoded it (prefix, suffix and stray CR/LF removed)."""

    text: str


# Garbage (devices.codecs.wire): A record that is not a code: ``skipped`` bytes (prefix and suffix
# included) and why (``bad_frame`` missing prefix, ``bad_encoding``, ``too_long``).


class Classified(msgspec.Struct, frozen=True):
    """What a scanned code is: ``value`` is the check-in code, the ticket token, or the text."""

    kind: CodeKind
    value: str


def _decode(raw: bytes, encoding: Encoding) -> str:
    """``raw`` as text. Raises UnicodeDecodeError."""
    if encoding != "auto":
        return raw.decode(encoding)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def parse_line(line: bytes, *, prefix: bytes = b"", encoding: Encoding = "auto") -> ScannedCode:
    """One record without its suffix.

    Raises:
        FrameError: the configured ``prefix`` is missing, the bytes are text in neither
            UTF-8 nor GB18030 (``auto``) or not in the configured encoding, or the record
            holds nothing but CR/LF.
    """
    if not line.startswith(prefix):
        raise FrameError("the record does not start with the configured prefix")
    try:
        text = _decode(line[len(prefix) :], encoding).strip(_LINE_ENDS)
    except UnicodeDecodeError:
        raise FrameError(f"the record is not text ({encoding})") from None
    if not text:
        raise FrameError("the record is empty")
    return ScannedCode(text)


def encode_code(
    text: str, *, suffix: bytes = b"\r", prefix: bytes = b"", encoding: str = "utf-8"
) -> bytes:
    """The record a reader sends for ``text``.

    Raises:
        EncodeError: empty text, text with CR or LF, or text the encoding cannot hold.
    """
    if not text or any(c in text for c in _LINE_ENDS):
        raise EncodeError("a code is non-empty and has no CR or LF")
    try:
        return prefix + text.encode(encoding) + suffix
    except (UnicodeEncodeError, LookupError):
        raise EncodeError(f"the code cannot be written in {encoding}") from None


class CodeReaderDecoder:
    """Stream decoder: bytes from a reader → :class:`ScannedCode` and :class:`Garbage`."""

    __slots__ = ("_buffer", "_discarded", "_encoding", "_max_len", "_prefix", "_suffix")

    def __init__(
        self,
        *,
        suffix: bytes = b"\r",
        prefix: bytes = b"",
        encoding: Encoding = "auto",
        max_len: int = MAX_LEN,
    ) -> None:
        """Args: the reader's record ``suffix`` and ``prefix``, its text ``encoding``, and
        the longest record kept (``max_len`` bytes without the suffix).

        Raises:
            ValueError: an empty suffix or ``max_len`` below 1.
        """
        if not suffix:
            raise ValueError("a code reader record needs a suffix")
        if max_len < 1:
            raise ValueError("max_len is at least 1")
        self._suffix = suffix
        self._prefix = prefix
        self._encoding: Encoding = encoding
        self._max_len = max_len
        self._buffer = bytearray()
        self._discarded: int | None = None  # bytes of an over-long record dropped so far

    def feed(self, data: bytes) -> list[ScannedCode | Garbage]:
        """Append bytes; return every complete item now available, in order.

        Never raises. Empty records give no item; a record that is not a code is one
        :class:`Garbage` item, reported when its suffix arrives (an over-long one is dropped
        as it comes, so the buffer never holds more than ``max_len`` plus a suffix).
        """
        items: list[ScannedCode | Garbage] = []
        buffer = self._buffer
        buffer += data
        suffix = self._suffix
        while True:
            end = buffer.find(suffix)
            if end < 0:
                # The tail may hold the first bytes of a suffix: keep those.
                limit = self._max_len + len(suffix) - 1
                if self._discarded is None and len(buffer) > limit:
                    self._discarded = 0
                if self._discarded is not None:
                    drop = max(0, len(buffer) - (len(suffix) - 1))
                    self._discarded += drop
                    del buffer[:drop]
                break
            line = bytes(buffer[:end])
            del buffer[: end + len(suffix)]
            size = end + len(suffix)
            if self._discarded is not None:
                items.append(Garbage(self._discarded + size, "too_long"))
                self._discarded = None
            elif end > self._max_len:
                items.append(Garbage(size, "too_long"))
            elif line.strip(b"\r\n"):
                items.append(self._item(line, size))
        return items

    def _item(self, line: bytes, size: int) -> ScannedCode | Garbage:
        if not line.startswith(self._prefix):
            return Garbage(size, "bad_frame")
        try:
            return parse_line(line, prefix=self._prefix, encoding=self._encoding)
        except FrameError:
            # The prefix is there: either undecodable, or nothing but the prefix and CR/LF.
            rest = line[len(self._prefix) :].strip(b"\r\n")
            return Garbage(size, "bad_encoding" if rest else "bad_frame")


def classify(text: str) -> Classified:
    """What a scanned code is (docs/devices/code-reader.md, "What a code is").

    ``appointment``: 6 ASCII digits; ``ticket``: the address of a ticket's page
    ``http(s)://<host>/ticket/?t=<token>`` or a bare 22-character token; else ``other``.
    """
    code = text.strip()
    if _APPOINTMENT.fullmatch(code):
        return Classified("appointment", code)
    token = _ticket_token(code)
    if token is not None:
        return Classified("ticket", token)
    if _BARE_TOKEN.fullmatch(code):
        return Classified("ticket", code)
    return Classified("other", text)


def _ticket_token(code: str) -> str | None:
    try:
        parts = urlsplit(code)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if parts.path not in _TICKET_PATHS:
        return None
    tokens = parse_qs(parts.query).get("t", [])
    if len(tokens) != 1 or not _TOKEN.fullmatch(tokens[0]):
        return None
    return tokens[0]
