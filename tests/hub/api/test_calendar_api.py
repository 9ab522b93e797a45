"""The working-day calendar over HTTP (O11): reading it, national overrides by a province's
admins, closures by the hall's managers, audit rows, and problems for bad input."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.hub.api.conftest import Client, World, assert_problem, bearer, error_fields


async def _get(client: Client, world: World, staff_no: str, **query: Any) -> Any:
    params = {k.rstrip("_"): v for k, v in query.items()}
    return await client.get("/api/calendar", params=params, headers=bearer(world.tokens[staff_no]))


def _by_day(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["day"]: d for d in body["days"]}


async def _close(
    client: Client, world: World, staff_no: str, hall: int, day: str, reason: str = "设备检修"
) -> Any:
    return await client.put(
        f"/api/halls/{hall}/closures/{day}",
        json={"reason": reason},
        headers=bearer(world.tokens[staff_no]),
    )


async def _set(client: Client, world: World, staff_no: str, day: str, body: Any) -> Any:
    return await client.put(
        f"/api/calendar/days/{day}", json=body, headers=bearer(world.tokens[staff_no])
    )


async def test_a_halls_calendar_shows_holidays_make_up_days_and_its_closures(
    client: Client, world: World
):
    """Hall a1 closed on 2025-11-03: its staff see the closure, the official days around the
    National Day holiday, and hall b is not affected."""
    a1, b = world.org.hall_a1, world.org.hall_b
    closed = await _close(client, world, "manager_a1", a1, "2025-11-03")
    assert closed.status_code == 200, closed.text
    assert closed.json() == {
        "day": "2025-11-03",
        "working": False,
        "name": "设备检修",
        "source": "closure",
        "provisional": False,
    }
    response = await _get(
        client, world, "clerk_a1", from_="2025-09-26", to="2025-11-05", hall_id=a1
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["hall_id"], body["start"], body["end"]) == (a1, "2025-09-26", "2025-11-05")
    assert body["provisional_years"] == []
    days = _by_day(body)
    assert len(days) == 41
    assert days["2025-09-28"] | {"day": None} == {
        "day": None,
        "working": True,
        "name": "国庆节调休上班",
        "source": "official",
        "provisional": False,
    }
    assert (days["2025-10-03"]["working"], days["2025-10-03"]["name"]) == (False, "国庆节")
    assert (days["2025-11-03"]["working"], days["2025-11-03"]["source"]) == (False, "closure")
    assert (days["2025-11-04"]["working"], days["2025-11-04"]["source"]) == (True, "rule")

    other = await _get(client, world, "manager_b", from_="2025-11-03", to="2025-11-03", hall_id=b)
    assert other.json()["days"][0]["working"] is True
    national = await _get(client, world, "intern_a1", from_="2025-11-03", to="2025-11-03")
    assert national.status_code == 200
    assert national.json()["hall_id"] is None
    assert national.json()["days"][0]["source"] == "rule"


async def test_a_year_without_official_data_is_marked_provisional(client: Client, world: World):
    response = await _get(client, world, "clerk_a1", from_="2026-12-31", to="2027-01-04")
    body = response.json()
    assert body["provisional_years"] == [2027]
    assert [(d["day"], d["working"], d["provisional"]) for d in body["days"]] == [
        ("2026-12-31", True, False),
        ("2027-01-01", False, True),
        ("2027-01-02", False, True),
        ("2027-01-03", False, True),
        ("2027-01-04", True, True),
    ]
    assert body["days"][1]["name"] == "元旦"


async def test_a_hall_outside_the_callers_scope_is_not_shown(client: Client, world: World):
    response = await _get(
        client, world, "manager_b", from_="2025-01-01", to="2025-01-31", hall_id=world.org.hall_a1
    )
    assert_problem(response, 403, "forbidden")
    missing = await _get(
        client, world, "root_admin", from_="2025-01-01", to="2025-01-02", hall_id=999
    )
    assert error_fields(assert_problem(missing, 404, "not_found")) == ["query.hall_id"]
    anonymous = await client.get("/api/calendar", params={"from": "2025-01-01", "to": "2025-01-02"})
    assert_problem(anonymous, 401, "unauthenticated")


async def test_bad_dates_and_ranges_are_problems_naming_the_field(client: Client, world: World):
    cases: list[tuple[dict[str, str], str]] = [
        ({"from": "2025-13-01", "to": "2025-12-31"}, "query.from"),
        ({"from": "2025-01-01", "to": "20250131"}, "query.to"),
        ({"from": "2025-1-1", "to": "2025-01-31"}, "query.from"),
        ({"from": "2025-02-01", "to": "2025-01-31"}, "query.to"),
        ({"from": "2025-01-01", "to": "2026-02-05"}, "query.to"),
        ({"from": "1899-01-01", "to": "1899-01-02"}, "query.from"),
        ({"to": "2025-01-31"}, "query.from"),
        ({"from": "2025-01-01", "to": "2025-01-31", "hall_id": "a1"}, "query.hall_id"),
    ]
    for params, field in cases:
        response = await client.get(
            "/api/calendar", params=params, headers=bearer(world.tokens["clerk_a1"])
        )
        problem = assert_problem(response, 422, "invalid_input")
        assert error_fields(problem) == [field], (params, problem)

    bad_day = await _set(client, world, "root_admin", "2025-02-30", {"working": True})
    assert error_fields(assert_problem(bad_day, 422, "invalid_input")) == ["path.day"]
    no_working = await _set(client, world, "root_admin", "2027-02-08", {"name": "春节"})
    assert error_fields(assert_problem(no_working, 422, "invalid_input")) == ["body.working"]
    blank = await _close(client, world, "manager_a1", world.org.hall_a1, "2027-02-08", "  ")
    assert error_fields(assert_problem(blank, 422, "invalid_input")) == ["body.reason"]


async def test_window_staff_may_neither_override_nor_close(
    client: Client, world: World, db: asyncpg.Pool
):
    refused = await _set(client, world, "clerk_a1", "2027-02-08", {"working": False})
    assert_problem(refused, 403, "forbidden")
    closed = await _close(client, world, "clerk_a1", world.org.hall_a1, "2027-02-08")
    assert_problem(closed, 403, "forbidden")
    assert await db.fetchval("SELECT count(*) FROM hall_closure") == 0
    assert await db.fetchval("SELECT count(*) FROM calendar_day WHERE source = 'admin'") == 0


async def test_only_an_admin_of_a_province_changes_the_national_calendar(
    client: Client, world: World, db: asyncpg.Pool
):
    """A city admin is refused; the province admin's change is audited under its grant, and
    deleting it brings back the official day."""
    city = await _set(client, world, "admin_a", "2025-10-08", {"working": True, "name": "更正"})
    assert_problem(city, 403, "forbidden")
    manager = await _set(client, world, "manager_a1", "2025-10-08", {"working": True})
    assert_problem(manager, 403, "forbidden")

    before = await db.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    response = await _set(
        client, world, "root_admin", "2025-10-08", {"working": True, "name": "更正"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "day": "2025-10-08",
        "working": True,
        "name": "更正",
        "source": "admin",
        "provisional": False,
    }
    [row] = await db.fetch(
        "SELECT actor_id, role, scope_kind, scope_id, action, target_kind, target_id, "
        "region_path, after FROM audit_log WHERE id > $1",
        before,
    )
    province_path = await db.fetchval("SELECT path FROM region WHERE id = $1", world.org.province)
    assert dict(row) | {"after": None} == {
        "actor_id": world.staff["root_admin"],
        "role": "admin",
        "scope_kind": "region",
        "scope_id": world.org.province,
        "action": "calendar.set_day",
        "target_kind": "calendar_day",
        "target_id": "2025-10-08",
        "region_path": province_path,
        "after": None,
    }
    assert row["after"]["source"] == "admin" and row["after"]["working"] is True
    read = await _get(client, world, "clerk_a1", from_="2025-10-08", to="2025-10-08")
    assert read.json()["days"][0]["working"] is True

    cleared = await client.delete(
        "/api/calendar/days/2025-10-08", headers=bearer(world.tokens["root_admin"])
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["source"], cleared.json()["name"]) == ("official", "国庆节")
    again = await client.delete(
        "/api/calendar/days/2025-10-08", headers=bearer(world.tokens["root_admin"])
    )
    assert error_fields(assert_problem(again, 404, "not_found")) == ["path.day"]
    actions = await db.fetch("SELECT action FROM audit_log WHERE id > $1 ORDER BY id", before)
    assert [r["action"] for r in actions] == ["calendar.set_day", "calendar.clear_day"]


async def test_a_hall_manager_closes_its_own_hall_only(
    client: Client, world: World, db: asyncpg.Pool
):
    a1, b = world.org.hall_a1, world.org.hall_b
    assert_problem(await _close(client, world, "manager_a1", b, "2025-12-01"), 403, "forbidden")
    assert_problem(await _close(client, world, "admin_a", b, "2025-12-01"), 403, "forbidden")
    assert_problem(await _close(client, world, "supervisor_a", a1, "2025-12-01"), 403, "forbidden")
    assert (await _close(client, world, "admin_b", b, "2025-12-01", "停电")).status_code == 200
    assert (await _close(client, world, "manager_a1", a1, "2025-12-02")).status_code == 200
    rows = await db.fetch(
        "SELECT actor_id, role, action, target_kind, target_id, hall_id FROM audit_log "
        "WHERE action LIKE 'calendar.%' ORDER BY id"
    )
    assert [dict(r) for r in rows] == [
        {
            "actor_id": world.staff["admin_b"],
            "role": "admin",
            "action": "calendar.close",
            "target_kind": "hall_closure",
            "target_id": f"{b}:2025-12-01",
            "hall_id": b,
        },
        {
            "actor_id": world.staff["manager_a1"],
            "role": "hall_manager",
            "action": "calendar.close",
            "target_kind": "hall_closure",
            "target_id": f"{a1}:2025-12-02",
            "hall_id": a1,
        },
    ]
    refused = await client.delete(
        f"/api/halls/{b}/closures/2025-12-01", headers=bearer(world.tokens["manager_a1"])
    )
    assert_problem(refused, 403, "forbidden")
    reopened = await client.delete(
        f"/api/halls/{a1}/closures/2025-12-02", headers=bearer(world.tokens["manager_a1"])
    )
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["working"] is True
    assert await db.fetchval("SELECT count(*) FROM hall_closure") == 1


async def test_announcing_a_year_through_the_api(client: Client, world: World, db: asyncpg.Pool):
    body = {
        "note": "国务院办公厅通知",
        "days": [
            {"day": "2027-02-08", "working": False, "name": "春节"},
            {"day": "2027-02-20", "working": True, "name": "春节调休上班"},
        ],
    }
    url = "/api/calendar/years/2027/announce"
    assert_problem(
        await client.post(url, json=body, headers=bearer(world.tokens["admin_a"])), 403, "forbidden"
    )
    response = await client.post(url, json=body, headers=bearer(world.tokens["root_admin"]))
    assert response.status_code == 200, response.text
    assert (response.json()["year"], response.json()["source"]) == (2027, "admin")
    read = await _get(client, world, "clerk_a1", from_="2027-02-08", to="2027-02-20")
    assert read.json()["provisional_years"] == []
    days = _by_day(read.json())
    assert days["2027-02-08"]["working"] is False and days["2027-02-20"]["working"] is True
    years = await client.get("/api/calendar/years", headers=bearer(world.tokens["clerk_a1"]))
    assert [(y["year"], y["source"]) for y in years.json()][-2:] == [
        (2026, "official"),
        (2027, "admin"),
    ]
    official = await client.post(
        "/api/calendar/years/2025/announce",
        json={"days": []},
        headers=bearer(world.tokens["root_admin"]),
    )
    assert error_fields(assert_problem(official, 409, "conflict")) == ["path.year"]
    assert (
        await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'calendar.announce'") == 1
    )
