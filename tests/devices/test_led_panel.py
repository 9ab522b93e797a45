"""The LED window panel line codec and window text against the worked examples of its document.

Golden vectors: docs/devices/led-panel.md §7 (L1–L11), computed from the document's text with a
bitwise CRC-16/MODBUS, not with this codec; the CRC check value is the CRC catalogue's.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.codecs.led_panel import (
    Clear,
    Garbage,
    LedDecoder,
    LedFrame,
    PanelReply,
    PanelStatus,
    QueryStatus,
    SetBrightness,
    SetHeader,
    ShowText,
    display_width,
    encode_frame,
    encode_gb2312,
    gb2312_safe,
    parse_frame,
    render_window_lines,
)
from devices.codecs.wire import crc16_modbus
from devices.errors import ChecksumError, EncodeError, FrameError
from tests.devices.codec_checks import FUZZ, framed_codec_properties, h

# Source of every vector: docs/devices/led-panel.md, §7 "Worked examples" (row named).
GOLDEN: list[tuple[str, bytes, LedFrame]] = [
    (
        "L1",
        h(
            "AA 55 03 01 2F 04 07 33 BA C5 B4 B0 BF DA 0D D5 FD D4 DA B0 EC C0 ED 20 41 30 31 32"
            " 0D D5 C5 C8 FD 20 B9 A4 BA C5 31 30 32 34 09 B5 C8 BA F2 20 35 20 C8 CB E5 0D"
        ),
        ShowText(address=3, lines=("3号窗口", "正在办理 A012", "张三 工号1024", "等候 5 人")),
    ),
    ("L2", h("AA 55 03 81 01 00 51 D8"), PanelReply(address=3, command=0x01, result="ok")),
    ("L3", h("AA 55 00 02 01 08 A1 B2"), SetBrightness(address=0, level=8)),
    ("L4", h("AA 55 03 03 00 81 30"), Clear(address=3)),
    ("L5", h("AA 55 03 83 01 00 F0 18"), PanelReply(address=3, command=0x03, result="ok")),
    ("L6", h("AA 55 03 04 00 83 00"), QueryStatus(address=3)),
    (
        "L7",
        h("AA 55 03 84 15 00 03 10 08 0A 48 48 2D 4C 45 44 34 38 31 36 05 32 2E 31 2E 30 0F 8E"),
        PanelStatus(
            address=3, rows=3, columns=16, brightness=8, model="HH-LED4816", firmware="2.1.0"
        ),
    ),
    (
        "L8",
        h("AA 55 03 05 0B 00 03 08 D7 DB BA CF CA DC C0 ED D1 41"),
        SetHeader(address=3, window_number=3, window_name="综合受理"),
    ),
    ("L9", h("AA 55 03 85 01 00 10 19"), PanelReply(address=3, command=0x05, result="ok")),
    (
        "L10",
        h("AA 55 0C 89 01 01 12 CE"),
        PanelReply(address=12, command=0x09, result="unsupported"),
    ),
    ("L11", h("AA 55 03 81 01 03 11 D9"), PanelReply(address=3, command=0x01, result="truncated")),
]
IDS = [name for name, _, _ in GOLDEN]
STREAM = b"".join(raw for _, raw, _ in GOLDEN)
FRAMES = [frame for _, _, frame in GOLDEN]


def frame_with(address: int, cmd: int, payload: bytes) -> bytes:
    """A frame with a correct CRC around any payload, for the invalid-field cases."""
    body = bytes([address, cmd, len(payload)]) + payload
    crc = crc16_modbus(body)
    return b"\xaa\x55" + body + bytes([crc & 0xFF, crc >> 8])


def test_crc16_modbus_check_value_is_the_catalogues_0x4b37() -> None:
    """CRC-16/MODBUS of ASCII "123456789" is 0x4B37 (Greg Cook's CRC catalogue, doc §2)."""
    assert crc16_modbus(b"123456789") == 0x4B37


def test_crc16_modbus_can_continue_from_a_previous_value() -> None:
    """Computing the CRC in two parts gives the one-part value."""
    assert crc16_modbus(b"6789", crc16_modbus(b"12345")) == 0x4B37


@pytest.mark.parametrize(("name", "raw", "frame"), GOLDEN, ids=IDS)
def test_each_doc_example_parses_to_its_frame(name: str, raw: bytes, frame: LedFrame) -> None:
    """Every worked example of the document decodes to the frame its row describes."""
    assert parse_frame(raw) == frame


@pytest.mark.parametrize(("name", "raw", "frame"), GOLDEN, ids=IDS)
def test_each_doc_example_is_what_its_frame_encodes_to(
    name: str, raw: bytes, frame: LedFrame
) -> None:
    """Encoding the frame a row describes gives the document's bytes exactly."""
    assert encode_frame(frame) == raw


def test_decoder_gives_the_same_frames_however_the_stream_is_split() -> None:
    """All examples in one stream, cut at every offset, decode to the same frames in order."""
    for cut in range(len(STREAM) + 1):
        decoder = LedDecoder()
        assert decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) == FRAMES


