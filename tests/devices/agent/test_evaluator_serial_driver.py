"""The wired evaluator driver (devices/drivers/evaluator_serial.py): against the simulated pad
(devices/simulators/evaluator_serial.py) over socat ptys, and byte for byte against the worked
examples of docs/devices/evaluator-serial.md §7 from a hand-driven pad end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import serialx

from devices.drivers.ble_evaluator import GradeResult
from devices.drivers.evaluator import RatingPrompt
from devices.drivers.evaluator_serial import SerialEvaluator
from devices.drivers.link import HardwareInfo
from devices.errors import DeviceTimeout
from devices.simulators.evaluator_serial import EvaluatorPadModel, serve
from devices.simulators.serving import crc16_modbus
from devices.transport.serial import SerialPort
from tests.devices.agent.helpers import connect_when_ready, eventually, running, wait_for
from tests.support.ptys import pty_pair

H = bytes.fromhex
# docs/devices/evaluator-serial.md §7, worked examples.
E1_PROMPT = H(
    "02 17 01 01 00 00 30 39 00 03 00 1E 04 D5 C5 C8 FD 04 31 30 32 34 04 41 30 31 32 BE 0B 03"
)
E2_ACK_PROMPT = H("02 02 06 01 01 00 0D 18 03")
E3_GRADE = H("02 06 81 01 00 00 30 39 05 00 24 61 03")
E4_ACK_GRADE = H("02 02 06 01 81 00 6C D8 03")
E12_STATUS = H("02 0F 84 04 00 1F 06 48 48 2D 45 56 35 05 31 2E 32 2E 30 5D 95 03")
E14_HEARTBEAT = H("02 01 85 07 01 D3 C1 03")

PROMPT = RatingPrompt(
    request_id=12345,
    window_number=3,
    timeout_s=30,
    staff_name="张三",
    staff_no="1024",
    ticket_number="A012",
)


class Rig:
    def __init__(self, pad: EvaluatorPadModel, driver: SerialEvaluator) -> None:
        self.pad = pad
        self.driver = driver


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    pad = EvaluatorPadModel(heartbeat_interval=None, resend_interval=0.2)
    async with pty_pair() as (host_end, pad_end), running(serve(pad_end, pad, tick_interval=0.02)):
        driver = SerialEvaluator(SerialPort(host_end), grace=0.5)
        await connect_when_ready(driver)
        try:
            yield Rig(pad, driver)
        finally:
            await driver.close()


async def test_connect_reads_model_and_firmware(rig: Rig) -> None:
    """The STATUS reply gives the pad's model and firmware, all buttons working."""
    assert rig.driver.status is not None
    assert (rig.driver.status.model, rig.driver.status.firmware) == ("HH-EV5", "1.2.0")
    assert rig.driver.status.buttons_ok


async def test_a_press_on_the_pad_is_the_grade_and_is_acknowledged(rig: Rig) -> None:
    """The prompt shows on the pad; a bad grade with reasons comes back; the pad's event is
    acknowledged, so it stops resending."""
    prompting = asyncio.create_task(rig.driver.prompt(PROMPT))
    await eventually(lambda: rig.pad.prompt is not None, what="prompt shown")
    assert rig.pad.prompt is not None
    assert (rig.pad.prompt.staff_name, rig.pad.prompt.ticket_number) == ("张三", "A012")
    assert rig.pad.press("dissatisfied", ["slow_service", "repeated_visits"])
    result = await wait_for(prompting)
    assert result == GradeResult(
        12345, grade="dissatisfied", reasons=("slow_service", "repeated_visits")
    )
    await eventually(lambda: not rig.pad.pending, what="event acknowledged")


async def test_the_pads_countdown_ending_is_unrated_timed_out(rig: Rig) -> None:
    """Nobody presses within the prompt's timeout: the pad says TIMEOUT: timed_out."""
    result = await wait_for(
        rig.driver.prompt(RatingPrompt(request_id=7, window_number=3, timeout_s=1))
    )
    assert result == GradeResult(7, unrated="timed_out")
    assert rig.pad.prompts_seen == 1


@contextlib.asynccontextmanager
async def hand_driven_pad(
    *, first: bytes = b"", **options: Any
) -> AsyncIterator[tuple[SerialEvaluator, serialx.AsyncSerial, HardwareInfo]]:
    """A driver (with ``options``) connected to a pad end the test drives by hand: the
    driver's status query is answered with E12 under its seq, after ``first``. Yields the
    driver, the pad's end and what the driver read at connect."""
    async with (
        pty_pair() as (host_end, pad_end),
        serialx.async_serial_for_url(pad_end, baudrate=9600) as pad,
    ):
        driver = SerialEvaluator(SerialPort(host_end), **options)
        connecting = asyncio.create_task(driver.connect())
        query = await wait_for(pad.readexactly(7))
        assert query[2] == 0x04  # STATUS_QUERY, seq chosen by the driver
        await pad.write(first + _status_with_seq(query[3]))
        info = await wait_for(connecting)
        try:
            yield driver, pad, info
        finally:
            await driver.close()


async def test_driver_speaks_the_documented_bytes_and_drops_the_pads_resent_grade() -> None:
    """Against a hand-driven pad end: the driver's PROMPT is E1 (after its seq is set to 1),
    E2 acknowledges it, E3 sent twice (a resend) gives one grade and two E4 acknowledgements;
    STATUS E12 and HEARTBEAT E14 are understood."""
    assert _status_with_seq(4) == E12_STATUS
    async with hand_driven_pad(first=E14_HEARTBEAT, grace=5) as (driver, pad, info):
        assert (info.model, info.firmware) == ("HH-EV5", "1.2.0")
        driver._seq = 0  # the next request is seq 1, as in E1
        prompting = asyncio.create_task(driver.prompt(PROMPT))
        assert await wait_for(pad.readexactly(len(E1_PROMPT))) == E1_PROMPT
        await pad.write(E2_ACK_PROMPT)
        await pad.write(E3_GRADE)
        assert await wait_for(pad.readexactly(len(E4_ACK_GRADE))) == E4_ACK_GRADE
        assert await wait_for(prompting) == GradeResult(12345, grade="very_satisfied")
        await pad.write(E3_GRADE)  # the pad did not hear the ACK in time: it resends
        assert await wait_for(pad.readexactly(len(E4_ACK_GRADE))) == E4_ACK_GRADE
        assert driver.acks_sent == 2


async def test_an_unanswered_prompt_is_sent_three_times_then_times_out() -> None:
    """A pad that answers its status query, then goes silent: the same PROMPT bytes go out
    three times (doc §5), then DeviceTimeout; the prompt was not shown."""
    async with hand_driven_pad(reply_timeout=0.05) as (driver, pad, _):
        with pytest.raises(DeviceTimeout):
            await driver.prompt(PROMPT)
        sent = b""
        while len(sent) < 3 * len(E1_PROMPT):
            sent += await wait_for(pad.read(4096))
        assert sent == sent[: len(E1_PROMPT)] * 3


def _status_with_seq(seq: int) -> bytes:
    """E12 with another SEQ: the frame rebuilt with a bitwise CRC-16/MODBUS (doc §2)."""
    body = bytes((E12_STATUS[1], E12_STATUS[2], seq)) + E12_STATUS[4:-3]
    crc = crc16_modbus(body)
    return b"\x02" + body + bytes((crc & 0xFF, crc >> 8, 0x03))
