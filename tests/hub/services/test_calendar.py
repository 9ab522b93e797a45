"""The working-day calendar on PostgreSQL (O11): the official data, the SQL functions against
the Python calendar on generated overrides, closures and announced years, and the changes."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import chinese_calendar
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.access import Place
from hub.domain.calendar import HOLIDAY_NAMES, CalendarDay, makeup_name
from hub.domain.errors import Conflict, InvalidInput, NotFound
from hub.services import calendar
from hub.services.access import hall_place
from tests.factories import make_hall
from tests.hub.conftest import SYSTEM

ROOT = Path(__file__).resolve().parents[3]
NATIONAL = Place(region_path="/1/")


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _sql_days(rows: list[asyncpg.Record]) -> list[CalendarDay]:
    return [msgspec.convert(dict(r), CalendarDay) for r in rows]


@pytest.fixture
async def halls(db: asyncpg.Pool) -> tuple[int, int]:
    first = await make_hall(db, "cal1", city_code="c1")
    second = await make_hall(db, "cal2", city_code="c1")
    return first.hall_id, second.hall_id


def test_the_official_migration_is_what_the_script_generates():
    """007_calendar_official.sql is the script's output for the installed chinesecalendar."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_calendar.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


async def test_the_stored_official_years_agree_with_chinesecalendar_day_by_day(db: asyncpg.Pool):
    """2004-2026 from SQL: working exactly when the package says, with the Chinese names."""
    rows = await db.fetch("SELECT * FROM hall_calendar(NULL, '2004-01-01', '2026-12-31')")
    assert len(rows) == (date(2026, 12, 31) - date(2004, 1, 1)).days + 1
    for row in rows:
        day = row["day"]
        assert row["working"] == chinese_calendar.is_workday(day), day
        assert row["provisional"] is False
        is_holiday, english = chinese_calendar.get_holiday_detail(day)
        if english is None:
            assert (row["name"], row["source"]) == (None, "rule"), day
        else:
            name = HOLIDAY_NAMES[english]
            assert row["name"] == (name if is_holiday else makeup_name(name)), day
            assert row["source"] == "official"
    years = await calendar.list_years(db)
    assert [(y.year, y.source) for y in years] == [(y, "official") for y in range(2004, 2027)]


async def test_2025_09_28_works_and_2025_10_03_rests_in_sql(db: asyncpg.Pool):
    answers = await db.fetch(
        "SELECT d, hall_is_working_day(NULL, d) AS w "
        "FROM unnest('{2025-09-28,2025-10-03,2027-01-01,2027-01-04}'::date[]) d ORDER BY d"
    )
    assert [r["w"] for r in answers] == [True, False, False, True]
    assert await db.fetchval("SELECT hall_add_working_days(NULL, '2025-09-26', 4)") == date(
        2025, 10, 9
    )


# --- Python and SQL agree -----------------------------------------------------------------

