"""The simulated evaluation pad and LED panels: their sans-I/O models against the documents'
worked examples, and one exchange each over a real socat pty pair with serialx.

Golden vectors: docs/devices/evaluator-serial.md §7 (E1–E15) and docs/devices/led-panel.md §7
(L1–L11). The simulators are written from the documents, independently of the codecs; the
host side of these tests uses the codecs, so codec and simulator check each other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection

import serialx

from devices.codecs import evaluator_serial as ev
from devices.codecs import led_panel as led
from devices.codecs.wire import crc16_modbus
from devices.simulators.evaluator_serial import EvaluatorPadModel
from devices.simulators.evaluator_serial import serve as serve_pad
from devices.simulators.led_panel import LedBus, LedPanelModel
from devices.simulators.led_panel import serve as serve_panels
from hub.domain.rating import Grade
from tests.devices.codec_checks import h
from tests.support.ptys import pty_pair

# docs/devices/evaluator-serial.md §7, rows named.
E1 = h("02 17 01 01 00 00 30 39 00 03 00 1E 04 D5 C5 C8 FD 04 31 30 32 34 04 41 30 31 32 BE 0B 03")
E2 = h("02 02 06 01 01 00 0D 18 03")
E3 = h("02 06 81 01 00 00 30 39 05 00 24 61 03")
E4 = h("02 02 06 01 81 00 6C D8 03")
E5 = h("02 08 81 02 00 00 30 3A 01 02 01 02 9E 51 03")
E6 = h("02 04 82 03 00 00 30 3B 51 31 03")
E7 = h("02 04 02 02 00 00 02 03 67 83 03")
E8 = h("02 02 06 02 02 01 3C 28 03")
E9 = h("02 09 03 03 08 BB B6 D3 AD B9 E2 C1 D9 D6 82 03")
E11 = h("02 00 04 04 72 C3 03")
E12 = h("02 0F 84 04 00 1F 06 48 48 2D 45 56 35 05 31 2E 32 2E 30 5D 95 03")
E13 = h("02 0F 84 05 01 1B 06 48 48 2D 45 56 35 05 31 2E 32 2E 30 58 C1 03")
E15 = h("02 02 06 09 09 02 0A DB 03")

# docs/devices/led-panel.md §7, rows named.
L1 = h(
    "AA 55 03 01 2F 04 07 33 BA C5 B4 B0 BF DA 0D D5 FD D4 DA B0 EC C0 ED 20 41 30 31 32"
    " 0D D5 C5 C8 FD 20 B9 A4 BA C5 31 30 32 34 09 B5 C8 BA F2 20 35 20 C8 CB E5 0D"
)
L2 = h("AA 55 03 81 01 00 51 D8")
L3 = h("AA 55 00 02 01 08 A1 B2")
L4 = h("AA 55 03 03 00 81 30")
L5 = h("AA 55 03 83 01 00 F0 18")
L6 = h("AA 55 03 04 00 83 00")
L7 = h("AA 55 03 84 15 00 03 10 08 0A 48 48 2D 4C 45 44 34 38 31 36 05 32 2E 31 2E 30 0F 8E")
L8 = h("AA 55 03 05 0B 00 03 08 D7 DB BA CF CA DC C0 ED D1 41")
L9 = h("AA 55 03 85 01 00 10 19")
L10 = h("AA 55 0C 89 01 01 12 CE")
L11 = h("AA 55 03 81 01 03 11 D9")

LINES = ("3号窗口", "正在办理 A012", "张三 工号1024", "等候 5 人")


class Clock:
    """A hand-moved monotonic clock for the pad's timeouts."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pad(
    clock: Clock | None = None,
    *,
    auto_grade: Grade | None = None,
    faulty_buttons: Collection[Grade] = (),
) -> EvaluatorPadModel:
    return EvaluatorPadModel(
        clock=clock or Clock(),
        heartbeat_interval=None,
        auto_grade=auto_grade,
        faulty_buttons=faulty_buttons,
    )


def exchange(model: EvaluatorPadModel, data: bytes) -> bytes:
    model.receive_data(data)
    return model.data_to_send()


def prompt(seq: int, request_id: int, timeout_s: int = 30) -> bytes:
    return ev.encode_frame(
        ev.Prompt(
            seq=seq,
            request_id=request_id,
            window_number=3,
            timeout_s=timeout_s,
            staff_name="张三",
            staff_no="1024",
            ticket_number="A013",
        )
    )