def test_decoder_fed_one_byte_at_a_time_gives_every_frame() -> None:
    """A stream arriving byte by byte, header halves apart, still yields every frame once."""
    decoder = LedDecoder()
    assert [item for byte in STREAM for item in decoder.feed(bytes([byte]))] == FRAMES


def test_render_window_lines_gives_the_doc_example_lines() -> None:
    """Window 3 calling A012 with 张三 (1024) and 5 waiting renders the doc's four lines."""
    lines = render_window_lines(3, "综合受理", "A012", "张三", "1024", 5, 16)
    assert lines == ("3号窗口 综合受理", "正在办理 A012", "张三 工号1024", "等候 5 人")


def test_the_rendered_lines_of_a_window_without_a_name_are_l1s_text() -> None:
    """SHOW_TEXT of render_window_lines' four lines (no window name) is L1, byte for byte."""
    lines = render_window_lines(3, "", "A012", "张三", "1024", 5, 16)
    assert encode_frame(ShowText(address=3, lines=lines)) == GOLDEN[0][1]


def test_narrow_panels_get_the_shorter_forms() -> None:
    """At 10 cells each line falls back to its first form that fits (doc §6)."""
    lines = render_window_lines(3, "综合受理", "A012", "张三", "1024", 5, 10)
    assert lines == ("3号窗口", "办理 A012", "张三 1024", "等候 5 人")


def test_a_window_without_a_call_or_staff_shows_waiting_for_a_call() -> None:
    """No ticket being served reads 等待叫号; no staff leaves the staff line empty."""
    lines = render_window_lines(12, "", None, None, None, 0, 16)
    assert lines == ("12号窗口", "等待叫号", "", "等候 0 人")


def test_a_line_too_wide_in_every_form_is_cut_on_a_character_boundary() -> None:
    """A 5-cell panel never gets half a hanzi: 正在办理… becomes A012's first 5 cells."""
    lines = render_window_lines(3, "综合受理", "A012-XYZ", "张三", "1024", 12345, 5)
    assert lines == ("3号窗", "A012-", "张三", "12345")
    assert all(display_width(line) <= 5 for line in lines)


def test_characters_outside_gb2312_become_a_box_before_rendering() -> None:
    """镕 is not in GB2312 (no glyph in the panels' font): it is shown as □."""
    lines = render_window_lines(1, "", "A001", "朱镕基", "7", 1, 16)
    assert lines[2] == "朱□基 工号7"
    assert encode_gb2312(lines[2]) == h("D6 EC A1 F5 BB F9 20 B9 A4 BA C5 37")


def test_the_encoder_refuses_a_character_outside_gb2312() -> None:
    """SHOW_TEXT with 镕 (GBK, not GB2312) raises EncodeError naming the character."""
    with pytest.raises(EncodeError, match="U\\+9555"):
        encode_frame(ShowText(address=1, lines=("朱镕基",)))


def test_the_middle_dot_of_minority_names_is_gb2312_a1a4() -> None:
    """U+00B7 · is GB2312 A1 A4 and decodes back to U+00B7 (GB 18030 mapping)."""
    assert encode_gb2312("阿依·买买提")[4:6] == h("A1 A4")
    assert gb2312_safe("阿依·买买提") == "阿依·买买提"
    frame = ShowText(address=2, lines=("阿依·买买提",))
    assert parse_frame(encode_frame(frame)) == frame


def test_a_broadcast_status_query_is_refused() -> None:
    """Nobody answers a broadcast, so QUERY_STATUS to address 0 cannot be encoded."""
    with pytest.raises(EncodeError, match="broadcast"):
        encode_frame(QueryStatus(address=0))


@pytest.mark.parametrize("address", [-1, 248, 255])
def test_addresses_outside_0_to_247_are_refused(address: int) -> None:
    """Addresses 248–255 are reserved (Modbus serial line §2.2)."""
    with pytest.raises(EncodeError, match="address"):
        encode_frame(Clear(address=address))
    if address >= 0:
        with pytest.raises(FrameError, match="reserved"):
            parse_frame(frame_with(address, 0x03, b""))


