"""``hallhub simulate <kind>`` as a real process: it makes a socat pty pair, writes the agent's
end as one JSON line, speaks the device's bytes on it (checked here with our codecs over the
real pty) and obeys stdin commands, one JSON answer per line; SIGTERM and EOF stop it with 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import pytest
import serialx
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

from devices.codecs.escpos import (
    PaperSensor,
    encode_status_request,
    encode_ticket,
    parse_status,
)
from devices.codecs.sam import (
    SamDecoder,
    SamReply,
    encode_find_card,
    encode_read_base_info,
    encode_select_card,
    parse_base_info,
)
from tests.devices.samples import TICKET

HALLHUB = str(Path(sys.executable).with_name("hallhub"))
TIMEOUT = 15.0

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")


class Sim:
    """A running ``hallhub simulate`` process: its port line, stdin commands, its exit."""

    def __init__(self, proc: asyncio.subprocess.Process, log: IO[bytes]) -> None:
        self.proc = proc
        self.log = log
        self.line: dict[str, Any] = {}

    async def read_json(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            raw = await self.proc.stdout.readline()
        assert raw, f"the simulator ended; its log: {self.stderr()}"
        decoded: dict[str, Any] = json.loads(raw)
        return decoded

    async def send(self, command: str) -> dict[str, Any]:
        """Write one stdin command; return its JSON answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.read_json()

    async def wait(self) -> int:
        async with asyncio.timeout(TIMEOUT):
            return await self.proc.wait()

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]


