"""The Bluetooth LE evaluation pad driver (devices/drivers/ble_evaluator.py) against the pad
simulator (devices/simulators/ble_evaluator.py): two bumble controllers on one in-process link,
bleak on the hall PC's side through the test backend of tests/support/bumble_bleak.py. Every
exchange is real GATT: advertising, scanning, connection, discovery, writes with response,
notifications, disconnection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakGATTProtocolError
from bumble import hci

from devices.codecs.evaluator_gatt import (
    PROMPT_REJECTED,
    PROMPT_UUID,
    DeviceInfo,
    GradeNotice,
    Prompt,
    encode_notice,
)
from devices.drivers.ble_evaluator import BleEvaluator, GradeResult
from devices.errors import DeviceOffline, DriverError, EncodeError
from devices.simulators.ble_evaluator import EvaluatorPad, advertising_data, scan_response_data
from tests.devices.conftest import PAD_ADDRESS
from tests.support.bumble_bleak import BumbleAir

Make = Callable[..., BleEvaluator]


@pytest.fixture
async def make(air: BumbleAir) -> AsyncIterator[Make]:
    """Builds evaluators on the test backends (short timeouts); closes them afterwards."""
    made: list[BleEvaluator] = []

    def build(device: Any = PAD_ADDRESS, **options: Any) -> BleEvaluator:
        settings = {"grace": 5.0, "lookup_timeout": 2.0, "connect_timeout": 10.0, **options}
        evaluator = BleEvaluator(
            device,
            name="window-03",
            backend=air.client_backend,
            scanner_backend=air.scanner_backend,
            **settings,
        )
        made.append(evaluator)
        return evaluator

    yield build
    for evaluator in made:
        await evaluator.close()


def prompt(request_id: int = 7, *, timeout_ms: int = 30_000) -> Prompt:
    return Prompt(
        request_id,
        window="03",
        staff_name="李娜",
        staff_no="S1024",
        ticket_no="A001",
        timeout_ms=timeout_ms,
    )


async def test_evaluator_connects_by_address_and_reads_model_and_firmware(
    pad: EvaluatorPad, make: Make
):
    """Scanning for the pad's address, connecting and reading info give its model and firmware."""
    evaluator = make()
    assert not evaluator.online
    await evaluator.connect()
    assert evaluator.online and pad.connected
    assert await evaluator.info() == DeviceInfo(model="HE-200B", firmware="1.4.2", protocol=1)


def test_pad_advertises_the_documented_data():
    """The simulator's advertising data and scan response are the doc's bytes."""
    # docs/devices/evaluator-ble.md, "Advertising": advertising data and scan response rows.
    assert advertising_data() == bytes.fromhex(
        "02 01 06 11 07 37 10 87 ff ab 57 10 bc 98 42 74 e7 01 00 cc bf"
    )
    assert scan_response_data("HallEval-03") == bytes.fromhex(
        "0c 09 48 61 6c 6c 45 76 61 6c 2d 30 33"
    )


async def test_evaluator_uses_an_injected_device_lookup(pad: EvaluatorPad, make: Make):
    """A lookup callable returning a BLEDevice is used instead of scanning."""
    calls: list[int] = []

    async def lookup() -> BLEDevice:
        calls.append(1)
        return BLEDevice(PAD_ADDRESS, "HallEval-03", hci.Address(PAD_ADDRESS))

    evaluator = make(lookup)
    await evaluator.connect()
    assert evaluator.online and calls == [1]


async def test_pressed_grade_arrives_as_the_prompts_result(pad: EvaluatorPad, make: Make):
    """Prompt written and shown with its fields, grade pressed with reasons: the result has them."""
    evaluator = make()
    asked = prompt(7)
    result = asyncio.create_task(evaluator.prompt(asked))
    assert await pad.next_prompt() == asked
    await pad.press("dissatisfied", ("slow_service", "repeated_visits"))
    assert await result == GradeResult(
        7, grade="dissatisfied", reasons=("slow_service", "repeated_visits")
    )
    assert (await result).rated


async def test_auto_answering_pad_rates_every_prompt(pad: EvaluatorPad, make: Make):
    """A pad in auto mode answers each prompt, one after the other, with its set grade."""
    pad.answer = "auto"
    pad.auto_grade = "satisfied"
    evaluator = make()
    assert await evaluator.prompt(prompt(1)) == GradeResult(1, grade="satisfied")
    assert await evaluator.prompt(prompt(2)) == GradeResult(2, grade="satisfied")
    assert [p.request_id for p in pad.prompts] == [1, 2]


async def test_prompt_with_no_answer_is_unrated_after_its_timeout(pad: EvaluatorPad, make: Make):
    """A silent pad: the driver gives up at the prompt's 100 ms plus no grace, unrated."""
    pad.answer = "silent"
    evaluator = make(grace=0.0)
    result = await evaluator.prompt(prompt(8, timeout_ms=100))
    assert result == GradeResult(8, unrated="no_answer")
    assert not result.rated and evaluator.online


async def test_pad_countdown_ends_the_prompt_unrated_timed_out(pad: EvaluatorPad, make: Make):
    """Nobody presses: the pad's 100 ms countdown sends a timed-out notice before the grace ends."""
    evaluator = make(grace=30.0)
    assert await evaluator.prompt(prompt(9, timeout_ms=100)) == GradeResult(9, unrated="timed_out")


