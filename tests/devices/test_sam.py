"""SAM frame codec (devices/codecs/sam.py) and card text (devices/codecs/id_card.py).

Golden vectors come from the public module manuals and open-source readers cited in
docs/devices/id-reader.md ("Worked examples", "Sources"); the numbers in brackets below are
that file's source list. None is produced by our encoder or simulator.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import date

import pytest
import structlog
from hypothesis import assume, given
from hypothesis import strategies as st

from devices.codecs.id_card import IdCard, MaskedIdCard, encode_base_info, parse_base_info
from devices.codecs.sam import (
    PREAMBLE,
    Garbage,
    SamCommand,
    SamCommandDecoder,
    SamDecoder,
    SamReply,
    encode_command,
    encode_find_card,
    encode_read_base_info,
    encode_reply,
    encode_reset,
    encode_sam_status,
    encode_select_card,
    parse_command,
    parse_reply,
)
from devices.errors import ChecksumError, CodecError, EncodeError, FrameError
from hub.domain.identity import parse_document

# (name, encoder, frame): docs/devices/id-reader.md "Commands" and worked examples 1-5.
COMMANDS: list[tuple[str, Callable[[], bytes], str]] = [
    # [7] ReadIdentifierCardInfoUtil::SDT_ResetSAM: "AA AA AA 96 69 00 03 10 FF EC"
    ("reset", encode_reset, "AA AA AA 96 69 00 03 10 FF EC"),
    # [6] hev-idcard-reader cmd_get_status; [7] SDT_GetSAMStatus
    ("sam_status", encode_sam_status, "AA AA AA 96 69 00 03 11 FF ED"),
    # [3] IDCardDemo README "寻卡命令"; [6] cmd_get_card_status; [7] SDT_SearchCard
    ("find_card", encode_find_card, "AA AA AA 96 69 00 03 20 01 22"),
    # [3] "选卡命令"; [6] cmd_select_card; [7] SDT_SelectCard
    ("select_card", encode_select_card, "AA AA AA 96 69 00 03 20 02 21"),
    # [3] "读卡命令"; [6] cmd_read_base_info; [7] SDT_ReadBaseMsg
    ("read_base_info", encode_read_base_info, "AA AA AA 96 69 00 03 30 01 32"),
]

# (frame, reply, status): worked examples 6-12.
REPLIES: list[tuple[str, SamReply, str]] = [
    # [7] slotReadMsg: "aaaaaa9669000400009094" 读取模块状态成功
    ("AA AA AA 96 69 00 04 00 00 90 94", SamReply(0, 0, 0x90), "ok"),
    # [7] "aaaaaa9669000400006064" SAM_A 自检失败
    ("AA AA AA 96 69 00 04 00 00 60 64", SamReply(0, 0, 0x60), "self_test_failed"),
    # [3] README "返回值"; [7] 寻找居民身份证成功; [8] CMD_FIND_SUCC
    (
        "AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97",
        SamReply(0, 0, 0x9F, bytes(4)),
        "card_found",
    ),
    # [7] 寻找居民身份证失败; [8] CMD_FIND_FAIL
    ("AA AA AA 96 69 00 04 00 00 80 84", SamReply(0, 0, 0x80), "find_failed"),
    # [3] 选卡 "返回值"; [7] 选取居民身份证成功
    (
        "AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C",
        SamReply(0, 0, 0x90, bytes(8)),
        "ok",
    ),
    # [7] 选取居民身份证失败
    ("AA AA AA 96 69 00 04 00 00 81 85", SamReply(0, 0, 0x81), "select_failed"),
    # [7] 读居民身份证操作失败
    ("AA AA AA 96 69 00 04 00 00 41 45", SamReply(0, 0, 0x41), "read_failed"),
]


def _ucs2(text: str, size: int) -> bytes:
    """A text field as GA 467 stores it: UCS-2 little-endian, padded with spaces (20 00)."""
    raw = text.encode("utf-16-le")
    assert len(raw) <= size
    return raw + b"\x20\x00" * ((size - len(raw)) // 2)


# Worked example 13: a hand-built "read base info" reply for the test card of
# docs/devices/id-reader.md. Header: [3] "AA AA AA 96 69 05 08 00 00 90 01 00 04 00 +（256 字节
# 文字信息）+（1024 字节照片信息）+（1 字节 CRC）", also [2]; text at frame offset 14 and photo at
# 270 [4]. Text fields at the offsets of the GA 467 table reproduced in [3] (30/2/4/16/70/36/
# 30/16/16/36 bytes; "有效期为长期时存储 长期").
GOLDEN_TEXT = b"".join(
    [
        _ucs2("王测试", 30),  # 0   name
        _ucs2("2", 2),  # 30  sex: GB/T 2261.1 2 = female
        _ucs2("01", 4),  # 32  nation: GB 3304 01 = 汉
        _ucs2("19491231", 16),  # 36  birth
        _ucs2("北京市朝阳区测试街道示例路1号", 70),  # 52  address
        _ucs2("11010519491231002X", 36),  # 122 ID number: GB 11643-1999's own example
        _ucs2("北京市公安局朝阳分局", 30),  # 158 authority
        _ucs2("20200101", 16),  # 188 valid from
        _ucs2("长期", 16),  # 204 valid to: no end date
        _ucs2("", 36),  # 220 reserved
    ]
)
GOLDEN_PHOTO = b"WLT" + bytes(1021)
_FRAME_BODY = bytes.fromhex("05 08 00 00 90 01 00 04 00") + GOLDEN_TEXT + GOLDEN_PHOTO
_CHECK = 0
for _byte in _FRAME_BODY:
    _CHECK ^= _byte
GOLDEN_READ = PREAMBLE + _FRAME_BODY + bytes([_CHECK])

GOLDEN_CARD = IdCard(
    name="王测试",
    sex_code="2",
    nation_code="01",
    birth_date=date(1949, 12, 31),
    address="北京市朝阳区测试街道示例路1号",
    id_number="11010519491231002X",
    authority="北京市公安局朝阳分局",
    valid_from=date(2020, 1, 1),
    valid_to=None,
    photo=GOLDEN_PHOTO,
)

ALL_REPLIES = b"".join(bytes.fromhex(frame) for frame, _, _ in REPLIES) + GOLDEN_READ


def _replies(items: list[SamReply | Garbage]) -> list[SamReply]:
    assert all(isinstance(item, SamReply) for item in items), items
    return [item for item in items if isinstance(item, SamReply)]


@pytest.mark.parametrize(("name", "encoder", "frame"), COMMANDS)
def test_command_encoders_give_the_published_frames(
    name: str, encoder: Callable[[], bytes], frame: str
) -> None:
    """Each of the five commands encodes to the frame the module manuals print."""
    assert encoder() == bytes.fromhex(frame)


@pytest.mark.parametrize(("name", "encoder", "frame"), COMMANDS)
def test_published_command_frames_parse_to_their_command(
    name: str, encoder: Callable[[], bytes], frame: str
) -> None:
    """The reader side parses each published command frame and names it."""
    command = parse_command(bytes.fromhex(frame))
    assert command.name == name
    assert command.data == b""


@pytest.mark.parametrize(("frame", "reply", "status"), REPLIES)
def test_published_reply_frames_parse_and_encode(frame: str, reply: SamReply, status: str) -> None:
    """Each published reply parses to its statuses and data, and encodes back byte for byte."""
    raw = bytes.fromhex(frame)
    assert parse_reply(raw) == reply
    assert parse_reply(raw).status == status
    assert encode_reply(reply.sw3, reply.data) == raw


def test_find_card_response_with_9f_means_card_present() -> None:
    """SW3 0x9F is a success: a card is in the field."""
    reply = parse_reply(bytes.fromhex("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97"))
    assert reply.ok
    assert reply.status == "card_found"


def test_find_card_failure_is_a_reply_not_an_exception() -> None:
    """SW3 0x80 parses into a reply with ok False: the device answered, there is no card."""
    reply = parse_reply(bytes.fromhex("AA AA AA 96 69 00 04 00 00 80 84"))
    assert not reply.ok
    assert reply.status == "find_failed"


def test_an_undefined_sw3_is_unknown_status() -> None:
    """A status byte GA 467 does not define is kept and named unknown_status."""
    reply = parse_reply(encode_reply(0x55, sw1=0x6A, sw2=0x82))
    assert (reply.sw1, reply.sw2, reply.sw3, reply.status, reply.ok) == (
        0x6A,
        0x82,
        0x55,
        "unknown_status",
        False,
    )


def test_golden_read_base_info_reply_decodes_to_the_test_card() -> None:
    """The hand-built 1295-byte read reply parses and its data decodes to the test card."""
    assert len(GOLDEN_READ) == 1295  # [3][7]: "读取身份证成功后会返回 1295 字节数据"
    reply = parse_reply(GOLDEN_READ)
    assert reply.status == "ok"
    assert len(reply.data) == 1284
    card = parse_base_info(reply.data)
    assert card == GOLDEN_CARD
    assert (card.sex, card.nation) == ("女", "汉")


def test_test_card_id_number_has_a_valid_check_character() -> None:
    """The test card's number is check-character valid (it is GB 11643-1999's example)."""
    assert parse_document("resident_id", GOLDEN_CARD.id_number).number == "11010519491231002X"


def test_the_test_card_encodes_back_to_the_golden_read_reply() -> None:
    """encode_base_info inside encode_reply rebuilds the hand-built frame byte for byte."""
    assert encode_reply(0x90, encode_base_info(GOLDEN_CARD)) == GOLDEN_READ


def test_a_dated_validity_end_decodes_to_a_date() -> None:
    """valid_to holds a date when the card has an end date, None only for 长期."""
    card = IdCard(
        name="欧阳测试",
        sex_code="1",
        nation_code="05",
        birth_date=date(2000, 1, 1),
        address="新疆维吾尔自治区乌鲁木齐市天山区示例路2号",
        id_number="110101200001011232",
        authority="乌鲁木齐市公安局天山区分局",
        valid_from=date(2016, 2, 29),
        valid_to=date(2026, 2, 28),
    )
    decoded = parse_base_info(encode_base_info(card))
    assert decoded == IdCard(**{**_fields(card), "photo": bytes(1024)})
    assert (decoded.sex, decoded.nation) == ("男", "维吾尔")


def _fields(card: IdCard) -> dict[str, object]:
    return {name: getattr(card, name) for name in card.__struct_fields__}


@pytest.mark.parametrize(
    ("code", "sex"), [("0", "未知"), ("1", "男"), ("2", "女"), ("9", "未说明"), ("7", "未知")]
)
def test_sex_codes_have_their_gb_t_2261_names(code: str, sex: str) -> None:
    """Sex codes 0/1/2/9 are named; an unknown code reads as 未知."""
    assert IdCard(**{**_fields(GOLDEN_CARD), "sex_code": code}).sex == sex


@pytest.mark.parametrize(
    ("code", "nation"),
    [("01", "汉"), ("46", "德昂"), ("56", "基诺"), ("97", "其他"), ("98", "外国血统中国籍人士")],
)
def test_nation_codes_have_their_gb_3304_names(code: str, nation: str) -> None:
    """Nation codes map to the GB 3304 names printed on the card."""
    assert IdCard(**{**_fields(GOLDEN_CARD), "nation_code": code}).nation == nation


def test_a_nation_code_outside_the_table_has_no_name() -> None:
    """A code GB 3304 does not define gives nation None (and 未知 when masked)."""
    card = IdCard(**{**_fields(GOLDEN_CARD), "nation_code": "57"})
    assert card.nation is None
    assert card.masked().nation == "未知"


def test_card_repr_masks_name_and_id_number() -> None:
    """repr, str and f-strings show the masked name and number, never the real ones."""
    expected = (
        "IdCard(name='王**', id_number='110***********002X', sex='女', nation='汉', "
        "valid_to='长期')"
    )
    for shown in (repr(GOLDEN_CARD), str(GOLDEN_CARD), f"{GOLDEN_CARD}", f"{[GOLDEN_CARD]}"):
        assert expected in shown
        for secret in ("王测试", "11010519491231002X", "19491231", "朝阳区测试街道"):
            assert secret not in shown


def test_masked_gives_what_logs_may_show() -> None:
    """masked() is the name's first character and the number's first 6 and last 4."""
    assert GOLDEN_CARD.masked() == MaskedIdCard(
        name="王**", id_number="110***********002X", sex="女", nation="汉", valid_to="长期"
    )
    two = IdCard(**{**_fields(GOLDEN_CARD), "name": "张三", "valid_to": date(2030, 5, 1)})
    assert (two.masked().name, two.masked().valid_to) == ("张*", "2030-05-01")


def test_rich_repr_protocol_is_masked_too() -> None:
    """The rich pretty-printing protocol yields the masked fields only."""
    assert dict(GOLDEN_CARD.__rich_repr__()) == {
        "name": "王**",
        "id_number": "110***********002X",
        "sex": "女",
        "nation": "汉",
        "valid_to": "长期",
    }


@pytest.mark.parametrize(
    "renderer",
    [structlog.processors.KeyValueRenderer(), structlog.processors.JSONRenderer()],
    ids=["key_value", "json"],
)
def test_a_log_line_carrying_a_card_never_shows_name_or_number(
    renderer: structlog.typing.Processor,
) -> None:
    """structlog's renderers fall back to repr, which is masked."""
    line = renderer(None, "info", {"event": "card_read", "card": GOLDEN_CARD})
    assert isinstance(line, str)
    shown = json.loads(line)["card"] if line.startswith("{") else line
    assert "110***********002X" in shown
    assert "11010519491231002X" not in shown
    assert "王测试" not in shown


