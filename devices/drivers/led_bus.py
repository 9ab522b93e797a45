"""The agent's driver for LED window panels on one shared RS-485 line (D5).

Protocol: docs/devices/led-panel.md (frames in :mod:`devices.codecs.led_panel`). The line is
half duplex with one master, so :class:`LedBus` owns the port and serialises every request of
every panel on it (§5): one request outstanding, a reply only from the addressed panel (others
are dropped), a broadcast answered by nobody and followed by a turnaround pause, a reply
timeout of 250 ms, at most two resends, a partial reply discarded after a timeout.

:class:`LedPanel` is one panel on a bus, by address, as the supervisor drives it: connect asks
its status (rows, columns, model, firmware) and sends the header and text it should show;
health polls the status; three failed requests in a row make it offline (§5 rule 7). Several
panels (several ``window_display`` devices of agent.toml with the same port) share one bus.
"""

from __future__ import annotations

import asyncio

import structlog

from devices.codecs.led_panel import (
    BROADCAST,
    Clear,
    LedDecoder,
    LedFrame,
    PanelReply,
    PanelStatus,
    QueryStatus,
    SetBrightness,
    SetHeader,
    ShowText,
    encode_frame,
    render_window_lines,
)
from devices.codecs.wire import Garbage
from devices.drivers.link import HardwareInfo, Pump, exchange
from devices.errors import DeviceOffline, DeviceRefused, DeviceTimeout
from devices.transport.serial import ByteTransport

__all__ = ["LedBus", "LedPanel"]

log = structlog.get_logger("devices.drivers.led_bus")

_COMMANDS: dict[type, int] = {
    ShowText: 0x01,
    SetBrightness: 0x02,
    Clear: 0x03,
    QueryStatus: 0x04,
    SetHeader: 0x05,
}


class LedBus:
    """The RS-485 line: one port, requests to the panels on it one at a time.

    Args:
        transport: the RS-485 adapter's port.
        reply_timeout: seconds for a panel's reply (§5: 250 ms at 9600 baud).
        retries: resends after a timeout or a bad reply (§5: 2).
        turnaround: pause after a broadcast, which nobody answers (§5: 100 ms).
    """

    def __init__(
        self,
        transport: ByteTransport,
        *,
        reply_timeout: float = 0.25,
        retries: int = 2,
        turnaround: float = 0.1,
    ) -> None:
        self.transport = transport
        self.reply_timeout = reply_timeout
        self.retries = retries
        self.turnaround = turnaround
        self.garbage = 0
        self._decoder = LedDecoder()
        self._pump = Pump(transport, self._on_data)
        self._lock = asyncio.Lock()
        self._open_lock = asyncio.Lock()
        self._request: tuple[int, int, asyncio.Future[PanelReply | PanelStatus]] | None = None

    @property
    def name(self) -> str:
        return self.transport.name

    @property
    def is_open(self) -> bool:
        return self._pump.running

    async def open(self) -> None:
        """Open the port unless it is open and working (panels share it: the first opens).

        Raises:
            DeviceOffline: the port cannot be opened.
        """
        async with self._open_lock:
            if self._pump.running:
                return
            await self._pump.stop()
            await self.transport.close()
            await self.transport.open()
            self._decoder = LedDecoder()
            self._pump.start()
            log.info("led_bus_open", port=self.name)

    async def idle(self, seconds: float) -> None:
        """Wait ``seconds`` between two polls.

        Raises:
            DeviceOffline: as soon as the port fails meanwhile.
        """
        await self._pump.idle(seconds)

    async def close(self) -> None:
        """Close the port; never raises."""
        async with self._open_lock:
            await self._pump.stop()
            await self.transport.close()

    async def request(self, frame: LedFrame) -> PanelReply | PanelStatus | None:
        """Send ``frame`` and wait for the addressed panel's reply (None for a broadcast).

        Raises:
            EncodeError: the frame cannot be encoded.
            DeviceOffline: the port is closed or failed.
            DeviceTimeout: no matching reply after the resends.
        """
        data = encode_frame(frame)
        command = _COMMANDS[type(frame)]
        async with self._lock:
            if not self._pump.running:
                raise DeviceOffline(f"{self.name}: bus not open")
            if frame.address == BROADCAST:
                await self.transport.write(data)
                await asyncio.sleep(self.turnaround)
                return None
            waiter: asyncio.Future[PanelReply | PanelStatus]
            waiter = asyncio.get_running_loop().create_future()
            self._request = (frame.address, command, waiter)
            try:
                return await exchange(
                    self._pump,
                    data,
                    waiter,
                    self.reply_timeout,
                    f"{self.name}: panel {frame.address} {command:#04x}",
                    retries=self.retries,
                    on_timeout=self._drop_partial,
                )
            finally:
                self._request = None

    def _drop_partial(self, again: bool) -> None:
        # §5 rule 5: after a timeout a partial frame must not eat the next reply.
        for item in self._decoder.flush():
            if isinstance(item, Garbage):
                self.garbage += item.skipped

    async def _on_data(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, Garbage):
                self.garbage += item.skipped
                continue
            request = self._request
            if isinstance(item, PanelReply | PanelStatus) and request is not None:
                command = 0x04 if isinstance(item, PanelStatus) else item.command
                if (item.address, command) == request[:2] and not request[2].done():
                    request[2].set_result(item)
                    continue
            # §5 rule 2: a reply that does not answer the outstanding request is dropped.
            self.garbage += 1
            log.debug("led_bus_stray_frame", port=self.name, frame=type(item).__name__)


