"""The ESC/POS codec (devices.codecs.escpos): golden vectors from the printer references
(docs/devices/printer.md §7 names each source), the ticket layout, split feeding and fuzzing."""

from __future__ import annotations

import contextlib

import msgspec
import pytest
import segno
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.codecs.escpos import (
    ASB_DEFAULT,
    ASB_ERROR,
    CUT,
    QR_CAPACITY,
    AsbStatus,
    ErrorCause,
    Garbage,
    OfflineCause,
    PaperSensor,
    PrintedTicket,
    PrinterInfo,
    PrinterReply,
    PrinterReplyDecoder,
    PrinterStatus,
    encode_asb,
    encode_qr,
    encode_status_request,
    encode_text,
    encode_ticket,
    parse_asb,
    parse_status,
    status_from_asb,
    status_from_replies,
)
from devices.errors import CodecError, EncodeError, FrameError

H = bytes.fromhex
TICKET = PrintedTicket(
    hall_name="北京市政务服务中心",
    number="A001",
    group_name="社保业务",
    people_ahead=3,
    issued_at="2026-11-26 09:30",
    qr_url="https://hall.example.cn/t/Zk3q9",
)

# Cashino CSN-80V user manual p. 55, QR example (size 3, level L, store "ABC", print), with the
# model 2 select of the Citizen CT-S280 manual (GS ( k fn 165, n1 = 50, n2 = 0) in front.
QR_ABC = H(
    "1d 28 6b 04 00 31 41 32 00"
    "1d 28 6b 03 00 31 43 03"
    "1d 28 6b 03 00 31 45 30"
    "1d 28 6b 06 00 31 50 30 41 42 43"
    "1d 28 6b 03 00 31 51 30"
)


# DLE EOT replies: fixed bits 0x12 (bit 1 and bit 4 on) plus the status bits of the Epson
# ESC/POS Command Reference DLE EOT tables (TM-L60II Ver. 4.0 p. 1217 for n = 2, TM-T88III
# Ver. 10.01 p. 304 for n = 4; n = 1 and 3 as in Citizen CT-S2000 §DLE EOT); the three n = 4
# values 18, 30, 114 are python-escpos constants.py RT_MASK_PAPER / _LOWPAPER / _NOPAPER.
def _info(**changes: bool) -> PrinterInfo:
    fields = dict.fromkeys(PrinterInfo.__struct_fields__, False)
    return PrinterInfo(**{**fields, **changes})


def _cause(**changes: bool) -> OfflineCause:
    return OfflineCause(**{**dict.fromkeys(OfflineCause.__struct_fields__, False), **changes})


def _error(**changes: bool) -> ErrorCause:
    return ErrorCause(**{**dict.fromkeys(ErrorCause.__struct_fields__, False), **changes})


OK1 = _info()
REPLIES: list[tuple[int, int, PrinterReply]] = [
    (1, 0x12, OK1),
    (1, 0x1A, _info(offline=True)),
    (1, 0x16, _info(drawer_pin3_high=True)),
    (1, 0x32, _info(waiting_online_recovery=True)),
    (1, 0x52, _info(feed_button_pressed=True)),
    (2, 0x12, _cause()),
    (2, 0x16, _cause(cover_open=True)),
    (2, 0x1A, _cause(feeding_by_button=True)),
    (2, 0x32, _cause(paper_end_stop=True)),
    (2, 0x52, _cause(error=True)),
    (3, 0x12, _error()),
    (3, 0x1A, _error(autocutter_error=True)),
    (3, 0x32, _error(unrecoverable_error=True)),
    (3, 0x52, _error(auto_recoverable_error=True)),
    (4, 18, PaperSensor(near_end=False, paper_end=False)),
    (4, 30, PaperSensor(near_end=True, paper_end=False)),
    (4, 114, PaperSensor(near_end=False, paper_end=True)),
    (4, 0x7E, PaperSensor(near_end=True, paper_end=True)),
]


# ASB blocks: Epson GS a tables (TM-L60II Ver. 4.0 pp. 1234-1236, TM-U220A second byte):
# byte 1 bit 4 fixed on, bit 3 offline, bit 5 cover open; byte 2 bit 3 autocutter error;
# byte 3 bits 0,1 near end, bits 2,3 paper end.
def _asb(**changes: bool) -> AsbStatus:
    return AsbStatus(**{**dict.fromkeys(AsbStatus.__struct_fields__, False), **changes})