def _text_with(offset: int, raw: bytes) -> bytes:
    """Base info data (no photo) whose text has ``raw`` written at ``offset``."""
    text = GOLDEN_TEXT[:offset] + raw + GOLDEN_TEXT[offset + len(raw) :]
    return bytes.fromhex("01 00 00 00") + text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x00", "shorter than its 4-byte"),
        (bytes.fromhex("00 80 04 00") + bytes(128 + 1024), "not 256"),
        (bytes.fromhex("01 00 04 00") + GOLDEN_TEXT + bytes(1000), "header says"),
        (_text_with(36, b"\x00\xd8"), "UTF-16"),  # a lone surrogate in the birth date
        (_text_with(36, _ucs2("19491331", 16)), "valid date"),
        (_text_with(188, _ucs2("2020-1-1", 16)), "YYYYMMDD"),
    ],
    ids=["short", "text_length", "total_length", "lone_surrogate", "bad_birth", "bad_valid_from"],
)
def test_malformed_base_info_is_a_frame_error(data: bytes, message: str) -> None:
    """Lengths that do not add up, non-UTF-16 text and non-dates raise FrameError."""
    with pytest.raises(FrameError, match=message):
        parse_base_info(data)


def test_fields_that_do_not_fit_their_slots_cannot_be_encoded() -> None:
    """A 16-character name, a non-BMP character or an oversized photo is an EncodeError."""
    for change in ({"name": "一" * 16}, {"address": "𠀀"}, {"photo": bytes(1025)}):
        with pytest.raises(EncodeError):
            encode_base_info(IdCard(**{**_fields(GOLDEN_CARD), **change}))


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("AB AA AA 96 69 00 04 00 00 90 94", FrameError),  # preamble
        ("AA AA AA 96 69 00", FrameError),  # cut before the length
        ("AA AA AA 96 69 00 03 00 00 93", FrameError),  # LEN 3: no room for SW1-3 + CHK
        ("AA AA AA 96 69 00 05 00 00 90 94", FrameError),  # LEN says one byte more
        ("AA AA AA 96 69 00 04 00 00 90 95", ChecksumError),
    ],
)
def test_malformed_reply_frames_raise_codec_errors(frame: str, error: type[CodecError]) -> None:
    """Wrong preamble or length is a FrameError, a wrong check byte a ChecksumError."""
    with pytest.raises(error):
        parse_reply(bytes.fromhex(frame))