class LedPanel:
    """One panel on a :class:`LedBus`.

    Args:
        bus: the shared line.
        address: the panel's address, 1–247.
        name: how logs name it.
        poll_seconds: status polling interval (§5 rule 7: 30 s).
        max_failures: failed requests in a row that make the panel offline (§5: 3).
        brightness: a level to set after each connect (0–15), or None to leave it.
    """

    def __init__(
        self,
        bus: LedBus,
        address: int,
        *,
        name: str = "panel",
        poll_seconds: float = 30.0,
        max_failures: int = 3,
        brightness: int | None = None,
    ) -> None:
        if not 1 <= address <= 247:
            raise ValueError(f"a panel address is 1..247, not {address}")
        self.bus = bus
        self.address = address
        self._name = name
        self.poll_seconds = poll_seconds
        self.max_failures = max_failures
        self.brightness = brightness
        self.status: PanelStatus | None = None
        self.failures = 0
        self.lines: tuple[str, ...] | None = None
        """The full rendered lines (header first) last shown, or None when cleared."""
        self._header: tuple[int, str] | None = None
        self._shown_header: tuple[int, str] | None = None
        self._truncated_logged: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def columns(self) -> int:
        """Cells per row (16 until the panel said otherwise)."""
        return self.status.columns if self.status is not None else 16

    async def connect(self) -> HardwareInfo:
        """Open the bus if needed, ask the panel's status, send what it should show.

        Raises:
            DeviceOffline, DeviceTimeout, DeviceRefused: the panel is not reachable.
        """
        await self.bus.open()
        status = await self.query_status()
        self._shown_header = None
        if self.brightness is not None:
            await self._request(SetBrightness(address=self.address, level=self.brightness))
        await self._refresh()
        return HardwareInfo(
            model=status.model, firmware=status.firmware, parts=[f"panel:{self.address}"]
        )

    async def watch(self) -> None:
        """Poll the panel's status until the bus fails or it stops answering.

        Raises:
            DeviceOffline: the bus port failed, or ``max_failures`` requests failed in a row.
        """
        while True:
            await self.bus.idle(self.poll_seconds)
            try:
                await self.query_status()
            except DeviceTimeout as exc:
                if self.failures >= self.max_failures:
                    raise DeviceOffline(f"{self._name}: panel silent ({exc})") from exc

    async def close(self) -> None:
        """Nothing to release: the bus stays open for the other panels on it."""

    async def query_status(self) -> PanelStatus:
        """``QUERY_STATUS``: rows, columns, brightness, model, firmware."""
        reply = await self._request(QueryStatus(address=self.address))
        if not isinstance(reply, PanelStatus):
            raise DeviceRefused(f"{self._name}: status query answered {reply!r}")
        self.status = reply
        return reply

    async def show_window(
        self,
        window_number: int,
        window_name: str,
        serving_number: str | None,
        staff_name: str | None,
        staff_number: str | None,
        waiting: int,
    ) -> None:
        """Show a window's state (doc §6 ``render_window_lines``, at the panel's width): the
        header with ``SET_HEADER`` when it changed, the other lines with ``SHOW_TEXT``.

        Remembered and sent again after a reconnect; raises like :meth:`query_status` when
        the panel cannot be reached now.
        """
        self.lines = render_window_lines(
            window_number,
            window_name,
            serving_number,
            staff_name,
            staff_number,
            max(0, waiting),
            max(2, self.columns),
        )
        self._header = (window_number, window_name)
        await self._refresh()

    async def set_brightness(self, level: int) -> None:
        """Set the panel's brightness now (0–15); also sent after every reconnect."""
        self.brightness = level
        await self._request(SetBrightness(address=self.address, level=level))

    async def clear(self) -> None:
        """Blank the body lines (the window closed); the header stays."""
        self.lines = None
        await self._refresh()

    async def _refresh(self) -> None:
        if self._header is not None and self._header != self._shown_header:
            number, window_name = self._header
            await self._request(
                SetHeader(address=self.address, window_number=number, window_name=window_name)
            )
            self._shown_header = self._header
        if self.lines is None:
            if self._header is not None:
                await self._request(Clear(address=self.address))
            return
        body = self.lines[1:]
        reply = await self._request(ShowText(address=self.address, lines=body))
        truncated = isinstance(reply, PanelReply) and reply.result == "truncated"
        if truncated and self._truncated_logged != body:
            log.info("led_panel_text_truncated", panel=self._name, lines=body)
            self._truncated_logged = body

    async def _request(self, frame: LedFrame) -> PanelReply | PanelStatus | None:
        try:
            reply = await self.bus.request(frame)
        except DeviceTimeout:
            self.failures += 1
            raise
        self.failures = 0
        if isinstance(reply, PanelReply) and reply.result in ("unsupported", "bad_payload"):
            raise DeviceRefused(f"{self._name}: {type(frame).__name__} {reply.result}")
        return reply