_ASB_OK = _asb()


ASBS: list[tuple[str, AsbStatus]] = [
    ("10 00 00 00", _ASB_OK),
    ("10 00 03 00", _asb(near_end=True)),
    ("18 00 0f 00", _asb(offline=True, near_end=True, paper_end=True)),
    ("38 00 00 00", _asb(offline=True, cover_open=True)),
    ("18 08 00 00", _asb(offline=True, autocutter_error=True)),
    ("14 00 00 00", _asb(drawer_pin3_high=True)),
    ("50 00 00 00", _asb(feed_button_pressed=True)),
    ("18 20 00 00", _asb(offline=True, unrecoverable_error=True)),
    ("10 40 00 00", _asb(auto_recoverable_error=True)),
]


def _ticket(**changes: object) -> PrintedTicket:
    return msgspec.structs.replace(TICKET, **changes)


def _valid(items: list[PrinterReply]) -> list[PrinterReply]:
    return [item for item in items if not isinstance(item, Garbage)]


def _skipped(items: list[PrinterReply]) -> int:
    return sum(item.skipped for item in items if isinstance(item, Garbage))


# ---- requests ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "wire"), [(1, "10 04 01"), (2, "10 04 02"), (4, "10 04 04")])
def test_dle_eot_requests_match_the_epson_reference(n: int, wire: str) -> None:
    """DLE EOT n is 10 04 n (Epson DLE EOT: "Transmit real-time status")."""
    assert encode_status_request(n) == H(wire)


@pytest.mark.parametrize("n", [0, 5, 18, -1])
def test_dle_eot_with_an_unknown_n_is_refused(n: int) -> None:
    """Only n = 1..4 can be requested."""
    with pytest.raises(EncodeError):
        encode_status_request(n)


def test_gs_a_enables_the_asb_items() -> None:
    """GS a 4 is Epson's program example (enable error status); the hub's default is 0E."""
    assert encode_asb(ASB_ERROR) == H("1d 61 04")  # Epson GS a, TM-L60II p. 1236 example
    assert encode_asb() == encode_asb(ASB_DEFAULT) == H("1d 61 0e")
    assert encode_asb(0) == H("1d 61 00")
    with pytest.raises(EncodeError):
        encode_asb(256)


def test_cut_is_epsons_feed_and_partial_cut_example() -> None:
    """The cut is GS V 66 0 (Epson GS V program example CHR$(&H1D);"V";CHR$(66);CHR$(0))."""
    assert H("1d 56 42 00") == CUT


# ---- QR code -------------------------------------------------------------------------------


def test_qr_code_of_abc_matches_the_manual_example() -> None:
    """Model 2, module 3, level L, store "ABC", print: the Cashino CSN-80V example bytes."""
    assert encode_qr("ABC", module=3, error="L") == QR_ABC


def test_qr_store_length_counts_the_three_parameter_bytes() -> None:
    """Function 180's pL pH is k + 3, little-endian (range 4..7092 in the references)."""
    data = "A" * 300
    qr = encode_qr(data, module=6, error="M")
    assert H("1d 28 6b 2f 01 31 50 30") + data.encode() in qr  # 303 = 0x012F


@pytest.mark.parametrize("level", ["L", "M", "Q", "H"])
def test_qr_payload_over_the_model_2_limit_is_refused(level: str) -> None:
    """Version 40 holds 2953/2331/1663/1273 bytes at L/M/Q/H; one byte more is refused."""
    capacity = QR_CAPACITY[level]
    assert encode_qr("a" * capacity, error=level)  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        encode_qr("a" * (capacity + 1), error=level)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", ["L", "M", "Q", "H"])
def test_qr_capacity_agrees_with_segno(level: str) -> None:
    """segno (ISO/IEC 18004) fits the capacity in version 40 and overflows one byte beyond."""
    capacity = QR_CAPACITY[level]
    assert segno.make(b"a" * capacity, error=level, mode="byte", boost_error=False).version == 40
    with pytest.raises(segno.DataOverflowError):
        segno.make(b"a" * (capacity + 1), error=level, mode="byte", boost_error=False)