def host_frame(cmd: int, seq: int, payload: bytes) -> bytes:
    body = bytes([len(payload), cmd, seq]) + payload
    crc = crc16_modbus(body)
    return b"\x02" + body + bytes([crc & 0xFF, crc >> 8, 0x03])


# --- the pad ----------------------------------------------------------------------------------


def test_the_pad_acknowledges_e1_with_e2_and_shows_the_prompt() -> None:
    """PROMPT E1 gets ACK E2 and the pad shows window 3, 张三 1024, ticket A012."""
    model = pad()
    assert exchange(model, E1) == E2
    assert model.prompt is not None
    assert (model.prompt.window_number, model.prompt.staff_name, model.prompt.staff_no) == (
        3,
        "张三",
        "1024",
    )
    assert (model.prompt.ticket_number, model.prompt.timeout_s) == ("A012", 30)


def test_a_rating_start_to_end_produces_the_docs_bytes() -> None:
    """E1 → E2, press 非常满意 → E3, ACK E4 clears it; then a bad grade → E5, a timeout → E6."""
    clock = Clock()
    model = pad(clock)
    assert exchange(model, E1) == E2
    assert model.press("very_satisfied")
    assert model.data_to_send() == E3
    assert exchange(model, E4) == b""
    assert model.pending == []

    assert ev.parse_frame(exchange(model, prompt(2, 12346))) == ev.Ack(seq=2, command=1)
    assert model.press("very_dissatisfied", ["poor_attitude", "slow_service"])
    assert model.data_to_send() == E5
    assert exchange(model, ev.encode_frame(ev.Ack(seq=2, command=0x81))) == b""

    assert ev.parse_frame(exchange(model, prompt(3, 12347, timeout_s=20))) == ev.Ack(
        seq=3, command=1
    )
    clock.now += 19.9
    model.tick()
    assert model.data_to_send() == b""
    clock.now += 0.1
    model.tick()
    assert model.data_to_send() == E6
    assert model.prompt is None


def test_an_unacknowledged_grade_is_resent_every_second_three_times_at_most() -> None:
    """Without the host's ACK, E3 goes out again at +1 s, +2 s, +3 s, then the pad gives up."""
    clock = Clock()
    model = pad(clock)
    exchange(model, E1)
    model.press("very_satisfied")
    assert model.data_to_send() == E3
    sent = []
    for _ in range(6):
        clock.now += 1.0
        model.tick()
        sent.append(model.data_to_send())
    assert sent == [E3, E3, E3, b"", b"", b""]
    assert model.pending == []


def test_a_retried_prompt_is_acknowledged_again_but_opened_once() -> None:
    """The same SEQ and CMD twice (a host retry) gets E2 twice and one prompt (doc §5)."""
    model = pad()
    assert exchange(model, E1 + E1) == E2 + E2
    assert model.prompts_seen == 1


def test_cancelling_a_request_that_is_not_open_answers_e8() -> None:
    """CANCEL E7 for request 515 with no prompt open gets ACK unknown_request, E8."""
    assert exchange(pad(), E7) == E8


def test_cancelling_the_open_prompt_returns_the_pad_to_idle() -> None:
    """CANCEL of the open request is ACK ok and closes the prompt without a TIMEOUT later."""
    clock = Clock()
    model = pad(clock)
    exchange(model, E1)
    cancel = ev.encode_frame(ev.Cancel(seq=2, request_id=12345))
    assert ev.parse_frame(exchange(model, cancel)) == ev.Ack(seq=2, command=2)
    clock.now += 60
    model.tick()
    assert model.data_to_send() == b""


def test_idle_text_is_shown_and_closes_a_prompt() -> None:
    """IDLE E9 is acknowledged, shows 欢迎光临 and closes the open prompt."""
    model = pad()
    exchange(model, E1)
    assert ev.parse_frame(exchange(model, E9)) == ev.Ack(seq=3, command=3)
    assert (model.idle_text, model.prompt) == ("欢迎光临", None)


