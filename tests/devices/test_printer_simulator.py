"""The simulated ticket printer (devices.simulators.printer): it reads what the encoder writes,
answers with the status bytes of the Epson tables (docs/devices/printer.md §7), runs out of
paper on cue, and serves over a real pseudo-terminal pair made by socat."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import serialx
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.codecs.escpos import (
    PaperSensor,
    PrintedTicket,
    PrinterReplyDecoder,
    PrinterStatus,
    encode_asb,
    encode_status_request,
    encode_ticket,
    parse_asb,
    parse_status,
    status_from_asb,
    status_from_replies,
)
from devices.errors import EncodeError
from devices.simulators.printer import PrintedLine, PrintedQr, PrinterModel, serve
from tests.devices.samples import TICKET
from tests.support.ptys import PtyLink, pty_pair

H = bytes.fromhex
WIRE = encode_ticket(TICKET)
TIMEOUT = 5.0


def _ask(model: PrinterModel, n: int) -> int:
    """Send DLE EOT n; return the one reply byte."""
    (reply,) = model.feed(bytes((0x10, 0x04, n)))
    assert len(reply) == 1
    return reply[0]


def _status(model: PrinterModel) -> PrinterStatus:
    """Poll DLE EOT 1, 2, 4 and merge with the codec."""
    return status_from_replies(
        parse_status(1, _ask(model, 1)),
        parse_status(2, _ask(model, 2)),
        parse_status(4, _ask(model, 4)),
    )


# ---- printing ------------------------------------------------------------------------------


def test_ticket_is_printed_and_read_back_with_its_chinese_text_and_qr_payload() -> None:
    """The encoder's ticket prints as its Chinese lines, centred, and the citizen's QR URL."""
    model = PrinterModel()
    assert model.feed(WIRE) == []
    (ticket,) = model.tickets
    assert ticket.text.splitlines() == [
        "欢迎光临",
        "北京市朝阳区政务服务中心",
        "社保业务",
        "A001",
        "前面还有 3 人等候",
        "取号时间 2026-11-26 09:30",
        "请扫码查看排队进度",
        "请保管好号票",
    ]
    assert {line.align for line in ticket.lines} == {"center"}
    assert ticket.qr_codes == [
        PrintedQr(data="https://hall.example.cn/t/Zk3q9", model=2, module=6, error="M")
    ]
    assert model.unknown == 0


def test_the_number_prints_bold_at_four_times_size_and_the_hall_name_double_height() -> None:
    """GS ! 33 with ESC E 1 for the number, GS ! 01 for the hall name."""
    model = PrinterModel()
    model.feed(WIRE)
    lines = {line.text: line for line in model.tickets[0].lines}
    assert lines["A001"] == PrintedLine(text="A001", align="center", width=4, height=4, bold=True)
    assert lines["北京市朝阳区政务服务中心"].height == 2
    assert lines["社保业务"] == PrintedLine(text="社保业务", align="center")


def test_ticket_fed_in_two_pieces_at_every_offset_prints_the_same() -> None:
    """Split anywhere, even inside a GB18030 character or a GS ( k command, nothing changes."""
    reference = PrinterModel()
    reference.feed(WIRE)
    for cut in range(len(WIRE) + 1):
        model = PrinterModel()
        assert model.feed(WIRE[:cut]) + model.feed(WIRE[cut:]) == []
        assert model.tickets == reference.tickets


def test_simulator_reads_the_manual_qr_example() -> None:
    """The Cashino CSN-80V QR example (module 3, level L, "ABC") and Epson's GS V 66 0 cut."""
    model = PrinterModel()
    model.feed(
        H("1b 40")
        + H("1d 28 6b 03 00 31 43 03")  # Cashino CSN-80V manual p. 55 example, line by line
        + H("1d 28 6b 03 00 31 45 30")
        + H("1d 28 6b 06 00 31 50 30 41 42 43")
        + H("1b 61 01")
        + H("1d 28 6b 03 00 31 52 30")  # fn 182 (transmit size): no effect on paper
        + H("1d 28 6b 03 00 31 51 30")
        + H("1d 56 42 00")  # Epson GS V program example: feed and partial cut
    )
    (ticket,) = model.tickets
    assert ticket.qr_codes == [PrintedQr(data="ABC", model=2, module=3, error="L")]


def test_simulator_prints_epsons_cut_example() -> None:
    """PRINT "AAAAA"; LF; GS V 66 0 prints one line and cuts (Epson GS V program example)."""
    model = PrinterModel()
    model.feed(b" AAAAA\n" + H("1d 56 42 00"))
    assert [line.text for line in model.tickets[0].lines] == [" AAAAA"]


def test_esc_at_discards_a_half_built_ticket() -> None:
    """ESC @ clears the print buffer: an aborted ticket leaves nothing behind."""
    model = PrinterModel()
    model.feed(WIRE[: len(WIRE) // 2] + WIRE)
    assert len(model.tickets) == 1
    assert model.tickets[0].text.startswith("欢迎光临\n")


# ---- status --------------------------------------------------------------------------------


def test_simulator_answers_dle_eot_with_the_epson_reply_bytes() -> None:
    """Fresh: 12 to every n; out of paper: 1A, 32, 7E; low: 1E; cover open: 16; jam: 52, 1A."""
    model = PrinterModel()
    assert [_ask(model, n) for n in (1, 2, 3, 4)] == [0x12, 0x12, 0x12, 0x12]
    model.set_paper("low")
    assert _ask(model, 4) == 30  # python-escpos RT_MASK_LOWPAPER
    model.set_paper("out")
    assert [_ask(model, n) for n in (1, 2, 4)] == [0x1A, 0x32, 0x7E]
    model.refill()
    model.open_cover()
    assert [_ask(model, n) for n in (1, 2)] == [0x1A, 0x16]
    model.close_cover()
    model.jam_cutter()
    assert [_ask(model, n) for n in (2, 3)] == [0x52, 0x1A]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ([], PrinterStatus(online=True, cover_open=False, paper="ok", error=False)),
        (["low"], PrinterStatus(online=True, cover_open=False, paper="low", error=False)),
        (["out"], PrinterStatus(online=False, cover_open=False, paper="out", error=False)),
        (["cover"], PrinterStatus(online=False, cover_open=True, paper="ok", error=False)),
        (["jam"], PrinterStatus(online=False, cover_open=False, paper="ok", error=True)),
        (["low", "cover"], PrinterStatus(online=False, cover_open=True, paper="low", error=False)),
    ],
)
def test_codec_reads_every_simulated_state_the_same_by_polling_and_by_asb(
    script: list[str], expected: PrinterStatus
) -> None:
    """DLE EOT 1, 2, 4 and the ASB block both merge to the state the simulator is in."""
    model = PrinterModel()
    actions = {
        "low": lambda: model.set_paper("low"),
        "out": lambda: model.set_paper("out"),
        "cover": model.open_cover,
        "jam": model.jam_cutter,
    }
    for step in script:
        actions[step]()
    assert _status(model) == expected
    assert status_from_asb(parse_asb(model.asb_block())) == expected


def test_paper_runs_low_then_out_after_n_tickets_and_printing_is_refused() -> None:
    """Low after 2 tickets, out after 3; the 4th is not printed and the status says paper end."""
    model = PrinterModel(paper_low_after=2, paper_out_after=3)
    papers = []
    for _ in range(4):
        model.feed(WIRE)
        papers.append(model.paper)
    assert papers == ["ok", "low", "out", "out"]
    assert len(model.tickets) == 3
    assert model.refused == 1
    assert parse_status(4, _ask(model, 4)) == PaperSensor(near_end=True, paper_end=True)
    assert _status(model).paper == "out"


def test_refill_brings_paper_back_and_printing_resumes() -> None:
    """After refill the next ticket prints and the roll counts from zero again."""
    model = PrinterModel(paper_out_after=1)
    model.feed(WIRE + WIRE)
    assert (len(model.tickets), model.refused) == (1, 1)
    model.refill()
    assert _status(model) == PrinterStatus(online=True, cover_open=False, paper="ok", error=False)
    model.feed(WIRE)
    assert len(model.tickets) == 2
    assert model.paper == "out"


def test_open_cover_refuses_printing_until_closed() -> None:
    """A ticket cut with the cover open is refused; after closing it prints."""
    model = PrinterModel()
    model.open_cover()
    model.feed(WIRE)
    model.close_cover()
    model.feed(WIRE)
    assert (len(model.tickets), model.refused) == (1, 1)


# ---- ASB -----------------------------------------------------------------------------------


def test_asb_is_sent_when_enabled_and_on_every_change() -> None:
    """GS a 0E answers at once; near end, paper end and refill each send one block."""
    sent: list[bytes] = []
    model = PrinterModel(paper_low_after=1, paper_out_after=2)
    model.on_unsolicited = sent.append
    assert model.feed(encode_asb()) == [H("10 00 00 00")]
    assert model.feed(WIRE) == [H("10 00 03 00")]
    assert model.feed(WIRE) == [H("18 00 0f 00")]
    assert model.feed(WIRE) == []  # refused: nothing changed
    assert model.refill() == [H("10 00 00 00")]
    assert sent == [H("10 00 00 00")]  # scripted changes also go to on_unsolicited
    assert model.open_cover() == [H("38 00 00 00")]


def test_asb_covers_only_the_enabled_items() -> None:
    """With only the paper sensor enabled (GS a 08), opening the cover sends nothing; the
    next paper change sends the whole block, cover bits included."""
    model = PrinterModel()
    assert model.feed(H("1d 61 08")) == [H("10 00 00 00")]
    assert model.open_cover() == []
    assert model.set_paper("low") == [H("38 00 03 00")]


def test_asb_disabled_sends_nothing() -> None:
    """GS a 0 turns ASB off; changes are then seen only by polling."""
    model = PrinterModel()
    model.feed(encode_asb() + encode_asb(0))
    assert model.set_paper("out") == []


def test_dle_eot_inside_a_ticket_is_answered_on_receipt() -> None:
    """A status request in the middle of the data is answered before the ticket is processed."""
    model = PrinterModel(paper_out_after=1)
    middle = len(WIRE) // 2
    replies = model.feed(WIRE[:middle] + encode_status_request(4) + WIRE[middle:])
    assert replies == [H("12")]  # paper still there when the request arrived
    assert len(model.tickets) == 1
    assert model.paper == "out"


@settings(max_examples=300)
@given(chunks=st.lists(st.binary(max_size=64), max_size=8))
def test_random_bytes_never_make_the_simulator_raise(chunks: list[bytes]) -> None:
    """Whatever a host sends, feed returns replies, and DLE EOT is still answered (it is
    real-time: even in the middle of a command's data)."""
    model = PrinterModel()
    for chunk in chunks:
        for reply in model.feed(chunk):
            assert len(reply) in (1, 4)
    (reply,) = model.feed(encode_status_request(1))
    assert parse_status(1, reply[0]).offline is not model.online


@settings(max_examples=200)
@given(
    hall=st.text(min_size=1, max_size=30),
    group=st.text(min_size=1, max_size=20),
    number=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=6),
    ahead=st.integers(0, 999),
    url=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=120),
)
def test_whatever_the_encoder_accepts_the_simulator_reads_back(
    hall: str, group: str, number: str, ahead: int, url: str
) -> None:
    """Any ticket that encodes prints back with the same number, group, count and QR URL."""
    t = PrintedTicket(
        hall_name=hall, number=number, group_name=group, people_ahead=ahead,
        issued_at="2026-11-26 09:30", qr_url=url,
    )  # fmt: skip
    try:
        wire = encode_ticket(t, width_chars=48)
    except EncodeError:
        return
    model = PrinterModel()
    model.feed(wire)
    (ticket,) = model.tickets
    text = ticket.text
    assert f"\n{number}\n" in text
    assert hall in text.replace("\n", "")  # wrapped over several lines, never mid-character
    assert f"前面还有 {ahead} 人等候" in text
    assert ticket.qr_codes[0].data == url


