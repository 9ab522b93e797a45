"""The wired evaluation pad's serial codec against the worked examples of its document.

Golden vectors: docs/devices/evaluator-serial.md §7 (E1–E15), computed from the document's
text with a bitwise CRC-16/MODBUS, not with this codec.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from devices.codecs.evaluator_serial import (
    GRADE_BY_WIRE,
    REASON_BY_WIRE,
    Ack,
    Cancel,
    EvaluatorDecoder,
    EvaluatorFrame,
    Garbage,
    GradePressed,
    Heartbeat,
    PadStatus,
    Prompt,
    PromptTimeout,
    ShowIdle,
    StatusQuery,
    encode_frame,
    parse_frame,
)
from devices.codecs.wire import crc16_modbus
from devices.errors import ChecksumError, EncodeError, FrameError
from hub.domain.rating import GRADE_SCORES, GRADES, REASONS
from tests.devices.codec_checks import framed_codec_properties, h

# Source of every vector: docs/devices/evaluator-serial.md, §7 "Worked examples" (row named).
GOLDEN: list[tuple[str, bytes, EvaluatorFrame]] = [
    (
        "E1",
        h(
            "02 17 01 01 00 00 30 39 00 03 00 1E 04 D5 C5 C8 FD"
            " 04 31 30 32 34 04 41 30 31 32 BE 0B 03"
        ),
        Prompt(
            seq=1,
            request_id=12345,
            window_number=3,
            timeout_s=30,
            staff_name="张三",
            staff_no="1024",
            ticket_number="A012",
        ),
    ),
    ("E2", h("02 02 06 01 01 00 0D 18 03"), Ack(seq=1, command=0x01, result="ok")),
    (
        "E3",
        h("02 06 81 01 00 00 30 39 05 00 24 61 03"),
        GradePressed(seq=1, request_id=12345, grade="very_satisfied"),
    ),
    ("E4", h("02 02 06 01 81 00 6C D8 03"), Ack(seq=1, command=0x81, result="ok")),
    (
        "E5",
        h("02 08 81 02 00 00 30 3A 01 02 01 02 9E 51 03"),
        GradePressed(
            seq=2,
            request_id=12346,
            grade="very_dissatisfied",
            reasons=("poor_attitude", "slow_service"),
        ),
    ),
    ("E6", h("02 04 82 03 00 00 30 3B 51 31 03"), PromptTimeout(seq=3, request_id=12347)),
    ("E7", h("02 04 02 02 00 00 02 03 67 83 03"), Cancel(seq=2, request_id=515)),
    ("E8", h("02 02 06 02 02 01 3C 28 03"), Ack(seq=2, command=0x02, result="unknown_request")),
    ("E9", h("02 09 03 03 08 BB B6 D3 AD B9 E2 C1 D9 D6 82 03"), ShowIdle(seq=3, text="欢迎光临")),
    ("E10", h("02 01 03 03 00 F1 28 03"), ShowIdle(seq=3, text="")),
    ("E11", h("02 00 04 04 72 C3 03"), StatusQuery(seq=4)),
    (
        "E12",
        h("02 0F 84 04 00 1F 06 48 48 2D 45 56 35 05 31 2E 32 2E 30 5D 95 03"),
        PadStatus(seq=4, state="idle", model="HH-EV5", firmware="1.2.0"),
    ),
    (
        "E13",
        h("02 0F 84 05 01 1B 06 48 48 2D 45 56 35 05 31 2E 32 2E 30 58 C1 03"),
        PadStatus(
            seq=5,
            state="prompting",
            model="HH-EV5",
            firmware="1.2.0",
            faulty_buttons=("basically_satisfied",),
        ),
    ),
    ("E14", h("02 01 85 07 01 D3 C1 03"), Heartbeat(seq=7, state="prompting")),
    ("E15", h("02 02 06 09 09 02 0A DB 03"), Ack(seq=9, command=0x09, result="unsupported")),
]
IDS = [name for name, _, _ in GOLDEN]
STREAM = b"".join(raw for _, raw, _ in GOLDEN)
FRAMES = [frame for _, _, frame in GOLDEN]


def frame_with(cmd: int, seq: int, payload: bytes) -> bytes:
    """A frame with a correct CRC around any payload, for the invalid-field cases."""
    body = bytes([len(payload), cmd, seq]) + payload
    crc = crc16_modbus(body)
    return b"\x02" + body + bytes([crc & 0xFF, crc >> 8, 0x03])


def test_crc16_modbus_of_123456789_is_the_catalogue_check_value() -> None:
    """CRC-16/MODBUS("123456789") is 0x4B37 (Greg Cook's CRC catalogue, doc §2)."""
    assert crc16_modbus(b"123456789") == 0x4B37


@pytest.mark.parametrize(("name", "raw", "frame"), GOLDEN, ids=IDS)
def test_each_doc_example_parses_to_its_frame(name: str, raw: bytes, frame: EvaluatorFrame) -> None:
    """Every worked example of the document decodes to the frame its row describes."""
    assert parse_frame(raw) == frame


@pytest.mark.parametrize(("name", "raw", "frame"), GOLDEN, ids=IDS)
def test_each_doc_example_is_what_its_frame_encodes_to(
    name: str, raw: bytes, frame: EvaluatorFrame
) -> None:
    """Encoding the frame a row describes gives the document's bytes exactly."""
    assert encode_frame(frame) == raw


def test_decoder_gives_the_same_frames_however_the_stream_is_split() -> None:
    """All examples in one stream, cut at every offset, decode to the same frames in order."""
    for cut in range(len(STREAM) + 1):
        decoder = EvaluatorDecoder()
        assert decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) == FRAMES