@pytest.mark.parametrize("data", ["", "https://例子.cn/t/1", "a\nb", "\x10\x04\x01"])
def test_qr_data_must_be_printable_ascii(data: str) -> None:
    """Empty, non-ASCII or control-character QR data is refused."""
    with pytest.raises(EncodeError):
        encode_qr(data)


def test_qr_module_size_and_level_are_checked() -> None:
    """Module size is 1..16 dots (function 167), the level one of L, M, Q, H."""
    with pytest.raises(EncodeError):
        encode_qr("x", module=0)
    with pytest.raises(EncodeError):
        encode_qr("x", module=17)
    with pytest.raises(EncodeError):
        encode_qr("x", error="X")  # type: ignore[arg-type]


# ---- text ----------------------------------------------------------------------------------


def test_chinese_text_is_gb18030() -> None:
    """中文 and 号 are their GB 2312 codes; U+10000 is GB18030's first four-byte code."""
    assert encode_text("中文") == H("d6 d0 ce c4")  # GB 2312 code table
    assert encode_text("号") == H("ba c5")
    assert encode_text("A001") == b"A001"
    assert encode_text("\U00010000") == H("90 30 81 30")  # GB 18030-2005, supplementary planes


def test_text_that_gb18030_cannot_encode_is_refused() -> None:
    """A lone surrogate has no GB18030 code."""
    with pytest.raises(EncodeError):
        encode_text("窗口\ud800")


@pytest.mark.parametrize("text", ["\x10\x04\x01", "\x1b@", "a\nb", "tab\there", "\x7f", "\x9b"])
def test_control_characters_in_text_are_refused(text: str) -> None:
    """Text cannot carry command bytes into the stream (C0, DEL, C1)."""
    with pytest.raises(EncodeError):
        encode_text(text)


# ---- ticket --------------------------------------------------------------------------------


def test_ticket_starts_with_init_and_chinese_mode_centred_and_ends_with_the_cut() -> None:
    """ESC @, FS &, ESC a 1 first; GS V 66 0 last."""
    wire = encode_ticket(TICKET)
    assert wire.startswith(H("1b 40 1c 26 1b 61 01"))
    assert wire.endswith(H("1d 56 42 00"))


def test_ticket_carries_the_qr_code_of_the_citizen_page() -> None:
    """The five GS ( k commands for qr_url (module 6, level M) are in the ticket."""
    wire = encode_ticket(TICKET)
    url = TICKET.qr_url.encode()
    assert (
        H("1d 28 6b 04 00 31 41 32 00 1d 28 6b 03 00 31 43 06 1d 28 6b 03 00 31 45 31")
        + H("1d 28 6b") + (len(url) + 3).to_bytes(2, "little") + H("31 50 30") + url
        + H("1d 28 6b 03 00 31 51 30")
    ) in wire  # fmt: skip


def test_ticket_prints_the_number_bold_at_four_times_size() -> None:
    """ESC E 1, GS ! 33, the number, LF, then back to normal size and weight."""
    assert H("1b 45 01 1d 21 33") + b"A001\n" + H("1d 21 00 1b 45 00") in encode_ticket(TICKET)


def test_ticket_chinese_fields_are_gb18030_lines() -> None:
    """Hall name, group, people ahead and time are GB18030 lines ending in LF."""
    wire = encode_ticket(TICKET)
    assert H("1d 21 01") + "北京市政务服务中心".encode("gb18030") + b"\n" in wire
    assert "社保业务".encode("gb18030") + b"\n" in wire
    assert "前面还有 3 人等候\n".encode("gb18030") in wire
    assert "取号时间 2026-11-26 09:30\n".encode("gb18030") in wire


def test_ticket_header_and_footer_are_printed() -> None:
    """The configured header comes first, the footer lines last before the cut."""
    wire = encode_ticket(_ticket(header="欢迎光临", footer=["请保管好号票", "过号请重新取号"]))
    assert wire.startswith(H("1b 40 1c 26 1b 61 01") + "欢迎光临\n".encode("gb18030"))
    assert wire.endswith("请保管好号票\n过号请重新取号\n".encode("gb18030") + CUT)


def test_ticket_number_shrinks_to_fit_the_paper_width() -> None:
    """On 16 columns a 5-character number prints three times wide (GS ! 22), not four."""
    assert H("1d 21 22") + b"A0001\n" in encode_ticket(_ticket(number="A0001"), width_chars=16)


