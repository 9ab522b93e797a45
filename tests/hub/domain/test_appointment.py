"""Appointment rules (O2): slots of a day, the check-in window, booking limits, codes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.domain.appointment import (
    AlreadyCheckedIn,
    AppointmentCancelled,
    BookingPolicy,
    CheckInPolicy,
    CheckinTooEarly,
    CheckinTooLate,
    SlotClosed,
    SlotDef,
    TooManyNoShows,
    check_code,
    check_slots,
    day_slots,
    find_slot,
    make_code,
    require_bookable,
    require_booked,
    slot_start_at,
)
from hub.domain.errors import InvalidInput

SHANGHAI = "Asia/Shanghai"
NINE = SlotDef(start=time(9), end=time(10), capacity=10)
TEN = SlotDef(start=time(10), end=time(11), capacity=5)
SPECIAL = SlotDef(start=time(14), end=time(15), capacity=2)


def test_a_day_takes_its_explicit_slots_else_the_templates_and_none_when_not_working():
    assert day_slots(True, [TEN, NINE], []) == [NINE, TEN]
    assert day_slots(True, [NINE, TEN], [SPECIAL]) == [SPECIAL]
    assert day_slots(False, [NINE, TEN], [SPECIAL]) == []
    assert find_slot([NINE, TEN], time(10)) == TEN
    assert find_slot([NINE, TEN], time(10, 30)) is None


def test_slots_are_ordered_and_checked():
    assert check_slots([TEN, NINE]) == [NINE, TEN]
    with pytest.raises(InvalidInput) as overlap:
        check_slots([NINE, SlotDef(start=time(9, 30), end=time(10, 30), capacity=1)])
    assert overlap.value.field == "body[1].start"
    with pytest.raises(InvalidInput) as backwards:
        check_slots([SlotDef(start=time(11), end=time(10), capacity=1)])
    assert backwards.value.field == "body[0].end"
    with pytest.raises(InvalidInput):
        check_slots([SlotDef(start=time(9, 0, 30), end=time(10), capacity=1)])
    with pytest.raises(InvalidInput):
        check_slots([SlotDef(start=time(9), end=time(10), capacity=-1)])
    # Touching slots do not overlap; capacity 0 takes a slot out.
    assert len(check_slots([NINE, SlotDef(start=time(10), end=time(11), capacity=0)])) == 2


def test_the_check_in_window_runs_from_30_minutes_before_to_15_after_the_start():
    policy = CheckInPolicy()
    day = date(2025, 9, 28)
    opens, closes = policy.window(day, time(9), SHANGHAI)
    assert opens == datetime(2025, 9, 28, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
    assert closes == datetime(2025, 9, 28, 1, 15, tzinfo=UTC)  # 09:15
    policy.check(opens, day, time(9), SHANGHAI)
    policy.check(closes, day, time(9), SHANGHAI)
    with pytest.raises(CheckinTooEarly) as early:
        policy.check(opens - timedelta(seconds=1), day, time(9), SHANGHAI)
    assert early.value.code == "checkin_too_early" and "08:30-09:15" in early.value.detail
    with pytest.raises(CheckinTooLate) as late:
        policy.check(closes + timedelta(seconds=1), day, time(9), SHANGHAI)
    assert late.value.code == "checkin_too_late"


@given(
    early=st.integers(0, 240),
    late=st.integers(0, 240),
    offset=st.integers(-300 * 60, 300 * 60),
)
def test_check_in_is_allowed_exactly_inside_the_window(early: int, late: int, offset: int):
    policy = CheckInPolicy(early_minutes=early, late_minutes=late)
    day = date(2026, 5, 20)
    now = slot_start_at(day, time(10), "Asia/Urumqi") + timedelta(seconds=offset)
    inside = -early * 60 <= offset <= late * 60
    try:
        policy.check(now, day, time(10), "Asia/Urumqi")
    except (CheckinTooEarly, CheckinTooLate) as refused:
        assert not inside
        assert isinstance(refused, CheckinTooEarly) == (offset < 0)
    else:
        assert inside


def test_booking_days_and_no_shows():
    policy = BookingPolicy(days_ahead=14, no_show_limit=3)
    today = date(2025, 9, 26)
    policy.check_day(today, today)
    policy.check_day(today + timedelta(days=14), today)
    for day in (today - timedelta(days=1), today + timedelta(days=15)):
        with pytest.raises(InvalidInput) as refused:
            policy.check_day(day, today)
        assert refused.value.field == "body.service_day"
    policy.check_no_shows(2)
    with pytest.raises(TooManyNoShows):
        policy.check_no_shows(3)


def test_a_slot_is_bookable_until_it_starts():
    day = date(2025, 9, 28)
    start = slot_start_at(day, time(9), SHANGHAI)
    require_bookable(start - timedelta(microseconds=1), day, time(9), SHANGHAI)
    with pytest.raises(SlotClosed):
        require_bookable(start, day, time(9), SHANGHAI)


def test_only_a_booked_appointment_checks_in():
    require_booked("booked")
    with pytest.raises(AppointmentCancelled):
        require_booked("cancelled")
    with pytest.raises(AlreadyCheckedIn):
        require_booked("checked_in")
    with pytest.raises(CheckinTooLate):
        require_booked("no_show")


def test_codes_are_six_ascii_digits():
    assert make_code(42) == "000042"
    assert check_code(make_code(999_999)) == "999999"
    for bad in ("12345", "1234567", "12345a", "１２３４５６"):
        with pytest.raises(InvalidInput):
            check_code(bad)
    with pytest.raises(ValueError):
        make_code(1_000_000)