def test_encoders_refuse_values_that_are_not_bytes() -> None:
    """CMD, PARA and SW values outside 0..255, and oversized data, raise EncodeError."""
    with pytest.raises(EncodeError):
        encode_command(0x100, 0x01)
    with pytest.raises(EncodeError):
        encode_reply(-1)
    with pytest.raises(EncodeError):
        encode_reply(0x90, bytes(0xFFFF))


def test_stream_decoder_split_at_every_offset_gives_the_same_replies() -> None:
    """All golden replies, fed in two pieces cut anywhere, decode to the same replies."""
    whole = _replies(SamDecoder().feed(ALL_REPLIES))
    assert [r.status for r in whole] == [status for _, _, status in REPLIES] + ["ok"]
    for cut in range(len(ALL_REPLIES) + 1):
        decoder = SamDecoder()
        items = decoder.feed(ALL_REPLIES[:cut]) + decoder.feed(ALL_REPLIES[cut:])
        assert _replies(items) == whole


def test_stream_decoder_fed_byte_by_byte_gives_the_same_replies() -> None:
    """One byte at a time gives the same replies as one feed."""
    decoder = SamDecoder()
    items = [item for byte in ALL_REPLIES for item in decoder.feed(bytes([byte]))]
    assert items == SamDecoder().feed(ALL_REPLIES)