# ---- over a real pseudo-terminal pair ------------------------------------------------------


@contextlib.asynccontextmanager
async def _serving(path: str, model: PrinterModel) -> AsyncIterator[asyncio.Task[None]]:
    """Run serve on path; yield once the port is open; cancel it on exit."""
    ready = asyncio.Event()
    task = asyncio.create_task(serve(path, model, ready=ready))
    ready_wait = asyncio.create_task(ready.wait())
    await asyncio.wait({task, ready_wait}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    ready_wait.cancel()
    if task.done():
        task.result()  # serve failed to start: raise its error
    assert ready.is_set(), "serve did not open the port"
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await task


async def test_serve_answers_dle_eot_4_with_paper_end_over_a_socat_pty_pair() -> None:
    """serialx on one pty sends 10 04 04; serve on the other answers 7E (paper end)."""
    model = PrinterModel()
    model.set_paper("out")
    decoder = PrinterReplyDecoder()
    async with (
        pty_pair() as (host_path, printer_path),
        _serving(printer_path, model),
        serialx.async_serial_for_url(host_path, baudrate=9600) as host,
    ):
        decoder.expect(4)
        await host.write(encode_status_request(4))
        reply = await asyncio.wait_for(host.readexactly(1), TIMEOUT)
    assert reply == H("7e")
    assert decoder.feed(reply) == [PaperSensor(near_end=True, paper_end=True)]


async def test_serve_prints_a_ticket_and_sends_asb_when_paper_comes_back() -> None:
    """Over the pty: the ticket prints, the paper runs out (ASB), a refill sends ASB again."""
    model = PrinterModel(paper_out_after=1)
    async with (
        pty_pair() as (host_path, printer_path),
        _serving(printer_path, model),
        serialx.async_serial_for_url(host_path, baudrate=9600) as host,
    ):
        await host.write(encode_asb())
        first = await asyncio.wait_for(host.readexactly(4), TIMEOUT)
        await host.write(WIRE)
        out = await asyncio.wait_for(host.readexactly(4), TIMEOUT)
        model.refill()
        back = await asyncio.wait_for(host.readexactly(4), TIMEOUT)
    assert [status_from_asb(parse_asb(b)).paper for b in (first, out, back)] == ["ok", "out", "ok"]
    assert model.tickets[0].qr_codes[0].data == TICKET.qr_url


async def test_unplug_hangs_up_serve_and_replug_serves_again_at_the_same_path() -> None:
    """Killing socat makes serve fail with OSError; after replug the same path works again."""
    model = PrinterModel()
    async with PtyLink() as link:
        ready = asyncio.Event()
        task = asyncio.create_task(serve(link.b, model, ready=ready))
        await asyncio.wait_for(ready.wait(), TIMEOUT)
        await link.unplug()
        with pytest.raises(OSError):
            await asyncio.wait_for(task, TIMEOUT)
        await link.replug()
        async with (
            _serving(link.b, model),
            serialx.async_serial_for_url(link.a, baudrate=9600) as host,
        ):
            await host.write(encode_status_request(1))
            assert await asyncio.wait_for(host.readexactly(1), TIMEOUT) == H("12")
