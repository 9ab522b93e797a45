"""The working-day calendar's rules (O11), on hand-made rows and on chinesecalendar's data."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.calendar import (
    HOLIDAY_NAMES,
    CalendarDay,
    Closure,
    NationalDay,
    OutsideSpan,
    WorkingCalendar,
    makeup_name,
)

OFFICIAL_YEARS = range(2004, 2027)


def _official_rows() -> list[NationalDay]:
    rows = [
        NationalDay(day=d, working=False, name=HOLIDAY_NAMES[n], source="official")
        for d, n in chinese_calendar.holidays.items()
    ]
    rows += [
        NationalDay(day=d, working=True, name=makeup_name(HOLIDAY_NAMES[n]), source="official")
        for d, n in chinese_calendar.workdays.items()
    ]
    return rows


OFFICIAL = _official_rows()


def official(
    extra: list[NationalDay] | None = None,
    closures: list[Closure] | None = None,
    hall_id: int | None = None,
) -> WorkingCalendar:
    return WorkingCalendar(
        [*OFFICIAL, *(extra or [])], OFFICIAL_YEARS, closures or [], hall_id=hall_id
    )


def test_the_2025_national_day_holiday_and_its_sunday_make_up_day():
    """2025-09-28 (a Sunday) is a make-up working day, 2025-10-01..08 rest, 10-11 works."""
    cal = official()
    assert cal.day(date(2025, 9, 28)) == CalendarDay(
        day=date(2025, 9, 28),
        working=True,
        name="国庆节调休上班",
        source="official",
        provisional=False,
    )
    assert cal.day(date(2025, 10, 3)) == CalendarDay(
        day=date(2025, 10, 3), working=False, name="国庆节", source="official", provisional=False
    )
    rest = [date(2025, 10, d) for d in range(1, 9)]
    assert not any(cal.is_working(d) for d in rest)
    assert cal.is_working(date(2025, 10, 11))  # a Saturday, made up
    assert cal.working_days(date(2025, 9, 26), date(2025, 10, 12)) == [
        date(2025, 9, 26),
        date(2025, 9, 28),
        date(2025, 9, 29),
        date(2025, 9, 30),
        date(2025, 10, 9),
        date(2025, 10, 10),
        date(2025, 10, 11),
    ]


def test_the_day_of_acceptance_is_not_counted():
    """O11: accepted on Friday 2025-09-26 with 3 working days, the deadline is Tuesday
    09-30 (Sunday 09-28 works); with 4 it runs across the holiday to Thursday 10-09."""
    cal = official()
    start = date(2025, 9, 26)
    assert cal.add_working_days(start, 0) == start
    assert cal.add_working_days(start, 1) == date(2025, 9, 28)
    assert cal.add_working_days(start, 3) == date(2025, 9, 30)
    assert cal.add_working_days(start, 4) == date(2025, 10, 9)
    assert cal.add_working_days(date(2025, 10, 9), -1) == date(2025, 9, 30)
    # Accepted on a holiday: the first working day after it is day 1.
    assert cal.add_working_days(date(2025, 10, 3), 1) == date(2025, 10, 9)
    assert cal.count_working_days(start, date(2025, 10, 9)) == 4
    assert cal.count_working_days(date(2025, 10, 9), start) == 0


def test_next_working_day_skips_a_holiday_span_and_may_include_the_day_itself():
    cal = official()
    assert cal.next_working(date(2025, 9, 30)) == date(2025, 10, 9)
    assert cal.next_working(date(2025, 9, 30), inclusive=True) == date(2025, 9, 30)
    assert cal.next_working(date(2025, 10, 4), inclusive=True) == date(2025, 10, 9)
    # Spring Festival 2026: 02-15..02-23 rest, Saturday 02-28 works.
    assert cal.next_working(date(2026, 2, 14)) == date(2026, 2, 24)


def test_every_official_day_agrees_with_chinesecalendar():
    """2004-2026, every day: the same working/holiday answer as the package."""
    cal = official()
    day = date(2004, 1, 1)
    while day <= date(2026, 12, 31):
        assert cal.is_working(day) == chinese_calendar.is_workday(day), day
        assert not cal.day(day).provisional
        day += timedelta(days=1)


def test_a_year_without_official_data_is_provisional_with_fixed_date_holidays():
    """2027 on: chinesecalendar has nothing; weekends and 元旦, 劳动节 (1-2 May) and 国庆节 (1-3
    Oct) rest, every day says provisional, and lunar holidays are not guessed."""
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 4))
    cal = official()
    assert cal.day(date(2027, 1, 1)) == CalendarDay(
        day=date(2027, 1, 1), working=False, name="元旦", source="rule", provisional=True
    )
    # 2028-05-01 is a Monday: 1 and 2 May rest, 3 May works.
    assert [cal.is_working(date(2028, 5, d)) for d in (1, 2, 3)] == [False, False, True]
    assert [cal.is_working(date(2027, 10, d)) for d in (1, 4, 5)] == [False, True, True]
    assert cal.day(date(2027, 10, 2)).name == "国庆节"
    # Saturday 2027-01-02 and Sunday 2027-01-03; Monday 2027-01-04 works.
    assert [cal.is_working(date(2027, 1, d)) for d in (2, 3, 4)] == [False, False, True]
    # 春节 2027 falls on 6 Feb (a Saturday); Monday 8 Feb is not known to rest.
    assert cal.day(date(2027, 2, 8)) == CalendarDay(
        day=date(2027, 2, 8), working=True, name=None, source="rule", provisional=True
    )
    assert all(cal.day(date(2027, 3, 1) + timedelta(days=i)).provisional for i in range(300))
    assert not cal.is_known_year(2027) and cal.is_known_year(2026)


def test_an_announced_year_is_no_longer_provisional():
    """An admin's schedule for 2027 decides its days, and the fixed-date rule gives way."""
    announced = [
        NationalDay(day=date(2027, 2, d), working=False, name="春节", source="admin")
        for d in range(6, 14)
    ] + [NationalDay(day=date(2027, 2, 14), working=True, name="春节调休上班", source="admin")]
    cal = WorkingCalendar([*OFFICIAL, *announced], [*OFFICIAL_YEARS, 2027])
    assert cal.day(date(2027, 2, 8)).working is False
    assert cal.day(date(2027, 2, 14)) == CalendarDay(
        day=date(2027, 2, 14), working=True, name="春节调休上班", source="admin", provisional=False
    )
    # Nothing announced for 1 Jan: in a known year only the stored rows and weekdays count.
    assert cal.day(date(2027, 1, 1)) == CalendarDay(
        day=date(2027, 1, 1), working=True, name=None, source="rule", provisional=False
    )


