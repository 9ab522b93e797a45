"""Code reader codec (devices/codecs/code_reader.py).

The golden vectors are the worked examples of docs/devices/code-reader.md (a framing we
define for serial-mode readers), numbered as there.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.codecs.code_reader import (
    Classified,
    CodeReaderDecoder,
    Garbage,
    ScannedCode,
    classify,
    encode_code,
    parse_line,
)
from devices.errors import EncodeError, FrameError
from hub.api.ticket_qr import ticket_page_url
from hub.domain.appointment import make_code

TICKET_URL = "http://hall.example/ticket/?t=q3ZtR8bXk2LmN0pA7sWcYg"

# (example number, decoder settings, bytes in, items out, classification of the first code).
EXAMPLES: list[tuple[int, dict[str, Any], str, list[ScannedCode | Garbage], Classified | None]] = [
    (1, {}, "31 32 33 34 35 36 0D", [ScannedCode("123456")], Classified("appointment", "123456")),
    (
        2,
        {},
        "68 74 74 70 3A 2F 2F 68 61 6C 6C 2E 65 78 61 6D 70 6C 65 2F 74 69 63 6B 65 74 2F 3F 74"
        " 3D 71 33 5A 74 52 38 62 58 6B 32 4C 6D 4E 30 70 41 37 73 57 63 59 67 0D",
        [ScannedCode(TICKET_URL)],
        Classified("ticket", "q3ZtR8bXk2LmN0pA7sWcYg"),
    ),
    (3, {}, "D5 C5 C8 FD 0D", [ScannedCode("张三")], Classified("other", "张三")),
    (
        4,
        {},
        "E5 8A 9E E4 BA 8B E6 8C 87 E5 8D 97 0D",
        [ScannedCode("办事指南")],
        Classified("other", "办事指南"),
    ),
    (
        5,
        {"suffix": b"\r\n"},
        "71 33 5A 74 52 38 62 58 6B 32 4C 6D 4E 30 70 41 37 73 57 63 59 67 0D 0A",
        [ScannedCode("q3ZtR8bXk2LmN0pA7sWcYg")],
        Classified("ticket", "q3ZtR8bXk2LmN0pA7sWcYg"),
    ),
    (
        6,
        {"prefix": b"\x02"},
        "02 41 42 31 32 0D",
        [ScannedCode("AB12")],
        Classified("other", "AB12"),
    ),
    (7, {"prefix": b"\x02"}, "41 42 31 32 0D", [Garbage(5, "bad_frame")], None),
    (
        8,
        {"max_len": 8},
        "31 32 33 34 35 36 37 38 39 30 0D 31 0D",
        [Garbage(11, "too_long"), ScannedCode("1")],
        None,
    ),
    (9, {}, "0D 0D 31 0D", [ScannedCode("1")], None),
    (10, {}, "FF FE 0D", [Garbage(3, "bad_encoding")], None),
    (11, {}, "31 32 0D 0A 33 34 0D 0A", [ScannedCode("12"), ScannedCode("34")], None),
]  # fmt: skip
IDS = [f"example_{number}" for number, *_ in EXAMPLES]


@pytest.mark.parametrize(("number", "settings", "data", "items", "kind"), EXAMPLES, ids=IDS)
def test_worked_examples_decode_as_documented(
    number: int,
    settings: dict[str, Any],
    data: str,
    items: list[ScannedCode | Garbage],
    kind: Classified | None,
) -> None:
    """Each worked example of docs/devices/code-reader.md gives the documented items."""
    assert CodeReaderDecoder(**settings).feed(bytes.fromhex(data)) == items
    if kind is not None:
        first = items[0]
        assert isinstance(first, ScannedCode)
        assert classify(first.text) == kind


@pytest.mark.parametrize(("number", "settings", "data", "items", "kind"), EXAMPLES, ids=IDS)
def test_worked_examples_split_at_every_offset_give_the_same_items(
    number: int,
    settings: dict[str, Any],
    data: str,
    items: list[ScannedCode | Garbage],
    kind: Classified | None,
) -> None:
    """Feeding an example in two pieces cut anywhere gives the same items."""
    raw = bytes.fromhex(data)
    for cut in range(len(raw) + 1):
        decoder = CodeReaderDecoder(**settings)
        assert decoder.feed(raw[:cut]) + decoder.feed(raw[cut:]) == items


@pytest.mark.parametrize(
    ("text", "settings", "data"),
    [
        ("123456", {}, "31 32 33 34 35 36 0D"),  # example 1
        ("张三", {"encoding": "gb18030"}, "D5 C5 C8 FD 0D"),  # example 3
        ("办事指南", {}, "E5 8A 9E E4 BA 8B E6 8C 87 E5 8D 97 0D"),  # example 4
        ("AB12", {"prefix": b"\x02"}, "02 41 42 31 32 0D"),  # example 6
    ],
)
def test_encode_code_gives_the_documented_records(
    text: str, settings: dict[str, Any], data: str
) -> None:
    """encode_code writes the worked examples' bytes."""
    assert encode_code(text, **settings) == bytes.fromhex(data)


@pytest.mark.parametrize(
    ("text", "encoding"), [("", "utf-8"), ("12\r34", "utf-8"), ("a\n", "utf-8"), ("😀", "gb2312")]
)
def test_encode_code_refuses_what_a_record_cannot_hold(text: str, encoding: str) -> None:
    """Empty codes, CR or LF inside a code, and unencodable text are EncodeErrors."""
    with pytest.raises(EncodeError):
        encode_code(text, encoding=encoding)


