"""Notification rules: mainland mobile numbers, masking, zh-CN texts, keys, the retry schedule."""

from __future__ import annotations

from datetime import date, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.domain import notification as rules
from hub.domain.errors import InvalidInput


@pytest.mark.parametrize(
    "raw",
    ["13812341234", " 138 1234 1234 ", "138-1234-1234", "+86 138 1234 1234", "008613812341234"],
)
def test_a_mainland_mobile_number_is_kept_as_its_11_digits(raw: str):
    """Spaces, hyphens and the +86 / 0086 prefixes go; the 11 digits stay."""
    assert rules.normalize_phone(raw) == "13812341234"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "1381234123",  # 10 digits
        "138123412345",  # 12 digits
        "12812341234",  # 12x is no mobile prefix
        "23812341234",
        "+85291234567",  # Hong Kong: not through this gateway
        "8613812341234",  # a country code without + or 00 is ambiguous
        "１３８１２３４１２３４",  # full-width digits
        "138١٢٣٤١٢٣٤",  # Arabic-Indic digits match \d but are not ASCII
        "1381234123x",
    ],
)
def test_anything_else_is_invalid_input_naming_the_field(raw: str):
    """The error names the caller's field and never repeats the number."""
    with pytest.raises(InvalidInput) as caught:
        rules.normalize_phone(raw, field="body.phone")
    assert caught.value.field == "body.phone"
    assert raw.strip() == "" or raw not in caught.value.detail


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_every_mainland_mobile_number_is_accepted_and_masked_to_its_ends(phone: str):
    """Masking keeps the first 3 and last 4 digits: enough for the applicant to recognise."""
    assert rules.normalize_phone(phone) == phone
    masked = rules.mask_phone(phone)
    assert masked == phone[:3] + "****" + phone[-4:]


def test_mask_example():
    assert rules.mask_phone("13812341234") == "138****1234"
    assert rules.mask_phone("1234") == "****"


def test_turn_near_text():
    """The Q8 message; the signature is added by the dispatcher, not stored."""
    body = rules.turn_near_text("A001", 2)
    assert body == "您的A001号前面还有2位，请到大厅等候叫号。"
    assert rules.signed(rules.DEFAULT_SIGN, body) == (
        "【政务服务中心】您的A001号前面还有2位，请到大厅等候叫号。"
    )
    assert rules.turn_near_text("B012", 0) == "您的B012号即将被叫号，请到大厅等候叫号。"
    with pytest.raises(ValueError):
        rules.turn_near_text("A001", -1)


def test_appointment_reminder_text():
    body = rules.appointment_reminder_text(
        "户籍", date(2026, 5, 20), time(9, 30), "城东政务服务中心"
    )
    assert body == (
        "您预约的户籍业务将于2026年5月20日 09:30开始，请按时到城东政务服务中心签到取号。"
    )


def test_keys_name_their_cause():
    assert rules.turn_near_key(42) == "turn_near:42"
    assert (
        rules.appointment_reminder_key(7, date(2026, 5, 20)) == "appointment_reminder:7:2026-05-20"
    )
    assert rules.check_key(rules.turn_near_key(42)) == "turn_near:42"


@pytest.mark.parametrize("key", ["", "turn near:1", "turn_near:1\r\nX-Evil: 1", "键:1", "k" * 201])
def test_a_key_that_cannot_travel_in_a_header_is_refused(key: str):
    with pytest.raises(InvalidInput) as caught:
        rules.check_key(key)
    assert caught.value.field == "key"


@pytest.mark.parametrize("kind", ["", "TurnNear", "turn-near", "1kind", "k" * 41])
def test_a_kind_is_snake_case(kind: str):
    with pytest.raises(InvalidInput) as caught:
        rules.check_kind(kind)
    assert caught.value.field == "kind"


@pytest.mark.parametrize("body", ["", "   ", "字" * (rules.BODY_MAX + 1)])
def test_a_body_has_visible_text_within_bounds(body: str):
    with pytest.raises(InvalidInput) as caught:
        rules.check_body(body)
    assert caught.value.field == "body"


def test_the_retry_schedule_doubles_up_to_its_cap_then_gives_up():
    delays = [rules.retry_delay(n) for n in range(1, rules.MAX_ATTEMPTS + 1)]
    assert delays == [10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 600.0, None]
    with pytest.raises(ValueError):
        rules.retry_delay(0)


@given(st.integers(min_value=1, max_value=10_000))
def test_every_delay_is_bounded_and_the_schedule_ends(attempts: int):
    delay = rules.retry_delay(attempts)
    if attempts >= rules.MAX_ATTEMPTS:
        assert delay is None
    else:
        assert delay is not None and rules.RETRY_BASE_SECONDS <= delay <= rules.RETRY_CAP_SECONDS