@contextlib.asynccontextmanager
async def simulate(*args: str) -> AsyncIterator[Sim]:
    """Start ``hallhub simulate ARGS``, read its first line; SIGTERM it at the end if alive."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALLHUB_")}
    with tempfile.TemporaryFile() as log:
        proc = await asyncio.create_subprocess_exec(
            HALLHUB, "simulate", *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env=env,
        )  # fmt: skip
        sim = Sim(proc, log)
        try:
            sim.line = await sim.read_json()
            yield sim
        finally:
            if proc.returncode is None:
                proc.terminate()  # it stops its socat
                try:
                    async with asyncio.timeout(TIMEOUT):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _ask_paper(port: serialx.AsyncSerial) -> PaperSensor:
    """DLE EOT 4 and its one reply byte, decoded."""
    await port.write(encode_status_request(4))
    async with asyncio.timeout(TIMEOUT):
        reply = await port.readexactly(1)
    sensor = parse_status(4, reply[0])
    assert isinstance(sensor, PaperSensor)
    return sensor


async def test_printer_answers_status_prints_a_ticket_and_runs_out_of_paper_on_command() -> None:
    """The printer answers DLE EOT 4 on the pty, prints a ticket, and after ``paper-out`` on
    stdin its paper sensor reports the end of the roll; SIGTERM then stops it with 0."""
    async with simulate("printer") as sim:
        assert sim.line["kind"] == "printer"
        async with serialx.async_serial_for_url(sim.line["port"], baudrate=9600) as port:
            assert await _ask_paper(port) == PaperSensor(near_end=False, paper_end=False)
            await port.write(encode_ticket(TICKET))
            # DLE EOT is real-time: answered on receipt, maybe before the ticket ahead of it
            # in the same read is printed; once answered, that whole read has been handled.
            await _ask_paper(port)
            state = await sim.send("state")
            assert state["state"]["tickets"] == 1

            answer = await sim.send("paper-out")
            assert answer["ok"] is True
            assert answer["state"]["paper"] == "out"
            assert await _ask_paper(port) == PaperSensor(near_end=True, paper_end=True)

            assert (await sim.send("refill"))["state"]["paper"] == "ok"
            assert await _ask_paper(port) == PaperSensor(near_end=False, paper_end=False)
        sim.proc.send_signal(signal.SIGTERM)
        assert await sim.wait() == 0, sim.stderr()


async def test_printer_paper_runs_out_after_the_number_of_tickets_given() -> None:
    """With ``--paper-out-after 1`` the first ticket prints and the roll is then empty."""
    async with simulate("printer", "--paper-out-after", "1") as sim:
        async with serialx.async_serial_for_url(sim.line["port"], baudrate=9600) as port:
            await port.write(encode_ticket(TICKET))
            await _ask_paper(port)  # real-time: maybe answered before the cut (see above)
            assert await _ask_paper(port) == PaperSensor(near_end=True, paper_end=True)
        state = (await sim.send("state"))["state"]
        assert (state["tickets"], state["paper"], state["online"]) == (1, "out", False)


async def _sam_exchange(port: serialx.AsyncSerial, decoder: SamDecoder, command: bytes) -> SamReply:
    await port.write(command)
    async with asyncio.timeout(TIMEOUT):
        while True:
            items = decoder.feed(await port.read(4096))
            if items:
                (item,) = items
                assert isinstance(item, SamReply)
                return item


async def test_id_reader_reads_a_card_inserted_on_stdin_over_the_pty() -> None:
    """``insert`` on stdin puts a card on the reader; find, select and read over the port
    then give that card, decoded by the SAM codec; SIGTERM stops the reader with 0."""
    async with simulate("id-reader") as sim:
        assert sim.line["baudrate"] == 115200
        async with serialx.async_serial_for_url(sim.line["port"], baudrate=115200) as port:
            decoder = SamDecoder()
            assert (await _sam_exchange(port, decoder, encode_find_card())).sw3 == 0x80
            answer = await sim.send(
                "insert 王测试 11010519491231002X 北京市朝阳区测试街道示例路1号"
            )
            assert answer["ok"] is True and answer["state"]["card"] is True

            assert (await _sam_exchange(port, decoder, encode_find_card())).sw3 == 0x9F
            assert (await _sam_exchange(port, decoder, encode_select_card())).sw3 == 0x90
            read = await _sam_exchange(port, decoder, encode_read_base_info())
            assert read.sw3 == 0x90
            card = parse_base_info(read.data)
            assert (card.name, card.id_number) == ("王测试", "11010519491231002X")
            assert card.address == "北京市朝阳区测试街道示例路1号"
            assert card.birth_date.isoformat() == "1949-12-31"
            assert card.sex == "女"  # 17th digit 2: even
        sim.proc.send_signal(signal.SIGTERM)
        assert await sim.wait() == 0, sim.stderr()


async def test_code_reader_sends_a_scanned_code_with_its_carriage_return() -> None:
    """``scan <text>`` writes the text and the CR suffix on the port, as a reader does."""
    async with simulate("code-reader") as sim:
        port = serialx.async_serial_for_url(sim.line["port"], baudrate=9600)
        async with port:
            answer = await sim.send("scan APPT-2026-0042 预约")
            assert answer["ok"] is True
            async with asyncio.timeout(TIMEOUT):
                data = await port.readuntil(b"\r")
            assert data == "APPT-2026-0042 预约\r".encode()


async def test_evaluator_press_without_a_prompt_is_refused_and_led_show_lists_panels() -> None:
    """A press with no prompt shown answers ``ok`` false with the reason; an unknown grade too."""
    async with simulate("evaluator") as sim:
        answer = await sim.send("press very_satisfied")
        assert answer["ok"] is False and "no prompt" in answer["error"]
        assert (await sim.send("press splendid"))["ok"] is False
        assert (await sim.send("auto satisfied slow_service"))["state"]["auto"] == "satisfied"
    async with simulate("led-panel", "--addresses", "1", "3") as sim:
        panels = (await sim.send("show"))["state"]["panels"]
        assert [p["address"] for p in panels] == [1, 3]


async def test_end_of_stdin_stops_the_simulator_with_status_0_and_removes_its_link() -> None:
    """EOF on stdin stops the simulator cleanly; socat takes the ``--link`` symlink away."""
    with tempfile.TemporaryDirectory() as folder:
        link = os.path.join(folder, "printer")
        async with simulate("printer", "--link", link) as sim:
            assert sim.line["port"] == link
            assert Path(link).resolve().parent == Path("/dev/pts")  # noqa: ASYNC240
            assert sim.proc.stdin is not None
            sim.proc.stdin.close()
            assert await sim.wait() == 0, sim.stderr()
        assert not Path(link).is_symlink()  # noqa: ASYNC240


async def test_ble_evaluator_without_a_transport_explains_where_ble_is_simulated() -> None:
    """Without --transport the BLE pad cannot run here: status 2 and a message naming
    open_pad and the --transport option."""
    proc = await asyncio.create_subprocess_exec(
        HALLHUB, "simulate", "evaluator-ble",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(TIMEOUT):
        out, err = await proc.communicate()
    assert proc.returncode == 2
    assert out == b""
    assert b"open_pad" in err and b"--transport" in err


async def test_ble_evaluator_runs_its_pad_on_a_bumble_transport() -> None:
    """With --transport the pad powers on a bumble controller (here a virtual one in the test
    process, reached over TCP), takes commands, and a press without a prompt is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    transport = await open_tcp_server_transport_with_socket(sock)
    Controller("C0", host_source=transport.source, host_sink=transport.sink, link=LocalLink())
    spec = f"tcp-client:127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with simulate("evaluator-ble", "--transport", spec, "--label", "07") as sim:
            assert sim.line["name"] == "HallEval-07"
            assert (await sim.send("press satisfied"))["ok"] is False
            assert (await sim.send("auto very_satisfied"))["state"]["auto"] == "very_satisfied"
            sim.proc.send_signal(signal.SIGTERM)
            assert await sim.wait() == 0, sim.stderr()
    finally:
        await transport.close()