def test_command_decoder_splits_the_published_commands() -> None:
    """The reader-side decoder yields the five commands from one stream, cut anywhere."""
    stream = b"".join(bytes.fromhex(frame) for _, _, frame in COMMANDS)
    for cut in range(len(stream) + 1):
        decoder = SamCommandDecoder()
        items = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert [item.name for item in items if isinstance(item, SamCommand)] == [
            name for name, _, _ in COMMANDS
        ]
        assert len(items) == len(COMMANDS)


def test_bytes_before_a_preamble_are_reported_as_garbage() -> None:
    """Noise before a frame is one Garbage item, then the frame."""
    items = SamDecoder().feed(b"\x00\x13noise" + bytes.fromhex("AA AA AA 96 69 00 04 00 00 80 84"))
    assert items == [Garbage(7, "no_header"), SamReply(0, 0, 0x80)]


def test_a_frame_with_a_bad_check_byte_is_garbage_and_the_next_frame_decodes() -> None:
    """A checksum failure skips that frame only; the frame after it is decoded."""
    bad = bytes.fromhex("AA AA AA 96 69 00 04 00 00 90 95")
    good = bytes.fromhex("AA AA AA 96 69 00 04 00 00 90 94")
    assert SamDecoder().feed(bad + good) == [Garbage(11, "bad_checksum"), SamReply(0, 0, 0x90)]


