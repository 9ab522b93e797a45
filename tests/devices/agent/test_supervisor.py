"""The supervisor (devices/agent/supervisor.py): a printer unplugged and plugged back over a
PtyLink goes offline then online with exponential backoff, availability is reported only on
change and logged once per flip, and nothing a driver does escapes it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from structlog.testing import capture_logs

from devices.agent.supervisor import Supervisor
from devices.drivers.link import HardwareInfo
from devices.drivers.printer import PrinterDriver
from devices.errors import DeviceOffline
from devices.simulators.printer import PrinterModel, serve
from devices.transport.serial import SerialPort
from tests.devices.agent.helpers import (
    eventually,
    fast_backoff,
    running,
    supervised,
    wait_for,
)
from tests.support.ptys import PtyLink


@contextlib.asynccontextmanager
async def printer_at(path: str, model: PrinterModel) -> AsyncIterator[None]:
    ready = asyncio.Event()
    async with running(serve(path, model, ready=ready)):
        await wait_for(ready.wait())
        yield


async def test_unplug_then_replug_reports_offline_then_online_with_backoff() -> None:
    """Unplugged, the printer is reported offline once while the retries wait 10, 20, 40,
    80, 80 … ms (full-jitter windows with rand = 1); plugged back it is online again and the
    backoff starts over."""
    model = PrinterModel()
    async with PtyLink() as link:
        driver = PrinterDriver(SerialPort(link.a), poll_seconds=0.05, reply_timeout=0.2)
        supervisor, changes, _ = supervised(driver, "printer", fast_backoff())
        ready = asyncio.Event()
        async with running(serve(link.b, model, ready=ready)):  # ends when unplugged
            await wait_for(ready.wait())
            async with running(supervisor.run()):
                assert await changes.next() == (True, "connected")
                with capture_logs() as logs:
                    await link.unplug()
                    online, reason = await changes.next()
                    assert online is False and "device_offline" in reason
                    await eventually(lambda: len(supervisor.delays) >= 6, what="six retries")
                assert list(supervisor.delays)[:6] == [0.01, 0.02, 0.04, 0.08, 0.08, 0.08]
                assert [e["event"] for e in logs].count("device_offline") == 1
                await link.replug()
                async with printer_at(link.b, model):
                    assert await changes.next() == (True, "connected")
                    assert supervisor.backoff.attempt == 0
                    assert supervisor.info == HardwareInfo("ESC/POS", "", ["printer"])
    assert len(changes.items) == 3


class FlakyDriver:
    """A driver whose connects fail ``failures`` times, then succeed; watch ends at once
    with a bug (RuntimeError) the first time."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.connects = 0
        self.closes = 0
        self.watching = asyncio.Event()

    async def connect(self) -> HardwareInfo:
        self.connects += 1
        if self.connects <= self.failures:
            raise DeviceOffline("not there yet")
        return HardwareInfo("m", "f", ["x"])

    async def watch(self) -> None:
        if self.connects == self.failures + 1:
            raise RuntimeError("a driver bug")
        self.watching.set()
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.closes += 1


async def test_failures_are_reported_once_and_a_driver_bug_does_not_escape() -> None:
    """Three failed connects make one offline report; a watch that crashes is a lost link,
    logged, followed by a reconnect; every attempt closes the driver."""
    driver = FlakyDriver(failures=3)
    supervisor, changes, infos = supervised(driver, "x", fast_backoff(0.001, 0.002))
    async with running(supervisor.run()) as task:
        await wait_for(driver.watching.wait())
        assert not task.done()
    assert changes.items == [
        (False, "device_offline: not there yet"),
        (True, "connected"),
        (False, "a driver bug"),
        (True, "connected"),
    ]
    assert len(infos.items) == 2
    assert driver.connects == 5
    assert driver.closes == 5  # after each of 4 failures, and when cancelled


async def test_a_listener_that_raises_does_not_stop_the_supervision() -> None:
    """on_change raising is logged; the supervisor goes on and connects."""
    driver = FlakyDriver(failures=1)

    async def broken(online: bool, reason: str) -> None:
        raise ValueError("listener bug")

    supervisor = Supervisor(driver, part="x", backoff=fast_backoff(0.001), on_change=broken)
    with capture_logs() as logs:
        async with running(supervisor.run()):
            await wait_for(driver.watching.wait())
    assert supervisor.online is True
    assert "device_listener_failed" in [e["event"] for e in logs]