CHANGES = st.fixed_dictionaries(
    {
        # Days near one another, so that overrides, closures and questions meet.
        "base": st.dates(date(2003, 6, 1), date(2030, 6, 30)),
        "overrides": st.lists(
            st.tuples(st.integers(-90, 90), st.booleans(), st.sampled_from([None, "补班", "假"])),
            max_size=12,
        ),
        "closures": st.lists(st.tuples(st.integers(0, 1), st.integers(-90, 90)), max_size=12),
        "announced": st.sets(st.sampled_from([2027, 2028, 2029, 2030]), max_size=2),
        "hall": st.sampled_from([None, 0, 1]),
        "days": st.lists(st.integers(-120, 120), min_size=1, max_size=20),
        "sums": st.lists(st.tuples(st.integers(-100, 100), st.integers(-40, 90)), max_size=10),
        "range": st.tuples(st.integers(-120, 0), st.integers(0, 150)),
    }
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(change=CHANGES)
async def test_python_and_sql_give_the_same_answers(
    db: asyncpg.Pool, halls: tuple[int, int], change: dict[str, Any]
):
    """On random admin rows, closures of two halls and announced years: every day's answer,
    hall_is_working_day, hall_add_working_days and hall_count_working_days equal Python's
    (the service's windowed arithmetic included)."""
    base: date = change["base"]

    def at(offset: int) -> date:
        return base + timedelta(days=offset)

    hall = None if change["hall"] is None else halls[change["hall"]]
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            for offset, working, name in change["overrides"]:
                await conn.execute(
                    "INSERT INTO calendar_day (day, source, working, name) "
                    "VALUES ($1, 'admin', $2, $3) ON CONFLICT DO NOTHING",
                    at(offset),
                    working,
                    name,
                )
            for which, offset in change["closures"]:
                await conn.execute(
                    "INSERT INTO hall_closure (hall_id, day, reason) VALUES ($1, $2, '闭厅') "
                    "ON CONFLICT DO NOTHING",
                    halls[which],
                    at(offset),
                )
            for year in change["announced"]:
                await conn.execute(
                    "INSERT INTO calendar_year (year, source) VALUES ($1, 'admin')", year
                )
            python = await calendar.load_calendar(conn, hall)

            first, last = at(change["range"][0]), at(change["range"][1])
            sql_days = await conn.fetch(
                "SELECT * FROM hall_calendar($1, $2, $3)", hall, first, last
            )
            assert _sql_days(sql_days) == python.days(first, last)
            windowed = await calendar.load_calendar(conn, hall, first, last)
            assert windowed.days(first, last) == python.days(first, last)

            days = [at(o) for o in change["days"]]
            working = await conn.fetch(
                "SELECT hall_is_working_day($1, d) AS w FROM unnest($2::date[]) WITH ORDINALITY "
                "AS t(d, i) ORDER BY i",
                hall,
                days,
            )
            assert [r["w"] for r in working] == [python.is_working(d) for d in days]

            starts = [at(o) for o, _ in change["sums"]]
            ns = [n for _, n in change["sums"]]
            sums = await conn.fetch(
                "SELECT hall_add_working_days($1, s, n) AS due, "
                "hall_count_working_days($1, s, s + 30) AS counted "
                "FROM unnest($2::date[], $3::int[]) WITH ORDINALITY AS t(s, n, i) ORDER BY i",
                hall,
                starts,
                ns,
            )
            for (start, n), row in zip(zip(starts, ns, strict=True), sums, strict=True):
                assert row["due"] == python.add_working_days(start, n), (start, n)
                assert row["counted"] == python.count_working_days(start, start + timedelta(30))
                assert await calendar.add_working_days(conn, hall, start, n) == row["due"]
        finally:
            await tx.rollback()


async def test_every_day_of_2003_to_2031_agrees_for_the_nation_and_a_closed_hall(
    db: asyncpg.Pool, halls: tuple[int, int]
):
    """A full sweep, both sides of the official years, with an admin row and closures."""
    await calendar.set_day(
        db, SYSTEM, NATIONAL, date(2026, 12, 31), calendar.DayOverride(working=False, name="跨年")
    )
    await calendar.close_day(
        db,
        SYSTEM,
        await hall_place(db, halls[0]),
        date(2026, 1, 5),
        calendar.ClosureNew(reason="盘点"),
    )
    first, last = date(2003, 1, 1), date(2031, 12, 31)
    for hall in (None, halls[0], halls[1]):
        python = await calendar.load_calendar(db, hall)
        rows = await db.fetch("SELECT * FROM hall_calendar($1, $2, $3)", hall, first, last)
        assert _sql_days(rows) == python.days(first, last)
    assert not (await calendar.load_calendar(db, halls[0])).is_working(date(2026, 1, 5))
    assert (await calendar.load_calendar(db, halls[1])).is_working(date(2026, 1, 5))


# --- changes ------------------------------------------------------------------------------


async def _audit(db: asyncpg.Pool) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT action, target_kind, target_id, before, after, hall_id FROM audit_log ORDER BY id"
    )


