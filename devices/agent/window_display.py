"""The agent's LED window display (D5): the hall's queue state in, one panel's lines out.

A ``window_display`` device subscribes to ``hall:<hall_id>`` (agent.toml's ``hall_id``, else
the hall of its registration, from the welcome) and keeps the queue state with
:class:`~devices.agent.board.WindowBoard`; whenever its window's part changes, the panel shows
it (``render_window_lines`` at the panel's width, docs/devices/led-panel.md §6), or is cleared
when the window closes. The same topic feeds the browser window display.

The panel is written from one task with the latest content only: a burst of queue events
while the line is slow or the panel offline ends in one write of the newest state once the
panel is back. Panels of several windows share one RS-485 line: agent.toml names the same
``port`` for each, and the agent gives them one :class:`~devices.drivers.led_bus.LedBus`.
"""

from __future__ import annotations

import asyncio

from devices.agent.board import PanelContent, WindowBoard
from devices.agent.config import AgentConfig, WindowDisplayConfig
from devices.agent.runner import BackoffFactory, DeviceRunner, DeviceSettings, DeviceSnapshot
from devices.drivers.led_bus import LedBus, LedPanel
from devices.drivers.link import HardwareInfo
from devices.errors import DeviceError
from realtime.messages import Event, Snapshot

__all__ = ["WindowDisplayRunner"]

_RETRY_SECONDS = 1.0


class WindowDisplayRunner(DeviceRunner):
    """One LED panel at one window, on a (shared) bus."""

    part = "panel"

    def __init__(
        self,
        agent: AgentConfig,
        config: WindowDisplayConfig,
        *,
        bus: LedBus,
        backoff: BackoffFactory | None = None,
    ) -> None:
        super().__init__(agent, config, backoff=backoff)
        self.part = f"panel:{config.address}"
        self.panel = LedPanel(
            bus,
            config.address,
            name=self.name,
            poll_seconds=config.poll_seconds,
            brightness=config.brightness,
        )
        self.supervise(self.panel)
        self.hall_id = config.hall_id
        self.board = WindowBoard(config.window_id)
        self.shown: PanelContent | None = None
        self._dirty = asyncio.Event()

    def topics(self) -> list[str]:
        return [] if self.hall_id is None else [f"hall:{self.hall_id}"]

    def workers(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._write_panel(), name=f"panel-{self.name}")]

    async def apply(self, settings: DeviceSettings) -> None:
        if settings.poll_seconds is not None:
            self.panel.poll_seconds = settings.poll_seconds
        if settings.brightness is not None:
            self.panel.brightness = settings.brightness
            if self.supervisor is not None and self.supervisor.up.is_set():
                try:
                    await self.panel.set_brightness(settings.brightness)
                except DeviceError as exc:
                    self.log.info("panel_brightness_failed", error=str(exc))

    async def on_device_snapshot(self, snapshot: DeviceSnapshot) -> None:
        if snapshot.window_id is not None and snapshot.window_id != self.board.window_id:
            self.board.window_id = snapshot.window_id
            self._changed()

    async def on_topic_snapshot(self, snapshot: Snapshot) -> None:
        if snapshot.topic == f"hall:{self.hall_id}":
            self.board.on_snapshot(snapshot.data)
            self._changed()

    async def on_topic_event(self, event: Event) -> None:
        if event.topic == f"hall:{self.hall_id}" and self.board.on_event(event.name, event.data):
            self._changed()

    async def on_hardware(self, info: HardwareInfo) -> None:
        # Connected again: the columns may differ, and the panel may have lost its text.
        self.shown = None
        self._dirty.set()

    def _changed(self) -> None:
        if self.board.content() != self.shown:
            self._dirty.set()

    async def _write_panel(self) -> None:
        while True:
            await self._dirty.wait()
            assert self.supervisor is not None
            await self.supervisor.up.wait()
            self._dirty.clear()
            content = self.board.content()
            if content is None or content == self.shown:
                continue
            try:
                if content.open:
                    await self.panel.show_window(
                        content.window_number,
                        content.window_name,
                        content.serving,
                        content.staff_name,
                        content.staff_no,
                        content.waiting,
                    )
                else:
                    await self.panel.clear()
            except DeviceError as exc:
                # The supervisor's polling decides when the panel is offline; try again soon.
                self.log.info("panel_write_failed", error=str(exc))
                self._dirty.set()
                await asyncio.sleep(_RETRY_SECONDS)
                continue
            self.shown = content