def test_long_lines_wrap_at_the_paper_width_between_characters() -> None:
    """Ten Chinese characters (20 columns) on 16 columns make lines of 8 and 2 characters."""
    wire = encode_ticket(_ticket(footer=["一二三四五六七八九十"]), width_chars=16)
    assert "一二三四五六七八\n九十\n".encode("gb18030") in wire


@pytest.mark.parametrize(
    "changes",
    [
        {"group_name": "社保\x1b@"},
        {"hall_name": "大厅\x10\x04\x04"},
        {"footer": ["ok", "bad\n"]},
        {"header": "\ud800"},
        {"number": ""},
        {"number": "A" * 43},
        {"people_ahead": -1},
        {"qr_url": "https://hall.example.cn/" + "x" * 2400},
        {"qr_url": ""},
    ],
)
def test_a_ticket_that_cannot_be_printed_is_refused(changes: dict[str, object]) -> None:
    """Control characters, unencodable text, an empty or too wide number, a negative count or
    a bad QR URL raise EncodeError."""
    with pytest.raises(EncodeError):
        encode_ticket(_ticket(**changes))


@pytest.mark.parametrize("width", [15, 97])
def test_ticket_width_is_checked(width: int) -> None:
    """width_chars is 16..96."""
    with pytest.raises(EncodeError):
        encode_ticket(TICKET, width_chars=width)


@settings(max_examples=300)
@given(
    text=st.text(max_size=60),
    number=st.text(max_size=8),
    ahead=st.integers(-5, 10_000),
    url=st.text(max_size=80),
    width=st.integers(0, 120),
)
def test_ticket_encoder_raises_nothing_but_encode_error(
    text: str, number: str, ahead: int, url: str, width: int
) -> None:
    """Any field values either encode or raise EncodeError."""
    t = PrintedTicket(
        hall_name=text, number=number, group_name=text, people_ahead=ahead,
        issued_at=text, qr_url=url, header=text, footer=[text],
    )  # fmt: skip
    with contextlib.suppress(EncodeError):
        encode_ticket(t, width_chars=width)


# ---- status replies ------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "byte", "expected"), REPLIES)
def test_dle_eot_replies_decode_per_the_epson_tables(
    n: int, byte: int, expected: PrinterReply
) -> None:
    """Each golden reply byte decodes to its table meaning."""
    assert parse_status(n, byte) == expected


@pytest.mark.parametrize("byte", [0x00, 0x02, 0x10, 0x13, 0x92, 0x11, 0x1F])
def test_bytes_breaking_the_fixed_bits_are_not_dle_eot_replies(byte: int) -> None:
    """Bit 1 and bit 4 must be on, bits 0 and 7 off, whatever n."""
    for n in (1, 2, 3, 4):
        with pytest.raises(FrameError):
            parse_status(n, byte)


@pytest.mark.parametrize(("n", "byte"), [(0, 0x12), (5, 0x12), (1, -1), (1, 0x112)])
def test_a_reply_for_an_unknown_n_or_out_of_range_is_refused(n: int, byte: int) -> None:
    """n must be 1..4 and the byte 0..255."""
    with pytest.raises(FrameError):
        parse_status(n, byte)


@pytest.mark.parametrize(("wire", "expected"), ASBS)
def test_asb_blocks_decode_per_the_epson_tables(wire: str, expected: AsbStatus) -> None:
    """Each golden ASB block decodes to its table meaning."""
    assert parse_asb(H(wire)) == expected


@pytest.mark.parametrize(
    "wire", ["10 10 00 00", "10 00 80 00", "10 00 00 10", "12 00 00 00", "90 00 00 00", "11"]
)
def test_asb_with_wrong_fixed_bits_or_length_is_refused(wire: str) -> None:
    """Byte 1 must be 0**1**00 and bytes 2..4 0**0****, and a block is 4 bytes."""
    with pytest.raises(FrameError):
        parse_asb(H(wire))


def test_an_empty_printer_merges_to_offline_and_paper_out() -> None:
    """Replies 1A, 32, 7E to DLE EOT 1, 2, 4 mean offline, paper out, no error."""
    status = status_from_replies(
        parse_status(1, 0x1A), parse_status(2, 0x32), parse_status(4, 0x7E)
    )
    assert status == PrinterStatus(online=False, cover_open=False, paper="out", error=False)