async def test_an_admin_override_wins_and_removing_it_restores_the_official_day(db: asyncpg.Pool):
    day = date(2025, 10, 8)
    changed = await calendar.set_day(
        db, SYSTEM, NATIONAL, day, calendar.DayOverride(working=True, name="更正")
    )
    assert changed == CalendarDay(
        day=day, working=True, name="更正", source="admin", provisional=False
    )
    assert await calendar.is_working_day(db, None, day)
    assert await db.fetchval("SELECT hall_is_working_day(NULL, $1)", day)
    restored = await calendar.clear_day(db, SYSTEM, NATIONAL, day)
    assert restored == CalendarDay(
        day=day, working=False, name="国庆节", source="official", provisional=False
    )
    with pytest.raises(NotFound) as missing:
        await calendar.clear_day(db, SYSTEM, NATIONAL, day)
    assert missing.value.field == "path.day"
    rows = await _audit(db)
    assert [(r["action"], r["target_kind"], r["target_id"]) for r in rows] == [
        ("calendar.set_day", "calendar_day", "2025-10-08"),
        ("calendar.clear_day", "calendar_day", "2025-10-08"),
    ]
    assert rows[0]["before"] is None and rows[0]["after"]["working"] is True
    assert rows[1]["before"]["name"] == "更正" and rows[1]["after"] is None


async def test_a_change_and_its_audit_row_share_the_callers_transaction(db: asyncpg.Pool):
    """Given a connection, the change joins its transaction: a rollback leaves neither."""
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await calendar.set_day(
            conn, SYSTEM, NATIONAL, date(2027, 2, 8), calendar.DayOverride(working=False)
        )
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 1
        await tx.rollback()
    assert await db.fetchval("SELECT count(*) FROM calendar_day WHERE source = 'admin'") == 0
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 0


async def test_announcing_a_year_ends_its_provisional_state(db: asyncpg.Pool):
    """2027 announced: its Spring Festival rests, its make-up day works, no day is provisional,
    and an announcement again replaces the first."""
    assert (await calendar.day_of(db, None, date(2027, 3, 1))).provisional
    spring = [
        calendar.AnnouncedDay(day=date(2027, 2, d), working=False, name="春节")
        for d in range(5, 13)
    ]
    makeup = calendar.AnnouncedDay(day=date(2027, 2, 20), working=True, name="春节调休上班")
    new_year = calendar.AnnouncedDay(day=date(2027, 1, 1), working=False, name="元旦")
    year = await calendar.announce_year(
        db,
        SYSTEM,
        NATIONAL,
        2027,
        calendar.YearAnnouncement(days=[*spring, makeup, new_year], note="国办发明电"),
    )
    assert (year.year, year.source, year.note) == (2027, "admin", "国办发明电")
    view = await calendar.calendar_view(db, None, date(2027, 1, 1), date(2027, 12, 31))
    assert view.provisional_years == []
    assert not any(d.provisional for d in view.days)
    assert await calendar.working_days(db, None, date(2027, 2, 4), date(2027, 2, 20)) == [
        date(2027, 2, 4),
        date(2027, 2, 15),
        date(2027, 2, 16),
        date(2027, 2, 17),
        date(2027, 2, 18),
        date(2027, 2, 19),
        date(2027, 2, 20),
    ]
    assert await db.fetchval("SELECT hall_add_working_days(NULL, '2027-02-04', 1)") == date(
        2027, 2, 15
    )
    # 1 May is no longer assumed: the announcement did not name it.
    assert await calendar.is_working_day(db, None, date(2027, 5, 3))
    assert (await calendar.day_of(db, None, date(2027, 5, 1))).source == "rule"

    await calendar.announce_year(
        db, SYSTEM, NATIONAL, 2027, calendar.YearAnnouncement(days=[new_year])
    )
    assert await calendar.is_working_day(db, None, date(2027, 2, 8))
    assert await db.fetchval("SELECT count(*) FROM calendar_day WHERE source = 'admin'") == 1
    [first, second] = [r for r in await _audit(db)]
    assert first["action"] == second["action"] == "calendar.announce"
    assert len(second["before"]["days"]) == 10 and len(second["after"]["days"]) == 1