@pytest.mark.parametrize(
    ("line", "settings", "message"),
    [
        (b"AB", {"prefix": b"\x02"}, "prefix"),
        (b"\xff\xfe", {}, "not text"),
        (b"\xd5\xc5", {"encoding": "utf-8"}, "not text"),
        (b"\r\n", {}, "empty"),
    ],
)
def test_parse_line_raises_frame_errors(
    line: bytes, settings: dict[str, Any], message: str
) -> None:
    """A missing prefix, undecodable bytes or an empty record is a FrameError."""
    with pytest.raises(FrameError, match=message):
        parse_line(line, **settings)


def test_a_fixed_encoding_reads_gbk_text_that_is_also_valid_utf8() -> None:
    """With encoding gb18030 a GBK record is read as GBK even when UTF-8 would accept it."""
    raw = "浣犲ソ".encode("gb18030")  # also valid UTF-8 (it is "你好" as UTF-8 read as GBK)
    assert CodeReaderDecoder().feed(raw + b"\r") == [ScannedCode("你好")]
    assert CodeReaderDecoder(encoding="gb18030").feed(raw + b"\r") == [ScannedCode("浣犲ソ")]


def test_an_over_long_record_arriving_in_pieces_is_one_garbage_item() -> None:
    """A record far beyond max_len, fed in small pieces, is reported once with its size."""
    decoder = CodeReaderDecoder(max_len=16, suffix=b"\r\n")
    items: list[ScannedCode | Garbage] = []
    for _ in range(100):
        items += decoder.feed(b"x" * 7 + b"\r")  # CRs without LF: no suffix yet
    items += decoder.feed(b"\n" + b"ok\r\n")
    assert items == [Garbage(801, "too_long"), ScannedCode("ok")]


def test_a_record_of_only_the_prefix_is_garbage() -> None:
    """A prefix with nothing after it is not an empty line: it is a bad record."""
    assert CodeReaderDecoder(prefix=b"\x02").feed(b"\x02\r") == [Garbage(2, "bad_frame")]


def test_decoder_refuses_an_empty_suffix() -> None:
    """A record needs a suffix to end."""
    with pytest.raises(ValueError):
        CodeReaderDecoder(suffix=b"")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" 654321 ", Classified("appointment", "654321")),
        ("HTTPS://hall.example/ticket?t=abc_-9", Classified("ticket", "abc_-9")),
        ("https://10.0.0.2:8000/ticket/index.html?t=Zz&x=1", Classified("ticket", "Zz")),
        ("q3ZtR8bXk2LmN0pA7sWcYg", Classified("ticket", "q3ZtR8bXk2LmN0pA7sWcYg")),
    ],
)
def test_classify_recognises_appointment_codes_and_ticket_addresses(
    text: str, expected: Classified
) -> None:
    """6 digits are a check-in code; our ticket address or a bare token is a ticket."""
    assert classify(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1234567",
        "１２３４５６",  # full-width digits
        "q3ZtR8bXk2LmN0pA7sWcY",  # 21 characters: not a bare token
        "http://hall.example/ticket/?t=a&t=b",
        "http://hall.example/ticket/?t=" + "a" * 65,
        "http://hall.example/tickets/?t=abc",
        "ftp://hall.example/ticket/?t=abc",
        "http://[hall/ticket/?t=abc",
        "http://hall.example/ticket/?t=a%20b",
        "/ticket/?t=abc",
    ],
)
def test_classify_leaves_everything_else_as_other(text: str) -> None:
    """Near misses (7 digits, full-width digits, other paths, bad tokens) are other."""
    assert classify(text) == Classified("other", text)


@given(st.text(max_size=200))
def test_classify_never_raises(text: str) -> None:
    """Any text classifies as one of the three kinds."""
    assert classify(text).kind in ("appointment", "ticket", "other")


@given(st.binary(max_size=200), st.sampled_from([b"", b"\x02"]))
def test_parse_line_raises_only_frame_errors(line: bytes, prefix: bytes) -> None:
    """Random records either parse or raise FrameError."""
    with contextlib.suppress(FrameError):
        parse_line(line, prefix=prefix)


@given(
    st.lists(st.binary(max_size=80), max_size=12),
    st.sampled_from([b"\r", b"\n", b"\r\n"]),
    st.integers(1, 64),
)
def test_feed_never_raises(chunks: list[bytes], suffix: bytes, max_len: int) -> None:
    """Any chunks never make the decoder raise, whatever its settings."""
    decoder = CodeReaderDecoder(suffix=suffix, max_len=max_len, prefix=b"\x02")
    for chunk in chunks:
        decoder.feed(chunk)


@given(
    st.binary(max_size=200).filter(lambda b: b"\r" not in b),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30),
    st.lists(st.integers(1, 16), max_size=6),
)
def test_after_garbage_the_next_record_is_decoded(
    noise: bytes, text: str, sizes: list[int]
) -> None:
    """A record of noise, then a valid record, in any chunks: the valid one decodes."""
    stream = noise + b"\r" + encode_code(text)
    decoder, items, at = CodeReaderDecoder(max_len=130), [], 0  # a 30-character text fits
    for size in [*sizes, len(stream)]:
        items += decoder.feed(stream[at : at + size])
        at += size
    assert items[-1] == ScannedCode(text.strip("\r\n"))


def test_the_hubs_own_ticket_address_and_check_in_code_classify_correctly() -> None:
    """The address hub/api/ticket_qr.py draws, its bare token and a make_code() code classify
    as ticket and appointment: the formats cannot drift apart unnoticed."""
    token = secrets.token_urlsafe(16)
    assert classify(ticket_page_url("http://hall.example:8000/", token)) == Classified(
        "ticket", token
    )
    assert classify(token) == Classified("ticket", token)
    assert classify(make_code(42)) == Classified("appointment", "000042")
