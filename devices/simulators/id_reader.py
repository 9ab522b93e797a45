"""A second-generation ID card reader (SAM module) on a serial port, for tests and the demo.

:class:`IdReaderModel` is sans-I/O: :meth:`~IdReaderModel.feed` takes the host's bytes and
returns the reader's reply bytes. A script puts a card on the reader (:meth:`insert`), takes
it off (:meth:`remove`) or breaks the module (:meth:`set_fault`). :func:`serve` runs a model
on a serial port (a pseudo-terminal in tests, ``hallhub simulate id_reader``).

The replies are built here, with this module's own framing and its own text layout (written
out again from GA 467 §7, docs/devices/id-reader.md), not with the codec's encoders, so that
the driver's decoder and this simulator cannot be wrong in the same way; only the incoming
commands are split with the codec's :class:`~devices.codecs.sam.SamCommandDecoder`.

Behaviour (GA 467): find answers 0x9F with a card in the field, else 0x80; select answers 0x90
after a successful find, else 0x81; read base info answers 0x90 with 1284 bytes after a
successful select, else 0x41. Reset (0x90) forgets find and select; status answers 0x90.
A fault (SAM self-test failed) answers 0x60 to everything. A command with a bad check byte
gets 0x10; an unknown command 0x21.
"""

from __future__ import annotations

import asyncio
from datetime import date

from devices.codecs.id_card import IdCard
from devices.codecs.sam import Garbage, SamCommandDecoder
from devices.simulators.serving import answer, open_port

_PREAMBLE = bytes.fromhex("AAAAAA9669")
_PHOTO_BYTES = 1024
# (characters, value) of the 256-byte text block: GA 467 §7, "文字信息" (docs/devices/id-reader.md).
_WIDTHS = {
    "name": 15,
    "sex": 1,
    "nation": 2,
    "birth": 8,
    "address": 35,
    "id_number": 18,
    "authority": 15,
    "valid_from": 8,
    "valid_to": 8,
    "reserved": 18,
}

RESET = (0x10, 0xFF)
STATUS = (0x11, 0xFF)
FIND = (0x20, 0x01)
SELECT = (0x20, 0x02)
READ = (0x30, 0x01)


def _reply(sw3: int, data: bytes = b"") -> bytes:
    body = bytes((0x00, 0x00, sw3)) + data
    content = (len(body) + 1).to_bytes(2, "big") + body
    check = 0
    for byte in content:
        check ^= byte
    return _PREAMBLE + content + bytes((check,))


def _ymd(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _text_block(card: IdCard) -> bytes:
    """The 256 bytes of card text: each field padded with spaces to its width, UCS-2 LE."""
    values = {
        "name": card.name,
        "sex": card.sex_code,
        "nation": card.nation_code,
        "birth": _ymd(card.birth_date),
        "address": card.address,
        "id_number": card.id_number,
        "authority": card.authority,
        "valid_from": _ymd(card.valid_from),
        "valid_to": "长期" if card.valid_to is None else _ymd(card.valid_to),
        "reserved": "",
    }
    text = "".join(values[field].ljust(width) for field, width in _WIDTHS.items())
    return text.encode("utf-16-le")


class IdReaderModel:
    """The reader's behaviour, bytes in and bytes out (module docstring)."""

    __slots__ = ("_card", "_decoder", "_fault", "_found", "_selected", "commands")

    def __init__(self) -> None:
        self._decoder = SamCommandDecoder()
        self._card: IdCard | None = None
        self._found = False
        self._selected = False
        self._fault = False
        self.commands: list[tuple[int, int]] = []
        """(CMD, PARA) of every command received, in order."""

    def insert(self, card: IdCard) -> None:
        """Put ``card`` on the reader (replacing any card there).

        Raises:
            ValueError: a field longer than its slot, or a photo over 1024 bytes.
        """
        values = [card.name, card.address, card.id_number, card.authority]
        widths = [_WIDTHS["name"], _WIDTHS["address"], _WIDTHS["id_number"], _WIDTHS["authority"]]
        if any(len(v) > w for v, w in zip(values, widths, strict=True)):
            raise ValueError("a card field is longer than its slot")
        if len(card.sex_code) != 1 or len(card.nation_code) != 2:
            raise ValueError("the sex code is 1 character, the nation code 2")
        if len(card.photo) > _PHOTO_BYTES:
            raise ValueError("the photo is at most 1024 bytes")
        self._card = card
        self._found = self._selected = False

    def remove(self) -> None:
        """Take the card off the reader."""
        self._card = None
        self._found = self._selected = False

    def set_fault(self, fault: bool) -> None:
        """Make the SAM module fail its self-test (every command answers 0x60) or recover."""
        self._fault = fault

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the host; return the reply bytes to send back (maybe none)."""
        out = bytearray()
        for item in self._decoder.feed(data):
            if isinstance(item, Garbage):
                if item.code == "bad_checksum":
                    out += _reply(0x10)
                continue
            command = (item.cmd, item.para)
            self.commands.append(command)
            out += self._answer(command)
        return bytes(out)

    def _answer(self, command: tuple[int, int]) -> bytes:
        if self._fault:
            return _reply(0x60)
        card = self._card
        if command == RESET:
            self._found = self._selected = False
            return _reply(0x90)
        if command == STATUS:
            return _reply(0x90)
        if command == FIND:
            self._found = card is not None
            self._selected = False
            return _reply(0x9F, bytes(4)) if self._found else _reply(0x80)
        if command == SELECT:
            self._selected = self._found and card is not None
            return _reply(0x90, bytes(8)) if self._selected else _reply(0x81)
        if command == READ:
            if card is None or not self._selected:
                return _reply(0x41)
            photo = card.photo.ljust(_PHOTO_BYTES, b"\x00")
            header = (256).to_bytes(2, "big") + len(photo).to_bytes(2, "big")
            return _reply(0x90, header + _text_block(card) + photo)
        return _reply(0x21)


async def serve(
    path: str,
    model: IdReaderModel,
    baudrate: int = 115200,
    *,
    ready: asyncio.Event | None = None,
) -> None:
    """Answer the host on the serial port at ``path`` with ``model`` until cancelled or the
    port reaches end of file. ``ready`` is set once the port is open: bytes the host sends
    before that are lost (opening a port discards pending input)."""
    async with open_port(path, baudrate, ready) as port:
        await answer(port, model.feed)
