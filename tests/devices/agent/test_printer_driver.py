"""The printer driver (devices/drivers/printer.py) against the simulated ESC/POS printer
(devices/simulators/printer.py) over socat ptys: tickets read back by the simulator, status
from DLE EOT polls and ASB, prints that fail fast or fail after the fact."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from devices.codecs.escpos import PrintedTicket, PrinterStatus
from devices.drivers.printer import PrinterDriver, PrintResult
from devices.errors import DeviceOffline, DeviceTimeout
from devices.simulators.printer import PrinterModel, serve
from devices.transport.serial import SerialPort
from tests.devices.agent.helpers import Recorder, running, wait_for
from tests.support.ptys import pty_pair

TICKET = PrintedTicket(
    hall_name="朝阳区政务服务中心",
    number="A017",
    group_name="社保业务",
    people_ahead=4,
    issued_at="2026-11-26 09:30",
    qr_url="https://hall.example.cn/ticket/?t=q3ZtR8bXk2LmN0pA7sWcYg",
)
OK = PrinterStatus(online=True, cover_open=False, paper="ok", error=False)
LOW = PrinterStatus(online=True, cover_open=False, paper="low", error=False)
OUT = PrinterStatus(online=False, cover_open=False, paper="out", error=False)
COVER = PrinterStatus(online=False, cover_open=True, paper="ok", error=False)


class Rig:
    def __init__(self, model: PrinterModel, driver: PrinterDriver, seen: Recorder[PrinterStatus]):
        self.model = model
        self.driver = driver
        self.seen = seen


@pytest.fixture
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """A simulated printer on one end of a pty pair, the driver connected on the other."""
    options = getattr(request, "param", {})
    model = PrinterModel(**options.get("model", {}))
    seen: Recorder[PrinterStatus] = Recorder()
    async with pty_pair() as (host_end, printer_end):
        ready = asyncio.Event()
        async with running(serve(printer_end, model, ready=ready)):
            await wait_for(ready.wait())
            driver = PrinterDriver(
                SerialPort(host_end),
                print_seconds=0.2,
                on_status=seen,
                **options.get("driver", {}),
            )
            await driver.connect()
            try:
                yield Rig(model, driver, seen)
            finally:
                await driver.close()


async def test_connect_enables_asb_and_reports_the_first_status(rig: Rig) -> None:
    """After connect the driver knows the status, and GS a has turned ASB on at the printer."""
    assert rig.driver.status == OK
    assert await rig.seen.next() == OK
    assert rig.model.asb_items == 0x0E


async def test_a_printed_ticket_is_read_back_with_its_number_and_qr(rig: Rig) -> None:
    """The simulator prints the ticket: the number and the citizen's QR URL come out."""
    result = await rig.driver.print_ticket(TICKET)
    assert result == PrintResult(ok=True, status=OK)
    (ticket,) = rig.model.tickets
    assert "A017" in ticket.text.splitlines()
    assert "社保业务" in ticket.text.splitlines()
    assert [qr.data for qr in ticket.qr_codes] == [TICKET.qr_url]


@pytest.mark.parametrize(
    "rig", [{"model": {"paper_low_after": 1, "paper_out_after": 3}}], indirect=True
)
async def test_paper_running_low_then_out_is_reported_and_the_last_ticket_fails(rig: Rig) -> None:
    """Paper near end after 1 ticket, end after 3: the status goes ok → low → out, the third
    ticket is reported failed (the end sensor fired on it), the fourth fails fast unsent."""
    assert await rig.seen.next() == OK
    assert (await rig.driver.print_ticket(TICKET)).ok
    assert await rig.seen.next() == LOW
    assert (await rig.driver.print_ticket(TICKET)).ok
    third = await rig.driver.print_ticket(TICKET)
    assert third == PrintResult(ok=False, reason="paper_out", status=OUT)
    assert await rig.seen.next() == OUT
    fourth = await rig.driver.print_ticket(TICKET)
    assert fourth == PrintResult(ok=False, reason="paper_out", status=OUT)
    assert len(rig.model.tickets) == 3
    assert rig.model.refused == 0  # nothing was sent to the empty printer


async def test_a_print_while_the_cover_is_open_fails_fast_with_the_reason(rig: Rig) -> None:
    """Cover open: the print fails at once as cover_open and no ticket bytes are sent."""
    rig.model.open_cover()
    result = await rig.driver.print_ticket(TICKET)
    assert result.reason == "cover_open"
    assert rig.model.tickets == [] and rig.model.refused == 0
    rig.model.close_cover()
    assert (await rig.driver.print_ticket(TICKET)).ok


@pytest.mark.parametrize("rig", [{"driver": {"poll_seconds": 3600}}], indirect=True)
async def test_a_scripted_change_arrives_by_asb_without_a_poll(rig: Rig) -> None:
    """With polling far away, refilling and emptying the printer are seen through ASB."""
    assert await rig.seen.next() == OK
    rig.model.set_paper("out")
    assert await rig.seen.next() == OUT
    rig.model.refill()
    assert await rig.seen.next() == OK


@pytest.mark.parametrize("rig", [{"driver": {"poll_seconds": 3600, "asb": False}}], indirect=True)
async def test_without_asb_a_change_is_seen_at_the_next_poll(rig: Rig) -> None:
    """ASB off: nothing arrives unasked; the next poll reports the cover open."""
    assert await rig.seen.next() == OK
    rig.model.open_cover()
    assert rig.model.asb_items == 0
    assert await rig.driver.poll() == COVER
    assert await rig.seen.next() == COVER


async def test_a_silent_port_times_out_and_watch_reports_the_link_lost() -> None:
    """Nothing answers DLE EOT: connect raises DeviceTimeout; a printer gone silent after
    connecting makes watch raise DeviceOffline after max_missed polls."""
    async with pty_pair() as (host_end, _silent_end):
        driver = PrinterDriver(SerialPort(host_end), reply_timeout=0.1)
        with pytest.raises(DeviceTimeout):
            await driver.connect()
        await driver.close()
    model = PrinterModel()
    async with pty_pair() as (host_end, printer_end):
        ready = asyncio.Event()
        async with running(serve(printer_end, model, ready=ready)) as sim:
            await wait_for(ready.wait())
            driver = PrinterDriver(SerialPort(host_end), reply_timeout=0.1, poll_seconds=0.05)
            await driver.connect()
            sim.cancel()  # the printer's port closes: the pty stays, nobody answers
            with pytest.raises(DeviceOffline, match="no status reply"):
                await wait_for(driver.watch())
            await driver.close()
