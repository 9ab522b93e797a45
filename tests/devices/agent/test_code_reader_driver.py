"""The code reader driver (devices/drivers/code_reader.py) against the simulated reader
(devices/simulators/code_reader.py) over socat ptys."""

from __future__ import annotations

import pytest

from devices.codecs.code_reader import ScannedCode
from devices.drivers.code_reader import CodeReaderDriver
from devices.errors import DeviceOffline
from devices.simulators.code_reader import open_code_reader
from devices.transport.serial import SerialPort
from tests.devices.agent.helpers import Recorder, wait_for
from tests.support.ptys import PtyLink, pty_pair


async def test_scanned_codes_reach_the_listener_in_order_and_noise_is_counted() -> None:
    """Three scans with line noise between them: the codes in order, the noise as garbage."""
    codes: Recorder[ScannedCode] = Recorder()
    async with pty_pair() as (host_end, reader_end):
        driver = CodeReaderDriver(SerialPort(host_end), on_code=codes)
        await driver.connect()
        async with open_code_reader(reader_end, encoding="gb18030") as reader:
            await reader.scan("123456")
            await reader.send_raw(b"\xff\xfe\r")
            await reader.scan("张三")
            await reader.scan("http://hall.example/ticket/?t=q3ZtR8bXk2LmN0pA7sWcYg")
            for _ in range(3):
                await codes.next()
        await driver.close()
    assert codes.items == [
        ScannedCode("123456"),
        ScannedCode("张三"),
        ScannedCode("http://hall.example/ticket/?t=q3ZtR8bXk2LmN0pA7sWcYg"),
    ]
    assert driver.garbage == 3


async def test_an_unplugged_reader_ends_the_watch_with_device_offline() -> None:
    """The USB reader pulled out: watch raises DeviceOffline."""
    async with PtyLink() as link:
        driver = CodeReaderDriver(SerialPort(link.a))
        await driver.connect()
        await link.unplug()
        with pytest.raises(DeviceOffline):
            await wait_for(driver.watch())
        await driver.close()