def test_paper_end_stop_alone_means_paper_out() -> None:
    """n = 2 bit 5 (printing stopped by paper end) is out even if n = 4 says nothing."""
    status = status_from_replies(
        parse_status(1, 0x1A), parse_status(2, 0x32), parse_status(4, 0x12)
    )
    assert status.paper == "out"


def test_near_end_cover_open_and_error_merge() -> None:
    """Near end is low paper; n = 2 bits 2 and 6 are cover open and error."""
    status = status_from_replies(
        parse_status(1, 0x12), parse_status(2, 0x56), parse_status(4, 0x1E)
    )
    assert status == PrinterStatus(online=True, cover_open=True, paper="low", error=True)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("10 00 00 00", PrinterStatus(online=True, cover_open=False, paper="ok", error=False)),
        ("10 00 03 00", PrinterStatus(online=True, cover_open=False, paper="low", error=False)),
        ("18 00 0f 00", PrinterStatus(online=False, cover_open=False, paper="out", error=False)),
        ("38 00 00 00", PrinterStatus(online=False, cover_open=True, paper="ok", error=False)),
        ("18 08 00 00", PrinterStatus(online=False, cover_open=False, paper="ok", error=True)),
    ],
)
def test_asb_merges_to_the_printer_status(wire: str, expected: PrinterStatus) -> None:
    """An ASB block gives the same PrinterStatus as the equivalent DLE EOT replies."""
    assert status_from_asb(parse_asb(H(wire))) == expected


# ---- stream decoder ------------------------------------------------------------------------

STREAM = H("10 00 03 00 12 13 7e")  # docs/devices/printer.md §7 "A reply stream"
STREAM_ITEMS: list[PrinterReply] = [
    _asb(near_end=True),
    OK1,
    PaperSensor(near_end=True, paper_end=True),
]


def _decoder(*expected: int) -> PrinterReplyDecoder:
    decoder = PrinterReplyDecoder()
    for n in expected:
        decoder.expect(n)
    return decoder


def test_reply_stream_decodes_asb_and_expected_replies_in_order() -> None:
    """An ASB block, then the replies to DLE EOT 1 and 4; XOFF dropped."""
    assert _decoder(1, 4).feed(STREAM) == STREAM_ITEMS


def test_reply_stream_split_at_every_offset_gives_the_same_items() -> None:
    """Feeding in two pieces, at any split, decodes the same."""
    for cut in range(len(STREAM) + 1):
        decoder = _decoder(1, 4)
        assert decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) == STREAM_ITEMS


def test_reply_stream_fed_byte_by_byte_gives_the_same_items() -> None:
    """One byte at a time decodes the same."""
    decoder = _decoder(1, 4)
    assert [item for b in STREAM for item in decoder.feed(bytes((b,)))] == STREAM_ITEMS


def test_xoff_inside_an_asb_block_is_dropped() -> None:
    """The 4 ASB bytes are contiguous except for XOFF (Epson GS a notes)."""
    assert _decoder().feed(H("18 13 00 0f 11 00")) == [
        _asb(offline=True, near_end=True, paper_end=True)
    ]


def test_a_reply_byte_nobody_asked_for_is_garbage() -> None:
    """Without expect(n) a DLE EOT reply cannot be decoded."""
    assert _decoder().feed(H("12 12")) == [Garbage(2, "unexpected_reply")]


def test_decoder_starting_inside_an_asb_block_resynchronises() -> None:
    """Bytes 2..4 of a block fit no start pattern: skipped, then the next block decodes."""
    assert _decoder().feed(H("00 03 00 10 00 00 00")) == [Garbage(3, "bad_byte"), _ASB_OK]


def test_a_reply_right_behind_a_stray_asb_start_is_not_held_back() -> None:
    """A byte shaped like an ASB start followed by a reply: the reply decodes at once."""
    assert _decoder(4).feed(H("14 7e")) == [
        Garbage(1, "bad_asb"),
        PaperSensor(near_end=True, paper_end=True),
    ]


def test_asb_with_a_bad_byte_skips_only_its_first_byte() -> None:
    """A block whose byte 2 breaks the pattern costs one byte; the following block decodes."""
    assert _decoder().feed(H("10 80 00 00 10 00 00 00")) == [
        Garbage(1, "bad_asb"),
        Garbage(3, "bad_byte"),
        _ASB_OK,
    ]


