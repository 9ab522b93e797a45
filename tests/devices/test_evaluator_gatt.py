"""The evaluation pad's GATT payloads (devices/codecs/evaluator_gatt.py) against the worked
examples of docs/devices/evaluator-ble.md, which are the golden vectors: the protocol is ours,
so the document, written first, is its reference."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.codecs.evaluator_gatt import (
    FIRMWARE_MAX,
    GRADE_CODES,
    MAX_VALUE,
    MODEL_MAX,
    REASON_CODES,
    STAFF_NAME_MAX,
    STAFF_NO_MAX,
    TICKET_NO_MAX,
    TIMEOUT_MAX_MS,
    WINDOW_MAX,
    DeviceInfo,
    GradeNotice,
    Prompt,
    TimeoutNotice,
    encode_info,
    encode_notice,
    encode_prompt,
    parse_info,
    parse_notice,
    parse_prompt,
)
from devices.errors import CodecError, EncodeError, FrameError
from hub.domain.rating import GRADE_SCORES, GRADES, REASONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "devices" / "evaluator-ble.md"

# docs/devices/evaluator-ble.md, "Worked examples (golden vectors)", rows P1, P2.
P1 = bytes.fromhex(
    "01 07 00 00 00 2c 01 02 30 33 06 e6 9d 8e e5 a8 9c 05 53 31 30 32 34 04 41 30 30 31"
)
P2 = bytes.fromhex("01 04 03 02 01 01 00 02 31 32 00 00 04 42 30 31 32")
# Same section, rows G1, G2, T1 (grade characteristic) and I1 (info characteristic).
G1 = bytes.fromhex("02 07 00 00 00 05 00")
G2 = bytes.fromhex("02 08 00 00 00 02 02 02 05")
T1 = bytes.fromhex("03 09 00 00 00")
I1 = bytes.fromhex("01 07 48 45 2d 32 30 30 42 05 31 2e 34 2e 32")

PROMPTS = [
    (
        P1,
        Prompt(
            7, window="03", staff_name="李娜", staff_no="S1024", ticket_no="A001", timeout_ms=30_000
        ),
    ),
    (
        P2,
        Prompt(
            0x01020304, window="12", staff_name="", staff_no="", ticket_no="B012", timeout_ms=100
        ),
    ),
]
NOTICES = [
    (G1, GradeNotice(7, "very_satisfied")),
    (G2, GradeNotice(8, "dissatisfied", ("slow_service", "repeated_visits"))),
    (T1, TimeoutNotice(9)),
]
INFOS = [(I1, DeviceInfo(model="HE-200B", firmware="1.4.2", protocol=1))]

# docs/devices/evaluator-ble.md, "Malformed values": each refused as a whole.
MALFORMED_NOTICES = [
    "02 07 00 00 00 06 00",  # grade code 6 does not exist
    "02 07 00 00 00 02 02 03 03",  # reason 03 twice
    "02 07 00 00 00 05 00 00",  # one octet left over
    "03 09 00 00",  # request id cut short
    "7f",  # unknown type
]
MALFORMED_PROMPTS = [
    "01 07 00 00 00 00 00 02 30 33 00 00 04 41 30 30 31",  # timeout 0
    "01 07 00 00 00 2c 01 02 30 33 02 ff fe 00 04 41 30 30 31",  # staff name not UTF-8
    "7f",  # unknown type
]

VALID_VALUES = [value for value, _ in PROMPTS + NOTICES + INFOS]


def _doc_hex() -> set[str]:
    return {
        m.replace(" ", "") for m in re.findall(r"`((?:[0-9a-f]{2} )*[0-9a-f]{2})`", DOC.read_text())
    }


def test_golden_vectors_are_the_worked_examples_of_the_doc():
    """Every vector in this file appears, byte for byte, in docs/devices/evaluator-ble.md."""
    in_doc = _doc_hex()
    for value in [*VALID_VALUES, *map(bytes.fromhex, MALFORMED_NOTICES + MALFORMED_PROMPTS)]:
        assert value.hex() in in_doc


@pytest.mark.parametrize(("value", "prompt"), PROMPTS, ids=["P1", "P2"])
def test_prompt_vectors_parse_and_encode(value: bytes, prompt: Prompt):
    """The worked prompts parse into their fields, and the fields encode into the same bytes."""
    assert parse_prompt(value) == prompt
    assert encode_prompt(prompt) == value


@pytest.mark.parametrize(("value", "notice"), NOTICES, ids=["G1", "G2", "T1"])
def test_notice_vectors_parse_and_encode(value: bytes, notice: GradeNotice | TimeoutNotice):
    """The worked grade and timed-out notices parse and encode both ways."""
    assert parse_notice(value) == notice
    assert encode_notice(notice) == value


def test_info_vector_parses_and_encodes():
    """The worked info value parses into protocol 1, model and firmware, and back."""
    value, info = INFOS[0]
    assert parse_info(value) == info
    assert encode_info(info) == value


@pytest.mark.parametrize("value", MALFORMED_NOTICES)
def test_malformed_notice_from_the_doc_is_a_frame_error(value: str):
    """Each malformed grade value of the doc is refused with FrameError."""
    with pytest.raises(FrameError):
        parse_notice(bytes.fromhex(value))


@pytest.mark.parametrize("value", MALFORMED_PROMPTS)
def test_malformed_prompt_from_the_doc_is_a_frame_error(value: str):
    """Each malformed prompt value of the doc is refused with FrameError."""
    with pytest.raises(FrameError):
        parse_prompt(bytes.fromhex(value))


def test_wire_codes_cover_the_glossary_grades_and_reasons():
    """Every GLOSSARY grade has its GB/T score as code; every reason a distinct code 1..7."""
    assert set(GRADE_CODES) == set(GRADES)
    assert all(GRADE_CODES[g] == GRADE_SCORES[g] for g in GRADES)
    assert set(REASON_CODES) == set(REASONS)
    assert sorted(REASON_CODES.values()) == list(range(1, len(REASONS) + 1))


def test_longest_prompt_fits_one_att_write():
    """A prompt with every string at its limit is 139 octets, within one 244-octet write."""
    longest = Prompt(
        0xFFFF_FFFF,
        window="w" * WINDOW_MAX,
        staff_name="李" * (STAFF_NAME_MAX // 3),
        staff_no="n" * STAFF_NO_MAX,
        ticket_no="t" * TICKET_NO_MAX,
        timeout_ms=TIMEOUT_MAX_MS,
    )
    value = encode_prompt(longest)
    assert len(value) == 139 <= MAX_VALUE
    assert parse_prompt(value) == longest


@pytest.mark.parametrize(
    "change",
    [
        {"window": "w" * (WINDOW_MAX + 1)},
        {"staff_name": "李" * (STAFF_NAME_MAX // 3 + 1)},
        {"staff_no": "n" * (STAFF_NO_MAX + 1)},
        {"ticket_no": "t" * (TICKET_NO_MAX + 1)},
        {"ticket_no": "\ud800"},
        {"timeout_ms": 0},
        {"timeout_ms": 150},
        {"timeout_ms": TIMEOUT_MAX_MS + 100},
        {"request_id": -1},
        {"request_id": 2**32},
        {"request_id": True},
    ],
    ids=lambda change: "-".join(f"{k}={str(v)[:8]}" for k, v in change.items()),
)
def test_encode_prompt_rejects_values_that_do_not_fit(change: dict[str, object]):
    """Over-long strings (in UTF-8 octets), bad timeouts and request ids raise EncodeError."""
    base = {
        "request_id": 1,
        "window": "03",
        "staff_name": "",
        "staff_no": "",
        "ticket_no": "A001",
        "timeout_ms": 1000,
    }
    with pytest.raises(EncodeError):
        encode_prompt(Prompt(**{**base, **change}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "notice",
    [
        GradeNotice(1, "great"),  # type: ignore[arg-type]
        GradeNotice(1, "dissatisfied", ("rude",)),  # type: ignore[arg-type]
        GradeNotice(1, "dissatisfied", ("other", "other")),
        GradeNotice(2**32, "satisfied"),
        TimeoutNotice(-1),
    ],
)
def test_encode_notice_rejects_unknown_codes_and_duplicates(notice: GradeNotice | TimeoutNotice):
    """Unknown grades or reasons, a reason twice and bad request ids raise EncodeError."""
    with pytest.raises(EncodeError):
        encode_notice(notice)


def test_encode_info_rejects_long_strings_and_protocol_zero():
    """A model or firmware over 32 octets, or protocol 0, raises EncodeError."""
    for info in (
        DeviceInfo(model="m" * (MODEL_MAX + 1), firmware="1"),
        DeviceInfo(model="m", firmware="f" * (FIRMWARE_MAX + 1)),
        DeviceInfo(model="m", firmware="1", protocol=0),
    ):
        with pytest.raises(EncodeError):
            encode_info(info)


def test_info_of_a_later_protocol_may_carry_more_fields():
    """A protocol-2 info value with a field after firmware parses; protocol 1 with one does not."""
    assert parse_info(b"\x02" + I1[1:] + b"\x01x") == DeviceInfo("HE-200B", "1.4.2", protocol=2)
    with pytest.raises(FrameError):
        parse_info(I1 + b"\x01x")


# --- fuzz -----------------------------------------------------------------------------------

PARSERS = [parse_prompt, parse_notice, parse_info]


def _parses_or_codec_error(value: bytes) -> None:
    for parse in PARSERS:
        with contextlib.suppress(CodecError):
            parse(value)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_nothing_but_codec_error(value: bytes):
    """Any byte string either parses or raises a CodecError, in every parser."""
    _parses_or_codec_error(value)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(VALID_VALUES), st.data())
def test_truncated_or_bit_flipped_vectors_raise_nothing_but_codec_error(
    value: bytes, data: st.DataObject
):
    """Golden vectors cut short or with one bit flipped parse or raise a CodecError."""
    cut = data.draw(st.integers(0, len(value)))
    _parses_or_codec_error(value[:cut])
    bit = data.draw(st.integers(0, len(value) * 8 - 1))
    flipped = bytearray(value)
    flipped[bit // 8] ^= 1 << (bit % 8)
    _parses_or_codec_error(bytes(flipped))


def _text(limit: int) -> st.SearchStrategy[str]:
    return st.text(max_size=limit).filter(
        lambda s: len(s.encode("utf-8", "surrogatepass")) <= limit
    )


@settings(max_examples=200, deadline=None)
@given(
    request_id=st.integers(0, 2**32 - 1),
    window=_text(WINDOW_MAX),
    staff_name=_text(STAFF_NAME_MAX),
    staff_no=_text(STAFF_NO_MAX),
    ticket_no=_text(TICKET_NO_MAX),
    units=st.integers(1, 0xFFFF),
)
def test_every_encodable_prompt_parses_back(
    request_id: int, window: str, staff_name: str, staff_no: str, ticket_no: str, units: int
):
    """A prompt encodes into at most 244 octets that parse back to it, or raises EncodeError."""
    prompt = Prompt(request_id, window, staff_name, staff_no, ticket_no, units * 100)
    try:
        value = encode_prompt(prompt)
    except EncodeError:
        return
    assert len(value) <= MAX_VALUE
    assert parse_prompt(value) == prompt


@settings(max_examples=200, deadline=None)
@given(
    request_id=st.integers(0, 2**32 - 1),
    grade=st.sampled_from(GRADES),
    reasons=st.lists(st.sampled_from(REASONS), unique=True),
    timed_out=st.booleans(),
)
def test_every_notice_round_trips_within_one_default_mtu_notification(
    request_id: int, grade: str, reasons: list[str], timed_out: bool
):
    """Grade and timed-out notices encode into at most 20 octets and parse back to themselves."""
    notice = (
        TimeoutNotice(request_id) if timed_out else GradeNotice(request_id, grade, tuple(reasons))
    )  # type: ignore[arg-type]
    value = encode_notice(notice)
    assert len(value) <= 20
    assert parse_notice(value) == notice


@settings(max_examples=200, deadline=None)
@given(
    request_id=st.one_of(st.integers(), st.booleans(), st.none(), st.text(max_size=3)),
    text=st.one_of(st.text(max_size=80), st.integers(), st.none()),
    timeout_ms=st.one_of(st.integers(), st.floats(allow_nan=True), st.none()),
    grade=st.one_of(st.sampled_from(GRADES), st.text(max_size=5), st.integers()),
    reasons=st.one_of(
        st.lists(st.one_of(st.sampled_from(REASONS), st.text(max_size=4))).map(tuple), st.none()
    ),
)
def test_encoders_raise_nothing_but_encode_error(
    request_id: object, text: object, timeout_ms: object, grade: object, reasons: object
):
    """Encoders given ill-typed or out-of-range fields return bytes or raise EncodeError."""
    records = [
        lambda: encode_prompt(Prompt(request_id, text, "", text, "A1", timeout_ms)),  # type: ignore[arg-type]
        lambda: encode_notice(GradeNotice(request_id, grade, reasons)),  # type: ignore[arg-type]
        lambda: encode_notice(TimeoutNotice(request_id)),  # type: ignore[arg-type]
        lambda: encode_info(DeviceInfo(text, "1", request_id)),  # type: ignore[arg-type]
    ]
    for encode in records:
        with contextlib.suppress(EncodeError):
            assert isinstance(encode(), bytes)