def test_an_admin_row_overrides_the_official_one_whatever_the_order():
    override = NationalDay(day=date(2025, 10, 8), working=True, name="更正", source="admin")
    for rows in ([*OFFICIAL, override], [override, *OFFICIAL]):
        cal = WorkingCalendar(rows, OFFICIAL_YEARS)
        assert cal.day(date(2025, 10, 8)).source == "admin"
        assert cal.is_working(date(2025, 10, 8))
    assert not official().is_working(date(2025, 10, 8))


def test_a_closure_belongs_to_one_hall_and_beats_a_make_up_day():
    closed = [
        Closure(hall_id=7, day=date(2025, 9, 28), reason="装修"),
        Closure(hall_id=8, day=date(2025, 9, 29), reason="停电"),
    ]
    hall7 = official(closures=closed, hall_id=7)
    assert hall7.day(date(2025, 9, 28)) == CalendarDay(
        day=date(2025, 9, 28), working=False, name="装修", source="closure", provisional=False
    )
    assert hall7.is_working(date(2025, 9, 29))
    assert official(closures=closed, hall_id=None).is_working(date(2025, 9, 28))
    assert hall7.add_working_days(date(2025, 9, 26), 1) == date(2025, 9, 29)


def test_a_calendar_loaded_for_a_span_refuses_days_outside_it():
    cal = WorkingCalendar([], [2025], span=(date(2025, 3, 1), date(2025, 3, 10)))
    assert cal.add_working_days(date(2025, 3, 3), 5) == date(2025, 3, 10)
    with pytest.raises(OutsideSpan) as caught:
        cal.add_working_days(date(2025, 3, 3), 6)
    assert caught.value.day == date(2025, 3, 11)
    with pytest.raises(ValueError):
        WorkingCalendar([], [], span=(date(2025, 3, 2), date(2025, 3, 1)))


@settings(max_examples=60, deadline=None)
@given(
    start=st.dates(date(2003, 1, 1), date(2028, 12, 31)),
    n=st.integers(0, 80),
)
def test_add_and_count_are_inverse_and_land_on_working_days(start: date, n: int):
    """add_working_days(s, n) is a working day (n > 0), n working days after s; going back
    n working days from it returns to the last working day at or before s."""
    cal = official()
    end = cal.add_working_days(start, n)
    assert cal.count_working_days(start, end) == n
    if n > 0:
        assert cal.is_working(end)
        assert len(cal.working_days(start + timedelta(days=1), end)) == n
        back = cal.add_working_days(end, -n)
        assert back <= start
        assert cal.is_working(back)
        assert cal.count_working_days(back, start) == 0
