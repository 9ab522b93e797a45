"""The LED panel bus driver (devices/drivers/led_bus.py) against simulated panels on one line
(devices/simulators/led_panel.py) over socat ptys: two panels share the port, each shows its
window; a missing panel times out after the resends and goes offline; a broadcast gets no
reply."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devices.codecs.led_panel import SetBrightness
from devices.drivers.led_bus import LedBus, LedPanel
from devices.drivers.link import HardwareInfo
from devices.errors import DeviceOffline, DeviceTimeout
from devices.simulators.led_panel import LedBus as SimBus
from devices.simulators.led_panel import LedPanelModel, serve
from devices.transport.serial import SerialPort
from tests.devices.agent.helpers import connect_when_ready, running, wait_for
from tests.support.ptys import pty_pair


class Rig:
    def __init__(self, sim: SimBus, bus: LedBus) -> None:
        self.sim = sim
        self.bus = bus


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    sim = SimBus({3: LedPanelModel(3), 12: LedPanelModel(12, columns=24)})
    async with pty_pair() as (host_end, line_end), running(serve(line_end, sim)):
        bus = LedBus(SerialPort(host_end), reply_timeout=0.1, turnaround=0.01)
        try:
            yield Rig(sim, bus)
        finally:
            await bus.close()


async def test_two_panels_on_one_line_each_show_their_window(rig: Rig) -> None:
    """Panels 3 and 12 share the line; each gets its header and its lines, rendered at its
    own width (16 and 24 cells)."""
    three, twelve = LedPanel(rig.bus, 3), LedPanel(rig.bus, 12)
    assert await connect_when_ready(three) == HardwareInfo("HH-LED4816", "2.1.0", ["panel:3"])
    await twelve.connect()
    await three.show_window(3, "综合受理", "A012", "张三", "1024", 5)
    await twelve.show_window(12, "社保", None, None, None, 0)
    sim3, sim12 = rig.sim.panels[3], rig.sim.panels[12]
    assert sim3.header_text == "3号窗口 综合受理"
    assert sim3.lines == ("正在办理 A012", "张三 工号1024", "等候 5 人")
    assert sim12.header_text == "12号窗口 社保"
    assert sim12.lines == ("等待叫号", "", "等候 0 人")


async def test_clear_blanks_the_body_and_keeps_the_header(rig: Rig) -> None:
    """A closed window: CLEAR; the header stays."""
    panel = LedPanel(rig.bus, 3)
    await connect_when_ready(panel)
    await panel.show_window(3, "综合受理", "A012", None, None, 1)
    await panel.clear()
    assert rig.sim.panels[3].lines == ()
    assert rig.sim.panels[3].header_text == "3号窗口 综合受理"


async def test_a_reconnected_panel_gets_its_text_again(rig: Rig) -> None:
    """A panel that lost its text (power cycled) shows it again after the next connect."""
    panel = LedPanel(rig.bus, 3)
    await connect_when_ready(panel)
    await panel.show_window(3, "综合受理", "A012", None, None, 2)
    rig.sim.panels[3] = LedPanelModel(3)  # powered off and on: blank
    await panel.connect()
    assert rig.sim.panels[3].lines == ("正在办理 A012", "", "等候 2 人")
    assert rig.sim.panels[3].header_text == "3号窗口 综合受理"


async def test_a_missing_panel_is_asked_three_times_then_goes_offline(rig: Rig) -> None:
    """No panel at address 7: each request is sent three times and times out; three failed
    requests in a row make watch raise DeviceOffline; the other panels are not disturbed."""
    await connect_when_ready(LedPanel(rig.bus, 3))
    ghost = LedPanel(rig.bus, 7, poll_seconds=0.01)
    before = sum(p.requests for p in rig.sim.panels.values())
    with pytest.raises(DeviceTimeout):
        await ghost.connect()
    with pytest.raises(DeviceOffline, match="panel silent"):
        await wait_for(ghost.watch())
    assert ghost.failures == 3
    assert sum(p.requests for p in rig.sim.panels.values()) == before


async def test_a_broadcast_reaches_every_panel_and_waits_no_reply(rig: Rig) -> None:
    """Brightness to address 0: every panel sets it, none answers."""
    await connect_when_ready(LedPanel(rig.bus, 3))
    assert await rig.bus.request(SetBrightness(address=0, level=2)) is None
    await LedPanel(rig.bus, 3).query_status()  # the line is free again after the turnaround
    assert [p.brightness for p in rig.sim.panels.values()] == [2, 2]
    assert rig.sim.broadcasts == 1