def test_a_status_query_gets_e12_and_a_faulty_button_shows_in_e13() -> None:
    """STATUS_QUERY E11 → E12; prompting with the 基本满意 button broken → E13."""
    assert exchange(pad(), E11) == E12
    model = pad(faulty_buttons={"basically_satisfied"})
    exchange(model, E1)
    assert exchange(model, host_frame(0x04, 5, b"")) == E13
    assert not model.press("basically_satisfied")
    assert model.prompt is not None


def test_an_unknown_command_is_answered_unsupported_e15() -> None:
    """Command 0x09 with SEQ 9 gets ACK unsupported, E15."""
    assert exchange(pad(), host_frame(0x09, 9, b"")) == E15


def test_a_prompt_with_a_zero_timeout_is_answered_bad_payload() -> None:
    """An intact PROMPT whose timeout is 0 gets ACK bad_payload and opens nothing."""
    model = pad()
    raw = host_frame(0x01, 4, h("00 00 00 01 00 03 00 00 00 00 00"))
    assert ev.parse_frame(exchange(model, raw)) == ev.Ack(seq=4, command=1, result="bad_payload")
    assert model.prompt is None


def test_a_frame_with_a_bad_crc_gets_no_answer() -> None:
    """E1 with one CRC byte wrong is dropped silently and counted."""
    model = pad()
    assert exchange(model, E1[:-2] + b"\x00\x03") == b""
    assert (model.bad_frames, model.prompt) == (1, None)


def test_auto_grade_answers_every_prompt_right_after_its_ack() -> None:
    """A pad with auto_grade=satisfied sends E2 then the GRADE for request 12345."""
    model = pad(auto_grade="satisfied")
    items = ev.EvaluatorDecoder().feed(exchange(model, E1))
    assert items == [
        ev.Ack(seq=1, command=1),
        ev.GradePressed(seq=1, request_id=12345, grade="satisfied"),
    ]


def test_heartbeats_follow_the_clock() -> None:
    """With a 10 s heartbeat, nothing at +9.9 s, a HEARTBEAT (idle) at +10 s."""
    clock = Clock()
    model = EvaluatorPadModel(clock=clock, heartbeat_interval=10.0)
    clock.now += 9.9
    model.tick()
    assert model.data_to_send() == b""
    clock.now += 0.1
    model.tick()
    assert ev.parse_frame(model.data_to_send()) == ev.Heartbeat(seq=1, state="idle")


def test_pressing_without_a_prompt_does_nothing() -> None:
    """A press on an idle pad sends nothing."""
    model = pad()
    assert not model.press("satisfied")
    assert model.data_to_send() == b""


# --- the panels -------------------------------------------------------------------------------


def bus(rows: int = 3, columns: int = 16) -> tuple[LedBus, LedPanelModel, LedPanelModel]:
    three = LedPanelModel(3, rows=rows, columns=columns, brightness=15)
    four = LedPanelModel(4, brightness=15)
    return LedBus({3: three, 4: four}), three, four


def on_bus(line: LedBus, data: bytes) -> bytes:
    line.receive_data(data)
    return line.data_to_send()


def test_the_addressed_panel_shows_l1_and_answers_l2() -> None:
    """SHOW_TEXT L1 to panel 3: panel 3 shows the lines and replies L2; panel 4 stays blank."""
    line, three, four = bus(rows=4)
    assert on_bus(line, L1) == L2
    assert (three.lines, four.lines) == (LINES, ())


def test_a_broadcast_reaches_every_panel_and_gets_no_reply() -> None:
    """SET_BRIGHTNESS to address 0 (L3) sets level 8 on both panels and nobody answers."""
    line, three, four = bus()
    assert on_bus(line, L3) == b""
    assert (three.brightness, four.brightness, line.broadcasts) == (8, 8, 1)


def test_clear_status_and_header_answer_as_the_doc_shows() -> None:
    """L4 → L5 (blank), L6 → L7 (status), L8 → L9 (header 3号窗口 综合受理)."""
    line, three, _ = bus(rows=4)
    on_bus(line, L1)
    assert on_bus(line, L4) == L5
    assert three.lines == ()
    three.rows, three.brightness = 3, 8
    assert on_bus(line, L6) == L7
    assert on_bus(line, L8) == L9
    assert three.header_text == "3号窗口 综合受理"


def test_a_narrow_panel_cuts_the_text_and_answers_truncated_l11() -> None:
    """Panel 3 with 8 columns shows what fits and replies L11 (truncated)."""
    line, three, _ = bus(rows=4, columns=8)
    assert on_bus(line, L1) == L11
    assert three.lines == ("3号窗口", "正在办理", "张三 工", "等候 5 ")


