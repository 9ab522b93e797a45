"""Simulated LED window panels on one RS-485 line (D5), for tests and the demo.

The panel side of ``docs/devices/led-panel.md``, written from the document and not from
:mod:`devices.codecs.led_panel`: its own CRC (bitwise), frame scanner, text decoding and reply
builder, so a mistake in the codec is not mirrored here.

:class:`LedPanelModel` is one panel (what it shows); :class:`LedBus` is the line with several
panels on it, sans-I/O (:meth:`~LedBus.receive_data`, :meth:`~LedBus.data_to_send`): every
panel hears every frame, the addressed one answers, nobody answers a broadcast. :func:`serve`
runs a bus on a serial port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog

from devices.simulators.serving import answer, open_port
from devices.simulators.serving import crc16_modbus as _crc

log = structlog.get_logger("devices.simulators.led_panel")

_OK, _UNSUPPORTED, _BAD_PAYLOAD, _TRUNCATED = 0, 1, 2, 3


class _Malformed(Exception):
    """An intact request with invalid fields (answered ``bad_payload``)."""


def _gb2312(raw: bytes) -> str:
    """Text from GB2312 bytes: printable ASCII, or pairs with both bytes in A1–FE and the
    first at most F7 (doc §2)."""
    i = 0
    while i < len(raw):
        if 0x20 <= raw[i] <= 0x7E:
            i += 1
        elif 0xA1 <= raw[i] <= 0xF7 and i + 1 < len(raw) and 0xA1 <= raw[i + 1] <= 0xFE:
            i += 2
        else:
            raise _Malformed
    return raw.decode("gb18030")


def _texts(payload: bytes, at: int, count: int) -> tuple[list[str], int]:
    out = []
    for _ in range(count):
        if at >= len(payload) or at + 1 + payload[at] > len(payload):
            raise _Malformed
        out.append(_gb2312(payload[at + 1 : at + 1 + payload[at]]))
        at += 1 + payload[at]
    return out, at


def _cells(text: str) -> int:
    return sum(1 if ord(ch) < 0x80 else 2 for ch in text)


def _cut_to(text: str, columns: int) -> str:
    out, used = "", 0
    for ch in text:
        used += _cells(ch)
        if used > columns:
            break
        out += ch
    return out


class LedPanelModel:
    """One panel: the lines it shows, its header, its brightness.

    Args:
        address: 1–247, its DIP-switch address.
        rows, columns: body rows, and cells per row (8 px each) it can show.
        model, firmware: what the status reply reports (ASCII).
    """

    def __init__(
        self,
        address: int,
        *,
        rows: int = 4,
        columns: int = 16,
        brightness: int = 8,
        model: str = "HH-LED4816",
        firmware: str = "2.1.0",
    ) -> None:
        if not 1 <= address <= 247:
            raise ValueError("a panel address is 1..247")
        self.address = address
        self.rows = rows
        self.columns = columns
        self.brightness = brightness
        self.model = model
        self.firmware = firmware
        self.lines: tuple[str, ...] = ()
        self.header: tuple[int, str] | None = None
        self.requests = 0

    @property
    def header_text(self) -> str:
        """The header row as drawn: ``3号窗口 综合受理`` (empty before ``SET_HEADER``)."""
        if self.header is None:
            return ""
        number, name = self.header
        return f"{number}号窗口 {name}" if name else f"{number}号窗口"

    def handle(self, cmd: int, payload: bytes) -> bytes:
        """Execute one request; returns the reply payload (result first)."""
        self.requests += 1
        try:
            return self._handle(cmd, payload)
        except _Malformed:
            return bytes([_BAD_PAYLOAD])

    def _handle(self, cmd: int, payload: bytes) -> bytes:
        if cmd == 0x01:
            if not payload or not 1 <= payload[0] <= 8:
                raise _Malformed
            lines, end = _texts(payload, 1, payload[0])
            if end != len(payload):
                raise _Malformed
            shown = tuple(_cut_to(line, self.columns) for line in lines[: self.rows])
            self.lines = shown
            return bytes([_OK if list(shown) == lines else _TRUNCATED])
        if cmd == 0x02:
            if len(payload) != 1 or payload[0] > 15:
                raise _Malformed
            self.brightness = payload[0]
            return bytes([_OK])
        if cmd == 0x03:
            if payload:
                raise _Malformed
            self.lines = ()
            return bytes([_OK])
        if cmd == 0x04:
            if payload:
                raise _Malformed
            model, firmware = self.model.encode("ascii"), self.firmware.encode("ascii")
            head = bytes([_OK, self.rows, self.columns, self.brightness])
            return head + bytes([len(model)]) + model + bytes([len(firmware)]) + firmware
        if cmd == 0x05:
            if len(payload) < 3:
                raise _Malformed
            (name,), end = _texts(payload, 2, 1)
            if end != len(payload):
                raise _Malformed
            self.header = (int.from_bytes(payload[:2], "big"), name)
            return bytes([_OK])
        return bytes([_UNSUPPORTED])


class LedBus:
    """The RS-485 line with its panels: hears the master's frames, answers as the panels do.

    ``bad_frames`` counts frames dropped for a bad CRC; ``broadcasts`` the broadcast requests.
    """

    def __init__(self, panels: Mapping[int, LedPanelModel]) -> None:
        self.panels = dict(panels)
        self.bad_frames = 0
        self.broadcasts = 0
        self._buf = bytearray()
        self._out = bytearray()

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the line; replies become available through :meth:`data_to_send`."""
        self._buf += data
        buf = self._buf
        while True:
            start = buf.find(b"\xaa\x55")
            if start < 0:
                keep = 1 if buf.endswith(b"\xaa") else 0  # maybe the first half of a header
                del buf[: len(buf) - keep]
                return
            del buf[:start]
            if len(buf) < 5 or len(buf) < buf[4] + 7:
                return
            size = buf[4] + 7
            frame = bytes(buf[:size])
            if _crc(frame[2:-2]) != frame[-2] | frame[-1] << 8:
                self.bad_frames += 1  # no reply: the address byte itself may be wrong
                del buf[:1]
                continue
            del buf[:size]
            self._frame(frame[2], frame[3], frame[5:-2])

    def data_to_send(self) -> bytes:
        """The replies produced since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def feed(self, data: bytes) -> bytes:
        """:meth:`receive_data`, then the replies it produced."""
        self.receive_data(data)
        return self.data_to_send()

    def _frame(self, address: int, cmd: int, payload: bytes) -> None:
        if cmd & 0x80:
            return  # another panel's reply, heard on the shared line
        if address == 0:
            self.broadcasts += 1
            for each in self.panels.values():
                each.handle(cmd, payload)  # every panel executes, none answers (doc §5.3)
            return
        panel = self.panels.get(address)
        if panel is None:
            return
        reply = panel.handle(cmd, payload)
        body = bytes([address, cmd | 0x80, len(reply)]) + reply
        crc = _crc(body)
        self._out += b"\xaa\x55" + body + bytes([crc & 0xFF, crc >> 8])


async def serve(
    path: str,
    panels: Mapping[int, LedPanelModel] | LedBus,
    baudrate: int = 9600,
    *,
    ready: asyncio.Event | None = None,
) -> None:
    """Be the panels of one RS-485 line on the serial port ``path`` until cancelled or EOF.

    Args:
        panels: address → panel, or a ready :class:`LedBus` (to read its counters).
        ready: set once the port is open; bytes sent before that are lost.

    Raises:
        serialx.SerialException, OSError: the port cannot be opened or fails.
    """
    bus = panels if isinstance(panels, LedBus) else LedBus(panels)
    async with open_port(path, baudrate, ready) as port:
        log.info("led_sim.serving", path=path, addresses=sorted(bus.panels))
        await answer(port, bus.feed)