def test_expect_refuses_an_unknown_n() -> None:
    """Only DLE EOT 1..4 can be awaited."""
    with pytest.raises(EncodeError):
        PrinterReplyDecoder().expect(5)


def test_reset_forgets_pending_requests_and_buffered_bytes() -> None:
    """After reset a late reply is garbage and a half ASB block is gone."""
    decoder = _decoder(1)
    assert decoder.feed(H("10 00")) == []
    decoder.reset()
    assert decoder.pending == ()
    assert decoder.feed(H("12")) == [Garbage(1, "unexpected_reply")]


def test_too_many_pending_requests_forget_the_oldest() -> None:
    """Beyond max_pending the oldest request is dropped."""
    decoder = PrinterReplyDecoder(max_pending=2)
    for n in (1, 2, 4):
        decoder.expect(n)
    assert decoder.pending == (2, 4)
    assert decoder.feed(H("16")) == [parse_status(2, 0x16)]


@settings(max_examples=500)
@given(n=st.integers(-2, 8), byte=st.integers(-2, 300))
def test_parse_status_raises_only_codec_errors(n: int, byte: int) -> None:
    """Any n and byte either parse or raise a CodecError."""
    with contextlib.suppress(CodecError):
        parse_status(n, byte)


@settings(max_examples=500)
@given(st.binary(max_size=8))
def test_parse_asb_raises_only_codec_errors(frame: bytes) -> None:
    """Random bytes either parse as an ASB block or raise a CodecError."""
    with contextlib.suppress(CodecError):
        parse_asb(frame)


@settings(max_examples=300)
@given(st.sampled_from(ASBS), st.integers(0, 31))
def test_bit_flipped_asb_blocks_raise_only_codec_errors(
    case: tuple[str, AsbStatus], bit: int
) -> None:
    """A golden block with one bit flipped parses or raises a CodecError, never more."""
    frame = bytearray(H(case[0]))
    frame[bit // 8] ^= 1 << bit % 8
    with contextlib.suppress(CodecError):
        parse_asb(bytes(frame))


@settings(max_examples=500)
@given(
    chunks=st.lists(st.binary(max_size=12), max_size=8),
    expects=st.lists(st.sampled_from([1, 2, 3, 4]), max_size=6),
)
def test_feed_never_raises_and_buffers_less_than_a_block(
    chunks: list[bytes], expects: list[int]
) -> None:
    """Random bytes never make feed raise; at most 3 bytes stay buffered."""
    decoder = _decoder(*expects)
    for chunk in chunks:
        decoder.feed(chunk)
        assert len(decoder._buf) < 4


@settings(max_examples=300)
@given(garbage=st.binary(max_size=20), cut=st.integers(0, 40))
def test_after_garbage_an_asb_block_is_decoded(garbage: bytes, cut: int) -> None:
    """Whatever precedes it, a valid ASB block is decoded (resynchronisation)."""
    wire = garbage + H("18 00 0f 00")
    decoder = _decoder()
    items = decoder.feed(wire[:cut]) + decoder.feed(wire[cut:])
    assert items[-1] == _asb(offline=True, near_end=True, paper_end=True)


@settings(max_examples=300)
@given(garbage=st.binary(max_size=20).filter(lambda g: not any(b & 0x93 == 0x12 for b in g)))
def test_after_garbage_an_expected_reply_is_decoded(garbage: bytes) -> None:
    """Garbage without reply-shaped bytes does not use up the pending request."""
    decoder = _decoder(4)
    items = decoder.feed(garbage + H("7e"))
    assert _valid(items)[-1] == PaperSensor(near_end=True, paper_end=True)


@settings(max_examples=300)
@given(
    wire=st.binary(max_size=24),
    expects=st.lists(st.sampled_from([1, 2, 3, 4]), max_size=6),
    cut=st.integers(0, 24),
)
def test_split_feeding_never_changes_what_is_decoded(
    wire: bytes, expects: list[int], cut: int
) -> None:
    """Any stream split anywhere decodes to the same replies and skips as many bytes."""
    whole = _decoder(*expects).feed(wire)
    split_decoder = _decoder(*expects)
    split = split_decoder.feed(wire[:cut]) + split_decoder.feed(wire[cut:])
    assert _valid(split) == _valid(whole)
    assert _skipped(split) == _skipped(whole)