async def test_an_announcement_is_refused_for_an_official_year_or_a_stray_day(db: asyncpg.Pool):
    with pytest.raises(Conflict) as official:
        await calendar.announce_year(db, SYSTEM, NATIONAL, 2025, calendar.YearAnnouncement(days=[]))
    assert official.value.field == "path.year"
    stray = calendar.YearAnnouncement(
        days=[
            calendar.AnnouncedDay(day=date(2028, 1, 1), working=False),
            calendar.AnnouncedDay(day=date(2029, 1, 1), working=False),
        ]
    )
    with pytest.raises(InvalidInput) as wrong_year:
        await calendar.announce_year(db, SYSTEM, NATIONAL, 2028, stray)
    assert wrong_year.value.field == "body.days[1].day"
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 0


async def test_a_closure_affects_its_hall_only_and_can_be_reopened(
    db: asyncpg.Pool, halls: tuple[int, int]
):
    place = await hall_place(db, halls[0])
    monday = date(2025, 11, 3)
    closed = await calendar.close_day(
        db, SYSTEM, place, monday, calendar.ClosureNew(reason=" 设备检修 ")
    )
    assert closed == CalendarDay(
        day=monday, working=False, name="设备检修", source="closure", provisional=False
    )
    assert not await calendar.is_working_day(db, halls[0], monday)
    assert await calendar.is_working_day(db, halls[1], monday)
    assert await calendar.is_working_day(db, None, monday)
    assert await calendar.next_working_day(db, halls[0], date(2025, 10, 31)) == date(2025, 11, 4)
    assert await calendar.next_working_day(db, halls[1], date(2025, 10, 31)) == monday
    assert [c.reason for c in await calendar.closures(db, halls[0], monday, monday)] == ["设备检修"]

    reopened = await calendar.reopen_day(db, SYSTEM, place, monday)
    assert reopened.working and reopened.source == "rule"
    with pytest.raises(NotFound):
        await calendar.reopen_day(db, SYSTEM, place, monday)
    rows = await _audit(db)
    assert [(r["action"], r["target_id"], r["hall_id"]) for r in rows] == [
        ("calendar.close", f"{halls[0]}:2025-11-03", halls[0]),
        ("calendar.reopen", f"{halls[0]}:2025-11-03", halls[0]),
    ]


async def test_arithmetic_past_the_loaded_window_loads_the_whole_calendar(
    db: asyncpg.Pool, halls: tuple[int, int]
):
    """A hall closed for 200 days: the 3rd working day after is still found, as SQL finds it."""
    start = date(2026, 3, 2)
    await db.executemany(
        "INSERT INTO hall_closure (hall_id, day, reason) VALUES ($1, $2, '改造')",
        [(halls[0], start + timedelta(days=i)) for i in range(1, 201)],
    )
    due = await calendar.add_working_days(db, halls[0], start, 3)
    assert due == await db.fetchval("SELECT hall_add_working_days($1, $2, 3)", halls[0], start)
    assert due > start + timedelta(days=200)
    assert await calendar.count_working_days(db, halls[0], start, due) == 3
    assert await calendar.count_working_days(db, halls[0], due, start) == 0


async def test_a_range_is_checked(db: asyncpg.Pool):
    with pytest.raises(InvalidInput) as backwards:
        await calendar.calendar_view(db, None, date(2025, 2, 1), date(2025, 1, 1))
    assert backwards.value.field == "query.to"
    with pytest.raises(InvalidInput) as long:
        await calendar.calendar_view(db, None, date(2025, 1, 1), date(2026, 2, 5))
    assert long.value.field == "query.to"
    view = await calendar.calendar_view(db, None, date(2026, 12, 1), date(2027, 1, 31))
    assert view.provisional_years == [2027]
    assert len(view.days) == 62