def test_decoder_fed_one_byte_at_a_time_gives_every_frame() -> None:
    """A stream arriving byte by byte still yields every frame once."""
    decoder = EvaluatorDecoder()
    items = [item for byte in STREAM for item in decoder.feed(bytes([byte]))]
    assert items == FRAMES


def test_payload_bytes_equal_to_stx_and_etx_need_no_stuffing() -> None:
    """E7's request id 00 00 02 03 holds STX and ETX bytes and still decodes as one frame."""
    decoder = EvaluatorDecoder()
    assert decoder.feed(h("02 04 02 02 00 00 02 03 67 83 03")) == [Cancel(seq=2, request_id=515)]


def test_a_flipped_crc_byte_is_a_checksum_error() -> None:
    """E2 with its CRC's low byte changed fails with ChecksumError."""
    with pytest.raises(ChecksumError):
        parse_frame(h("02 02 06 01 01 00 0D 19 03"))


def test_a_frame_without_etx_at_its_end_is_a_frame_error() -> None:
    """E2 with 0x04 where ETX belongs fails with FrameError."""
    with pytest.raises(FrameError):
        parse_frame(h("02 02 06 01 01 00 0D 18 04"))


def test_an_unknown_command_is_a_frame_error() -> None:
    """A command the document does not define fails with FrameError even with a good CRC."""
    with pytest.raises(FrameError, match="unknown command"):
        parse_frame(frame_with(0x09, 1, b""))


@pytest.mark.parametrize("grade", [0, 6, 0xFF])
def test_a_grade_outside_1_to_5_is_a_frame_error(grade: int) -> None:
    """The grade byte is 1..5 (doc §4); anything else makes the frame invalid."""
    with pytest.raises(FrameError, match="grade"):
        parse_frame(frame_with(0x81, 1, h("00 00 30 39") + bytes([grade, 0])))


def test_an_unknown_reason_code_decodes_as_other() -> None:
    """Reason code 9 (a newer checklist) becomes ``other``, so the rating is kept (doc §4)."""
    frame = parse_frame(frame_with(0x81, 1, h("00 00 30 39 02 02 03 09")))
    assert frame == GradePressed(
        seq=1, request_id=12345, grade="dissatisfied", reasons=("complex_process", "other")
    )


def test_a_prompt_with_zero_timeout_is_a_frame_error() -> None:
    """A zero timeout is invalid on the wire (doc §4)."""
    with pytest.raises(FrameError, match="timeout"):
        parse_frame(frame_with(0x01, 1, h("00 00 30 39 00 03 00 00 00 00 00")))


@pytest.mark.parametrize("timeout_s", [0, 601])
def test_the_encoder_refuses_a_timeout_outside_1_to_600(timeout_s: int) -> None:
    """The host sends timeouts of 1–600 s only."""
    prompt = Prompt(
        seq=1,
        request_id=1,
        window_number=1,
        timeout_s=timeout_s,
        staff_name="",
        staff_no="",
        ticket_number="",
    )
    with pytest.raises(EncodeError, match="timeout_s"):
        encode_frame(prompt)


def test_the_encoder_refuses_a_staff_name_over_32_bytes() -> None:
    """17 hanzi are 34 GB18030 bytes, over the staff name's 32."""
    prompt = Prompt(
        seq=1,
        request_id=1,
        window_number=1,
        timeout_s=30,
        staff_name="张" * 17,
        staff_no="1",
        ticket_number="A001",
    )
    with pytest.raises(EncodeError, match="staff_name"):
        encode_frame(prompt)


def test_a_rare_name_character_survives_the_round_trip_in_gb18030() -> None:
    """GB18030 holds every character: 䶮 (2 bytes) and 𠀀 (4 bytes) round-trip unchanged."""
    prompt = Prompt(
        seq=9,
        request_id=7,
        window_number=12,
        timeout_s=600,
        staff_name="刘䶮𠀀",
        staff_no="A-7",
        ticket_number="B105",
    )
    assert parse_frame(encode_frame(prompt)) == prompt