def test_a_length_beyond_max_frame_is_garbage_then_resync() -> None:
    """A preamble announcing more than max_frame is skipped without waiting for the bytes."""
    decoder = SamDecoder(max_frame=64)
    items = decoder.feed(bytes.fromhex("AA AA AA 96 69 01 00 00 00 90"))
    items += decoder.feed(bytes.fromhex("AA AA AA 96 69 00 04 00 00 80 84"))
    assert items == [Garbage(10, "too_long"), SamReply(0, 0, 0x80)]
    assert SamDecoder(max_frame=1294).feed(GOLDEN_READ)[0] == Garbage(1295, "too_long")


def test_a_length_too_short_for_a_reply_is_garbage() -> None:
    """LEN below 4 cannot hold SW1 SW2 SW3 and CHK: skipped as bad_frame."""
    items = SamDecoder().feed(
        bytes.fromhex("AA AA AA 96 69 00 01 AA AA AA 96 69 00 04 00 00 41 45")
    )
    assert items == [Garbage(7, "bad_frame"), SamReply(0, 0, 0x41)]


def test_clear_forgets_a_partial_frame() -> None:
    """After clear(), the rest of an interrupted frame is noise and the next frame decodes."""
    decoder = SamDecoder()
    assert decoder.feed(GOLDEN_READ[:600]) == []
    decoder.clear()
    items = decoder.feed(GOLDEN_READ[600:] + bytes.fromhex("AA AA AA 96 69 00 04 00 00 80 84"))
    assert items[-1] == SamReply(0, 0, 0x80)
    assert all(isinstance(item, Garbage) for item in items[:-1])


@given(st.binary(max_size=2000))
def test_parse_reply_and_parse_command_raise_only_codec_errors(data: bytes) -> None:
    """Random bytes either parse or raise a CodecError, nothing else."""
    for parse in (parse_reply, parse_command):
        with contextlib.suppress(CodecError):
            parse(data)


@given(st.sampled_from([*(bytes.fromhex(f) for f, _, _ in REPLIES), GOLDEN_READ]), st.data())
def test_truncated_and_bit_flipped_frames_raise_only_codec_errors(
    frame: bytes, data: st.DataObject
) -> None:
    """A valid frame cut short or with a flipped bit never raises anything but CodecError."""
    cut = data.draw(st.integers(0, len(frame)))
    position = data.draw(st.integers(0, len(frame) - 1))
    bit = data.draw(st.integers(0, 7))
    flipped = bytearray(frame)
    flipped[position] ^= 1 << bit
    for candidate in (frame[:cut], bytes(flipped)):
        try:
            reply = parse_reply(candidate)
        except CodecError:
            continue
        if reply.status == "ok" and len(reply.data) >= 4:
            with contextlib.suppress(CodecError):
                parse_base_info(reply.data)


@given(st.lists(st.binary(max_size=300), max_size=12))
def test_feed_never_raises(chunks: list[bytes]) -> None:
    """Any chunks of bytes, fed in turn, never make either stream decoder raise."""
    replies, commands = SamDecoder(max_frame=512), SamCommandDecoder(max_frame=512)
    for chunk in chunks:
        replies.feed(chunk)
        commands.feed(chunk)


@given(
    st.binary(max_size=200),
    st.sampled_from([bytes.fromhex(f) for f, _, _ in REPLIES]),
    st.lists(st.integers(1, 30), max_size=8),
)
def test_after_garbage_a_valid_frame_is_decoded(
    noise: bytes, frame: bytes, sizes: list[int]
) -> None:
    """Noise (holding no whole preamble) then a valid frame, in any chunks: the frame decodes."""
    assume(PREAMBLE not in noise)
    stream = noise + frame
    decoder, items, at = SamDecoder(), [], 0
    for size in [*sizes, len(stream)]:
        items += decoder.feed(stream[at : at + size])
        at += size
    assert items[-1] == parse_reply(frame)
    assert all(isinstance(item, Garbage) for item in items[:-1])
    assert sum(item.skipped for item in items[:-1] if isinstance(item, Garbage)) == len(noise)
