"""A Bluetooth LE pad under the agent's supervisor (devices/drivers/ble_pad.py): the existing
BLE driver on two bumble controllers (tests/support/bumble_bleak.py), connected, prompted,
dropped and connected again by the supervisor."""

from __future__ import annotations

import asyncio

from devices.drivers.ble_evaluator import GradeResult
from devices.drivers.ble_pad import BlePad
from devices.drivers.evaluator import RatingPrompt
from devices.drivers.link import HardwareInfo
from devices.simulators.ble_evaluator import EvaluatorPad
from tests.devices.agent.helpers import fast_backoff, running, supervised, wait_for
from tests.devices.conftest import PAD_ADDRESS
from tests.support.bumble_bleak import BumbleAir


async def test_a_ble_pad_is_supervised_prompted_and_reconnected(
    air: BumbleAir, pad: EvaluatorPad
) -> None:
    """The supervisor connects the pad (model, firmware); a prompt gets the pressed grade;
    the pad dropping the link is reported offline, then online again after the reconnect."""
    ble = BlePad(
        PAD_ADDRESS,
        name="window-03",
        grace=5.0,
        lookup_timeout=2.0,
        connect_timeout=10.0,
        backend=air.client_backend,
        scanner_backend=air.scanner_backend,
    )
    supervisor, changes, infos = supervised(ble, "evaluator", fast_backoff(0.05, 0.2))
    try:
        async with running(supervisor.run()):
            assert await changes.next() == (True, "connected")
            assert await infos.next() == HardwareInfo("HE-200B", "1.4.2", ["evaluator"])
            prompt = RatingPrompt(
                request_id=7, window_number=3, timeout_s=30, staff_name="李娜", ticket_number="A001"
            )
            asking = asyncio.create_task(ble.prompt(prompt))
            shown = await wait_for(pad.next_prompt())
            assert (shown.window, shown.staff_name, shown.timeout_ms) == ("3", "李娜", 30_000)
            await pad.press("satisfied")
            assert await wait_for(asking) == GradeResult(7, grade="satisfied")
            await pad.drop_link()
            online, _ = await changes.next()
            assert online is False
            assert await changes.next() == (True, "connected")
    finally:
        await ble.shutdown()