def test_wire_numbers_cover_every_hub_grade_and_reason() -> None:
    """Grade bytes are the hub's GB/T 39735 scores; reason codes follow the hub's catalogue."""
    assert {g: n for n, g in GRADE_BY_WIRE.items()} == GRADE_SCORES
    assert set(GRADE_BY_WIRE.values()) == set(GRADES)
    assert [REASON_BY_WIRE[n] for n in sorted(REASON_BY_WIRE)] == list(REASONS)


def test_status_with_all_buttons_working_reports_buttons_ok() -> None:
    """Buttons 0x1F means no faulty button; 0x1B is the basically_satisfied button broken."""
    assert parse_frame(GOLDEN[11][1]).buttons_ok  # type: ignore[union-attr]
    assert not parse_frame(GOLDEN[12][1]).buttons_ok  # type: ignore[union-attr]


def test_garbage_before_a_frame_is_reported_then_the_frame_decoded() -> None:
    """Line noise before E2 becomes one Garbage item, then E2 decodes."""
    decoder = EvaluatorDecoder()
    assert decoder.feed(b"\xff\x00noise" + GOLDEN[1][1]) == [
        Garbage(skipped=7, code="no_header"),
        FRAMES[1],
    ]


def test_an_intact_frame_with_invalid_fields_is_skipped_whole() -> None:
    """An unknown command with a good CRC is dropped as one bad_frame, and E2 after it decodes."""
    bad = frame_with(0x09, 1, b"\x02\x02\x06")
    decoder = EvaluatorDecoder()
    assert decoder.feed(bad + GOLDEN[1][1]) == [Garbage(len(bad), "bad_frame"), FRAMES[1]]


def test_flush_turns_a_cut_frame_into_garbage_and_keeps_what_follows() -> None:
    """A frame cut short is held until flush(), which reports it as truncated."""
    decoder = EvaluatorDecoder()
    assert decoder.feed(GOLDEN[0][1][:10]) == []
    assert decoder.flush() == [Garbage(10, "truncated")]
    assert decoder.feed(GOLDEN[1][1]) == [FRAMES[1]]


def test_a_false_stx_with_a_long_length_does_not_lose_the_frames_inside_it() -> None:
    """STX, LEN 0xFF: the frames in the next 262 bytes are still found after the check fails."""
    decoder = EvaluatorDecoder()
    items = decoder.feed(b"\x02\xff" + STREAM) + decoder.flush()
    assert [i for i in items if not isinstance(i, Garbage)] == FRAMES


def test_the_decoder_never_buffers_more_than_max_frame() -> None:
    """A length beyond max_frame is garbage (too_long), then the decoder resynchronises."""
    decoder = EvaluatorDecoder(max_frame=20)
    assert decoder.feed(GOLDEN[0][1] + GOLDEN[1][1]) == [Garbage(30, "too_long"), FRAMES[1]]


# --- fuzzing ----------------------------------------------------------------------------------

# At most 4 characters: 16 bytes even when each takes four GB18030 bytes (the ticket limit).
texts = st.text(st.characters(codec="utf-8"), max_size=4)
ascii_texts = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
seqs = st.integers(0, 255)
ids = st.integers(0, 0xFFFFFFFF)
frames = st.one_of(
    st.builds(
        Prompt,
        seq=seqs,
        request_id=ids,
        window_number=st.integers(0, 0xFFFF),
        timeout_s=st.integers(1, 600),
        staff_name=texts,
        staff_no=texts,
        ticket_number=texts,
    ),
    st.builds(Cancel, seq=seqs, request_id=ids),
    st.builds(ShowIdle, seq=seqs, text=texts),
    st.builds(StatusQuery, seq=seqs),
    st.builds(
        Ack,
        seq=seqs,
        command=st.integers(0, 255),
        result=st.sampled_from(["ok", "unknown_request", "unsupported", "bad_payload"]),
    ),
    st.builds(
        GradePressed,
        seq=seqs,
        request_id=ids,
        grade=st.sampled_from(GRADES),
        reasons=st.lists(st.sampled_from(REASONS), max_size=7).map(tuple),
    ),
    st.builds(PromptTimeout, seq=seqs, request_id=ids),
    st.builds(
        PadStatus,
        seq=seqs,
        state=st.sampled_from(["idle", "prompting"]),
        model=ascii_texts,
        firmware=ascii_texts,
        faulty_buttons=st.sets(st.sampled_from(GRADES)).map(
            lambda s: tuple(g for g in GRADES if g in s)
        ),
    ),
    st.builds(Heartbeat, seq=seqs, state=st.sampled_from(["idle", "prompting"])),
)


(
    test_any_frame_survives_encode_then_parse,
    test_random_bytes_make_parse_raise_only_codec_errors,
    test_truncated_or_bit_flipped_frames_raise_codec_errors,
    test_feed_never_raises_on_random_chunks,
    test_after_garbage_the_next_valid_frame_is_decoded,
) = framed_codec_properties(frames, encode_frame, parse_frame, EvaluatorDecoder)
