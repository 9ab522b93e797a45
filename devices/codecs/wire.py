"""Shared pieces of the framed serial protocols hallhub defines (wired evaluator, LED panel
line): CRC-16/MODBUS, a bounds-checked payload reader, and the ``Garbage`` item of stream
decoders.

CRC-16/MODBUS (Greg Cook, *Catalogue of parametrised CRC algorithms*): width 16, poly 0x8005
(reflected 0xA001), init 0xFFFF, refin/refout true, xorout 0; check("123456789") = 0x4B37.
Sent low byte first (*MODBUS over Serial Line* V1.02 §2.5.1.2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec

from devices.errors import CodecError, EncodeError, FrameError

T = TypeVar("T")


def _table() -> tuple[int, ...]:
    rows = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        rows.append(crc)
    return tuple(rows)


_CRC_TABLE = _table()


def crc16_modbus(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/MODBUS of ``data`` (table driven); pass a previous result as ``crc`` to continue."""
    for byte in bytes(data):
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


class Garbage(msgspec.Struct, frozen=True):
    """Bytes a stream decoder skipped: ``skipped`` bytes, ``code`` of the first reason:
    ``no_header`` (bytes before a frame header), ``too_long`` (a length beyond ``max_frame``),
    ``bad_checksum`` / ``bad_frame`` (a frame that failed its check or its fields),
    ``truncated`` (a partial frame discarded by ``flush()``)."""

    skipped: int
    code: str


class Reader:
    """Reads big-endian fields from one payload; every read past the end raises FrameError."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes.

        Raises:
            FrameError: fewer than ``n`` bytes are left.
        """
        end = self._pos + n
        if end > len(self._data):
            raise FrameError(f"payload too short: needs {end} bytes, has {len(self._data)}")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        """One unsigned byte."""
        return self.take(1)[0]

    def u16(self) -> int:
        """An unsigned big-endian 16-bit integer."""
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        """An unsigned big-endian 32-bit integer."""
        return int.from_bytes(self.take(4), "big")

    def str8(self) -> bytes:
        """A length byte, then that many bytes (undecoded)."""
        return self.take(self.u8())

    def end(self) -> None:
        """Raises FrameError if bytes are left over."""
        if self._pos != len(self._data):
            raise FrameError(f"{len(self._data) - self._pos} unexpected bytes after the fields")


def str8(data: bytes, field: str, limit: int) -> bytes:
    """``data`` with its length byte in front.

    Raises:
        EncodeError: ``data`` is longer than ``limit`` bytes (at most 255).
    """
    if len(data) > limit:
        raise EncodeError(f"{field} is {len(data)} bytes, at most {limit}")
    return bytes((len(data),)) + data


def check_int(value: int, low: int, high: int, field: str) -> int:
    """``value`` if ``low <= value <= high``.

    Raises:
        EncodeError: out of range.
    """
    if not low <= value <= high:
        raise EncodeError(f"{field} must be {low}..{high}, got {value}")
    return value


class FrameScanner(Generic[T]):
    """Finds length-checked frames in a byte stream: ``header``, a length byte at ``len_at``,
    then ``n + overhead`` bytes in all. Used by the stream decoders of the codecs.

    ``check`` validates the envelope of a candidate frame (terminator, CRC) and raises a
    CodecError if it fails: the scanner then drops one byte and searches again, because a real
    frame may start inside the rejected bytes. ``decode`` turns an intact frame into an item and
    raises FrameError if its fields are invalid: the whole frame is dropped.
    """

    __slots__ = ("_buf", "_check", "_decode", "_header", "_len_at", "_max_frame", "_overhead")

    def __init__(
        self,
        *,
        header: bytes,
        len_at: int,
        overhead: int,
        max_frame: int,
        check: Callable[[bytes], None],
        decode: Callable[[bytes], T],
    ) -> None:
        if max_frame < overhead:
            raise ValueError(f"max_frame must be at least {overhead}")
        self._buf = bytearray()
        self._header = header
        self._len_at = len_at
        self._overhead = overhead
        self._max_frame = max_frame
        self._check = check
        self._decode = decode

    def feed(self, data: bytes) -> list[T | Garbage]:
        """Append ``data``; return every complete item now available, in order. Never raises."""
        self._buf += data
        out: list[T | Garbage] = []
        pending: list[Garbage] = []
        self._scan(out, pending)
        self._emit(out, pending)
        return out

    def flush(self) -> list[T | Garbage]:
        """The line went quiet: a partial frame left in the buffer is garbage (``truncated``);
        frames that follow inside it are still decoded. Leaves the buffer empty."""
        out: list[T | Garbage] = []
        pending: list[Garbage] = []
        self._scan(out, pending)
        while self._buf:
            self._skip(1, "truncated", pending)
            self._scan(out, pending)
        self._emit(out, pending)
        return out

    def _scan(self, out: list[T | Garbage], pending: list[Garbage]) -> None:
        buf = self._buf
        header = self._header
        while buf:
            start = buf.find(header)
            if start < 0:
                # Keep a tail that could be the beginning of a header split across reads.
                keep = next(
                    (k for k in range(len(header) - 1, 0, -1) if buf.endswith(header[:k])), 0
                )
                if len(buf) > keep:
                    self._skip(len(buf) - keep, "no_header", pending)
                return
            if start:
                self._skip(start, "no_header", pending)
            if len(buf) <= self._len_at:
                return
            total = buf[self._len_at] + self._overhead
            if total > self._max_frame:
                self._skip(1, "too_long", pending)
                continue
            if len(buf) < total:
                return
            frame = bytes(buf[:total])
            try:
                self._check(frame)
            except CodecError as exc:
                self._skip(1, exc.code, pending)
                continue
            try:
                item = self._decode(frame)
            except CodecError as exc:
                self._skip(total, exc.code, pending)
                continue
            del buf[:total]
            self._emit(out, pending)
            out.append(item)

    def _skip(self, n: int, code: str, pending: list[Garbage]) -> None:
        del self._buf[:n]
        if pending:
            pending[0] = Garbage(pending[0].skipped + n, pending[0].code)
        else:
            pending.append(Garbage(n, code))

    @staticmethod
    def _emit(out: list[T | Garbage], pending: list[Garbage]) -> None:
        if pending:
            out.append(pending.pop())
