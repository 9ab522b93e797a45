"""The serial transport (devices/transport/serial.py) on socat pty pairs: bytes both ways,
and every failure of the port as DeviceOffline."""

from __future__ import annotations

import pytest
import serialx

from devices.errors import DeviceOffline
from devices.transport.serial import SerialPort
from tests.devices.agent.helpers import wait_for
from tests.support.ptys import PtyLink, pty_pair


async def test_bytes_written_on_one_end_are_read_on_the_other() -> None:
    """What the host writes arrives at the device's end and the answer comes back."""
    async with (
        pty_pair() as (a, b),
        SerialPort(a, baudrate=9600) as host,
        serialx.async_serial_for_url(b, baudrate=9600) as device,
    ):
        await host.write(b"\x10\x04\x01")
        assert await wait_for(device.readexactly(3)) == b"\x10\x04\x01"
        await device.write(b"\x12")
        assert await wait_for(host.read()) == b"\x12"


async def test_opening_a_missing_port_is_device_offline() -> None:
    """A port that does not exist (an adapter not plugged in) raises DeviceOffline."""
    port = SerialPort("/dev/does-not-exist-hallhub")
    with pytest.raises(DeviceOffline, match="cannot open"):
        await port.open()
    assert not port.is_open


async def test_unplugging_makes_read_raise_device_offline_and_the_port_reopens_after_replug() -> (
    None
):
    """A hung-up pty ends the read with DeviceOffline; the same path opens again after
    replug."""
    async with PtyLink() as link:
        port = SerialPort(link.a)
        await port.open()
        await link.unplug()
        with pytest.raises(DeviceOffline):
            await wait_for(port.read())
        await port.close()
        with pytest.raises(DeviceOffline):
            await port.open()
        await link.replug()
        await port.open()
        async with serialx.async_serial_for_url(link.b, baudrate=9600) as device:
            await port.write(b"ok")
            assert await wait_for(device.readexactly(2)) == b"ok"
        await port.close()


async def test_writing_to_a_closed_port_is_device_offline() -> None:
    """After close, writes and reads raise DeviceOffline; close again is harmless."""
    async with pty_pair() as (a, _b):
        port = SerialPort(a)
        await port.open()
        await port.close()
        await port.close()
        with pytest.raises(DeviceOffline):
            await port.write(b"x")
        with pytest.raises(DeviceOffline):
            await port.read()
