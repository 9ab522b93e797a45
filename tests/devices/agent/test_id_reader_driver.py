"""The ID card reader driver (devices/drivers/id_reader.py) against the simulated SAM reader
(devices/simulators/id_reader.py) over socat ptys: a card read while the kiosk waits, no card,
a broken module, unasked reads, and ID numbers kept out of the logs (O3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from devices.codecs.id_card import IdCard
from devices.drivers.id_reader import CardRead, IdReaderDriver
from devices.errors import DeviceOffline, DeviceTimeout
from devices.simulators.id_reader import IdReaderModel, serve
from devices.transport.serial import SerialPort
from tests.devices.agent.helpers import (
    Recorder,
    connect_when_ready,
    eventually,
    running,
    wait_for,
)
from tests.devices.samples import CARD
from tests.support.ptys import pty_pair


class Rig:
    def __init__(self, model: IdReaderModel, driver: IdReaderDriver) -> None:
        self.model = model
        self.driver = driver


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    model = IdReaderModel()
    async with pty_pair() as (host_end, reader_end), running(serve(reader_end, model)):
        driver = IdReaderDriver(
            SerialPort(host_end, baudrate=115200), reply_timeout=0.2, find_interval=0.02
        )
        await connect_when_ready(driver)
        try:
            yield Rig(model, driver)
        finally:
            await driver.close()


async def test_a_card_on_the_reader_is_read_whole_and_logged_masked(rig: Rig) -> None:
    """find → select → read gives the whole card; the log line shows only the masked card."""
    rig.model.insert(CARD)
    with capture_logs() as logs:
        result = await rig.driver.read_card(timeout_s=2)
    assert result == CardRead(card=CARD)
    assert rig.model.commands[-3:] == [(0x20, 0x01), (0x20, 0x02), (0x30, 0x01)]
    assert "11010519491231002X" not in repr(logs)
    assert "王测试" not in repr(logs)
    assert "110***********002X" in repr(logs)


async def test_a_card_put_down_after_the_request_is_read_before_the_deadline(rig: Rig) -> None:
    """The kiosk asks first; the citizen puts the card down a moment later: it is read."""
    reading = asyncio.create_task(rig.driver.read_card(timeout_s=5))
    finds = len(rig.model.commands)
    # Let a few finds fail: the card is not there yet.
    await eventually(lambda: len(rig.model.commands) >= finds + 3, what="three finds")
    rig.model.insert(CARD)
    assert (await wait_for(reading)).card == CARD


async def test_no_card_within_the_timeout_is_no_card(rig: Rig) -> None:
    """Nobody puts a card down: the read ends with reason no_card at its deadline."""
    assert await rig.driver.read_card(timeout_s=0.1) == CardRead(reason="no_card")


async def test_a_failed_self_test_ends_the_link_and_fails_reads_as_offline(rig: Rig) -> None:
    """A module answering 60 is dead: the health check raises DeviceOffline, reads fail."""
    rig.model.set_fault(True)
    rig.driver.poll_seconds = 0.01
    with pytest.raises(DeviceOffline, match="self_test_failed"):
        await wait_for(rig.driver.watch())
    assert await rig.driver.read_card(timeout_s=1) == CardRead(reason="offline")


async def test_auto_read_reports_each_card_once_per_placing(rig: Rig) -> None:
    """In auto_read mode a card laid down is read once, however long it lies there; taken
    away and laid down again, it is read again."""
    cards: Recorder[IdCard] = Recorder()
    rig.driver.auto_read = True
    rig.driver.on_card = cards
    async with running(rig.driver.watch()):
        rig.model.insert(CARD)
        assert await cards.next() == CARD
        reads = len(rig.model.commands)
        # The card lies there through several looks.
        await eventually(lambda: len(rig.model.commands) >= reads + 6, what="six looks")
        assert len(cards.items) == 1
        rig.model.remove()
        looks = len(rig.model.commands)
        # A look after the removal has seen no card.
        await eventually(lambda: len(rig.model.commands) >= looks + 2, what="two looks")
        rig.model.insert(CARD)
        assert await cards.next() == CARD


async def test_a_reader_that_never_answers_times_out() -> None:
    """Nothing on the line: the reset gets no reply and connect raises DeviceTimeout."""
    async with pty_pair() as (host_end, _nobody):
        driver = IdReaderDriver(SerialPort(host_end), reply_timeout=0.05)
        with pytest.raises(DeviceTimeout):
            await driver.connect()
        assert await driver.read_card(timeout_s=1) == CardRead(reason="offline")
