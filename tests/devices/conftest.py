"""Fixtures of the device tests: a Bluetooth LE pad on bumble's virtual air (the BLE driver's
tests and the agent's BLE pad tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devices.simulators.ble_evaluator import EvaluatorPad
from tests.support.bumble_bleak import BumbleAir, bumble_air

PAD_ADDRESS = "F1:F1:F1:F1:F1:03"
"""The simulated pad's Bluetooth address (``pad``)."""


@pytest.fixture
async def air() -> AsyncIterator[BumbleAir]:
    """Bumble's virtual air, with a peripheral at :data:`PAD_ADDRESS`."""
    async with bumble_air(peripheral_address=PAD_ADDRESS) as built:
        yield built


@pytest.fixture
async def pad(air: BumbleAir) -> AsyncIterator[EvaluatorPad]:
    """A started BLE pad on ``air``: label 03, HE-200B, firmware 1.4.2."""
    started = EvaluatorPad(air.peripheral, label="03", model="HE-200B", firmware="1.4.2")
    await started.start()
    yield started
    await started.stop()