def test_more_than_eight_lines_are_refused_both_ways() -> None:
    """SHOW_TEXT carries 1–8 lines."""
    with pytest.raises(EncodeError, match="lines"):
        encode_frame(ShowText(address=1, lines=("a",) * 9))
    with pytest.raises(FrameError, match="lines"):
        parse_frame(frame_with(1, 0x01, bytes([9]) + b"\x01a" * 9))


def test_a_flipped_crc_byte_is_a_checksum_error() -> None:
    """L4 with its CRC's high byte changed fails with ChecksumError."""
    with pytest.raises(ChecksumError):
        parse_frame(h("AA 55 03 03 00 81 31"))


def test_text_bytes_outside_gb2312_are_a_frame_error() -> None:
    """A GBK-only pair (E9 55, 镕) in a line makes the frame invalid."""
    with pytest.raises(FrameError, match="GB2312"):
        parse_frame(frame_with(1, 0x01, h("01 02 E9 55")))


def test_an_intact_frame_with_invalid_fields_is_skipped_whole() -> None:
    """Brightness 16 with a good CRC is one bad_frame; the L4 after it decodes."""
    bad = frame_with(1, 0x02, b"\x10")
    decoder = LedDecoder()
    assert decoder.feed(bad + GOLDEN[3][1]) == [Garbage(len(bad), "bad_frame"), FRAMES[3]]


def test_flush_turns_a_cut_reply_into_garbage() -> None:
    """A reply cut short (the panel lost power) is reported by flush() as truncated."""
    decoder = LedDecoder()
    assert decoder.feed(GOLDEN[6][1][:9]) == []
    assert decoder.flush() == [Garbage(9, "truncated")]
    assert decoder.feed(GOLDEN[1][1]) == [FRAMES[1]]


def test_a_false_header_with_a_long_length_does_not_lose_the_frames_inside_it() -> None:
    """AA 55 .. LEN FF: the real frames within the next 262 bytes are found after its CRC fails."""
    decoder = LedDecoder()
    items = decoder.feed(h("AA 55 01 01 FF") + STREAM) + decoder.flush()
    assert [i for i in items if not isinstance(i, Garbage)] == FRAMES


# --- fuzzing ----------------------------------------------------------------------------------

gb2312_chars = st.sampled_from("号窗口正在办理张三工号等候人综合受理·□")
line_texts = st.text(
    st.one_of(st.characters(min_codepoint=0x20, max_codepoint=0x7E), gb2312_chars), max_size=12
)
addresses = st.integers(1, 247)
frames = st.one_of(
    st.builds(
        ShowText,
        address=st.integers(0, 247),
        lines=st.lists(line_texts, min_size=1, max_size=8).map(tuple),
    ),
    st.builds(SetBrightness, address=st.integers(0, 247), level=st.integers(0, 15)),
    st.builds(Clear, address=st.integers(0, 247)),
    st.builds(QueryStatus, address=addresses),
    st.builds(
        SetHeader, address=addresses, window_number=st.integers(0, 0xFFFF), window_name=line_texts
    ),
    st.builds(
        PanelReply,
        address=addresses,
        command=st.sampled_from([1, 2, 3, 5, 9, 0x7F]),
        result=st.sampled_from(["ok", "unsupported", "bad_payload", "truncated"]),
    ),
    st.builds(
        PanelStatus,
        address=addresses,
        rows=st.integers(0, 255),
        columns=st.integers(0, 255),
        brightness=st.integers(0, 15),
        model=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=32),
        firmware=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=32),
    ),
)


(
    test_any_frame_survives_encode_then_parse,
    test_random_bytes_make_parse_raise_only_codec_errors,
    test_truncated_or_bit_flipped_frames_raise_codec_errors,
    test_feed_never_raises_on_random_chunks,
    test_after_garbage_the_next_valid_frame_is_decoded,
) = framed_codec_properties(frames, encode_frame, parse_frame, LedDecoder)


@FUZZ
@given(
    number=st.integers(1, 999),
    name=st.text(max_size=10),
    serving=st.none() | st.text(max_size=8),
    staff=st.none() | st.text(max_size=6),
    staff_no=st.none() | st.text(max_size=6),
    waiting=st.integers(0, 100_000),
    width=st.integers(2, 64),
)
def test_rendered_lines_always_fit_and_always_encode(
    number: int,
    name: str,
    serving: str | None,
    staff: str | None,
    staff_no: str | None,
    waiting: int,
    width: int,
) -> None:
    """Whatever the state, every rendered line fits the width and encodes in GB2312."""
    lines = render_window_lines(number, name, serving, staff, staff_no, waiting, width)
    assert len(lines) == 4
    for line in lines:
        assert display_width(line) <= width
        assert len(encode_gb2312(line)) == display_width(line)