def test_an_unknown_command_gets_unsupported_l10() -> None:
    """Panel 12 answers command 0x09 with L10."""
    line = LedBus({12: LedPanelModel(12)})
    body = bytes([12, 0x09, 0])
    crc = crc16_modbus(body)
    assert on_bus(line, b"\xaa\x55" + body + bytes([crc & 0xFF, crc >> 8])) == L10


def test_nobody_answers_for_an_absent_address_or_a_bad_crc() -> None:
    """A request to panel 9 (absent) and L4 with a wrong CRC both meet silence."""
    line, three, _ = bus()
    assert on_bus(line, led.encode_frame(led.Clear(address=9))) == b""
    assert on_bus(line, L4[:-1] + b"\x00") == b""
    assert (line.bad_frames, three.requests) == (1, 0)


def test_the_bus_takes_frames_split_anywhere() -> None:
    """L1 then L6 fed byte by byte give L2 then L7."""
    line, three, _ = bus(rows=4)
    three.brightness = 8
    out = b"".join(on_bus(line, bytes([b])) for b in L1 + L6)
    assert out[: len(L2)] == L2
    assert led.parse_frame(out[len(L2) :]) == led.PanelStatus(
        address=3, rows=4, columns=16, brightness=8, model="HH-LED4816", firmware="2.1.0"
    )


# --- over a real serial line ------------------------------------------------------------------


async def read_items(
    port: serialx.AsyncSerial, decoder: ev.EvaluatorDecoder, count: int
) -> list[ev.EvaluatorItem]:
    items: list[ev.EvaluatorItem] = []
    async with asyncio.timeout(5):
        while len(items) < count:
            items += decoder.feed(await port.read(4096))
    return items


async def test_a_rating_over_a_socat_pty_pair() -> None:
    """Over a real serial link: E1 → E2, a press → E3, ACK, then a 1 s prompt times out."""
    clock = Clock()
    model = pad(clock)
    async with pty_pair() as (pad_end, host_end):
        ready = asyncio.Event()
        server = asyncio.create_task(serve_pad(pad_end, model, tick_interval=0.01, ready=ready))
        try:
            await ready.wait()
            async with serialx.async_serial_for_url(host_end, baudrate=9600) as host:
                decoder = ev.EvaluatorDecoder()
                await host.write(E1)
                assert await read_items(host, decoder, 1) == [ev.parse_frame(E2)]
                model.press("very_satisfied")
                assert await read_items(host, decoder, 1) == [ev.parse_frame(E3)]
                await host.write(E4 + prompt(2, 12346, timeout_s=1))
                assert await read_items(host, decoder, 1) == [ev.Ack(seq=2, command=1)]
                clock.now += 1
                timeout = await read_items(host, decoder, 1)
        finally:
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server
    expected = ev.PromptTimeout(seq=2, request_id=12346)
    assert timeout == [expected]
    assert [p.frame for p in model.pending] == [ev.encode_frame(expected)]  # E3 was acked


async def test_two_panels_on_one_socat_pty_pair() -> None:
    """Over a real serial link: L8 → L9, a broadcast (L3) gets no reply, L6 → L7, and L1 to a
    three-row panel → L11 (truncated)."""
    three = LedPanelModel(3, rows=3, brightness=15)
    four = LedPanelModel(4, brightness=15)
    async with pty_pair() as (bus_end, host_end):
        ready = asyncio.Event()
        server = asyncio.create_task(serve_panels(bus_end, {3: three, 4: four}, ready=ready))
        try:
            await ready.wait()
            async with serialx.async_serial_for_url(host_end, baudrate=9600) as host:
                decoder = led.LedDecoder()
                items: list[led.LedItem] = []
                for request in (L8, L3, L6, L1):
                    await host.write(request)
                async with asyncio.timeout(5):
                    while len(items) < 3:
                        items += decoder.feed(await host.read(4096))
        finally:
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server
    assert items == [led.parse_frame(L9), led.parse_frame(L7), led.parse_frame(L11)]
    assert (three.lines, three.header_text) == (LINES[:3], "3号窗口 综合受理")
    assert (three.brightness, four.brightness, four.lines) == (8, 8, ())