async def test_expired_prompt_is_unrated_timed_out(pad: EvaluatorPad, make: Make):
    """The test ends the pad's countdown at once: the driver returns unrated, timed out."""
    evaluator = make()
    result = asyncio.create_task(evaluator.prompt(prompt(10)))
    await pad.next_prompt()
    await pad.expire()
    assert await result == GradeResult(10, unrated="timed_out")


async def test_peripheral_disconnect_marks_the_evaluator_offline(pad: EvaluatorPad, make: Make):
    """The pad drops the link: the disconnect callback marks the driver offline at once."""
    presence: asyncio.Queue[bool] = asyncio.Queue()
    evaluator = make(on_presence=presence.put_nowait)
    await evaluator.connect()
    assert await presence.get() is True
    await pad.drop_link()
    assert await presence.get() is False
    assert not evaluator.online


async def test_link_lost_while_waiting_ends_the_prompt_unrated(pad: EvaluatorPad, make: Make):
    """A prompt is shown, then the link drops: the prompt ends unrated, disconnected."""
    evaluator = make()
    result = asyncio.create_task(evaluator.prompt(prompt(11)))
    await pad.next_prompt()
    await pad.drop_link()
    assert await result == GradeResult(11, unrated="disconnected")
    assert pad.shown is None


async def test_evaluator_reconnects_on_demand_and_prompt_works_again(pad: EvaluatorPad, make: Make):
    """After the pad dropped the link, the next prompt reconnects and gets its grade."""
    presence: asyncio.Queue[bool] = asyncio.Queue()
    evaluator = make(on_presence=presence.put_nowait)
    await evaluator.connect()
    await pad.drop_link()
    assert [await presence.get(), await presence.get()] == [True, False]
    result = asyncio.create_task(evaluator.prompt(prompt(12)))
    await pad.next_prompt()
    await pad.press("very_satisfied")
    assert await result == GradeResult(12, grade="very_satisfied")
    assert await presence.get() is True and evaluator.online


async def test_pad_off_the_air_is_offline_until_it_returns(pad: EvaluatorPad, make: Make):
    """A pad switched off: prompts raise DeviceOffline (never shown); back on, prompts work."""
    evaluator = make(lookup_timeout=0.3)
    await evaluator.connect()
    await pad.stop()
    with pytest.raises(DeviceOffline):
        await evaluator.prompt(prompt(13))
    assert not evaluator.online and [p.request_id for p in pad.prompts] == []
    await pad.start()
    pad.answer = "auto"
    assert (await evaluator.prompt(prompt(14))).grade == "very_satisfied"


async def test_malformed_and_foreign_notices_are_ignored(pad: EvaluatorPad, make: Make):
    """A garbled notice is counted, a foreign one ignored, and the prompt gets its own grade."""
    evaluator = make()
    result = asyncio.create_task(evaluator.prompt(prompt(15)))
    await pad.next_prompt()
    await pad.send_raw(bytes.fromhex("02 0f 00 00 00 06 00"))
    await pad.send_raw(encode_notice(GradeNotice(99, "very_dissatisfied", ("other",))))
    await pad.press("basically_satisfied")
    assert await result == GradeResult(15, grade="basically_satisfied")
    assert evaluator.bad_notices == 1


async def test_pad_refuses_a_malformed_prompt_with_att_error_0x80(
    pad: EvaluatorPad, air: BumbleAir
):
    """A write that is not a prompt is answered with the application error prompt_rejected."""
    device = BLEDevice(PAD_ADDRESS, "HallEval-03", hci.Address(PAD_ADDRESS))
    async with BleakClient(device, backend=air.client_backend) as client:
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.write_gatt_char(PROMPT_UUID, b"\x7f", response=True)
    assert refused.value.code == PROMPT_REJECTED
    assert pad.prompts == []


async def test_prompt_that_cannot_be_encoded_fails_before_touching_the_pad(
    pad: EvaluatorPad, make: Make
):
    """A window name over 16 octets raises EncodeError; nothing is written."""
    evaluator = make()
    with pytest.raises(EncodeError):
        await evaluator.prompt(Prompt(16, "窗口一二三四五六", "", "", "A1", 1000))
    assert pad.prompts == [] and not evaluator.online


async def test_device_without_the_evaluator_service_is_not_a_pad(air: BumbleAir, make: Make):
    """A connectable device without the service fails with DriverError and is left offline."""
    await air.peripheral.power_on()
    await air.peripheral.start_advertising(advertising_interval_min=20, advertising_interval_max=20)
    evaluator = make(BLEDevice(PAD_ADDRESS, "stranger", hci.Address(PAD_ADDRESS)))
    with pytest.raises(DriverError):
        await evaluator.connect()
    assert not evaluator.online and not air.central.connections


async def test_closed_evaluator_refuses_calls(pad: EvaluatorPad, make: Make):
    """After close() the pad is disconnected and every call raises DeviceOffline."""
    evaluator = make()
    await evaluator.connect()
    await evaluator.close()
    assert not evaluator.online
    with pytest.raises(DeviceOffline):
        await evaluator.info()


async def test_closing_while_a_prompt_waits_ends_it_unrated(pad: EvaluatorPad, make: Make):
    """close() during a shown prompt ends that prompt unrated, disconnected."""
    evaluator = make()
    result = asyncio.create_task(evaluator.prompt(prompt(17)))
    await pad.next_prompt()
    await evaluator.close()
    assert await result == GradeResult(17, unrated="disconnected")
