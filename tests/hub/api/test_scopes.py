"""What each caller sees and may hand out through the API: lists, grants, audit, devices."""

from __future__ import annotations

from tests.hub.api.conftest import Client, World, assert_problem, bearer


async def _get(client: Client, world: World, staff_no: str, path: str) -> list[dict[str, object]]:
    response = await client.get(path, headers=bearer(world.tokens[staff_no]))
    assert response.status_code == 200, response.text
    body: list[dict[str, object]] = response.json()
    return body


async def test_a_city_supervisor_lists_every_hall_of_its_city_only(
    client: Client, world: World
) -> None:
    """Halls of the city and its counties; none of city B."""
    halls = await _get(client, world, "supervisor_a", "/api/halls")
    assert [h["code"] for h in halls] == ["a1", "a"]
    assert [h["code"] for h in await _get(client, world, "root_admin", "/api/halls")] == [
        "a1",
        "a",
        "b",
    ]


async def test_a_hall_manager_cannot_grant_more_than_window_staff(
    client: Client, world: World
) -> None:
    """Making someone hall manager or supervisor needs an admin."""
    for role in ("hall_manager", "supervisor", "admin"):
        response = await client.post(
            "/api/grants",
            json={
                "staff_id": world.staff["intern_a1"],
                "role": role,
                "scope_kind": "hall",
                "scope_id": world.org.hall_a1,
            },
            headers=bearer(world.tokens["manager_a1"]),
        )
        assert_problem(response, 403, "forbidden")


async def test_a_city_admin_may_make_a_county_admin(client: Client, world: World) -> None:
    """Admin of A grants admin of county A1 to a staff member of hall a1."""
    response = await client.post(
        "/api/grants",
        json={
            "staff_id": world.staff["intern_a1"],
            "role": "admin",
            "scope_kind": "region",
            "scope_id": world.org.county_a1,
        },
        headers=bearer(world.tokens["admin_a"]),
    )
    assert response.status_code == 201, response.text


async def test_a_hall_manager_cannot_create_staff_outside_its_hall(
    client: Client, world: World
) -> None:
    """A staff member of the region or another hall is out of a hall manager's reach."""
    for home in ({"region_id": world.org.city_a}, {"hall_id": world.org.hall_b}):
        response = await client.post(
            "/api/staff",
            json={"staff_no": "x1", "name": "x", "password": "long enough", **home},
            headers=bearer(world.tokens["manager_a1"]),
        )
        assert_problem(response, 403, "forbidden")


async def test_root_regions_are_not_created_through_the_api(client: Client, world: World) -> None:
    """Even the province admin gets 403 for a region without parent."""
    response = await client.post(
        "/api/regions",
        json={"level": "province", "code": "Q", "name": "Q"},
        headers=bearer(world.tokens["root_admin"]),
    )
    assert_problem(response, 403, "forbidden")


async def test_the_audit_log_shows_each_reader_its_scope(client: Client, world: World) -> None:
    """City A's supervisor sees a window created in hall a1, not one in hall b."""
    for staff_no, hall in (("manager_a1", world.org.hall_a1), ("manager_b", world.org.hall_b)):
        response = await client.post(
            f"/api/halls/{hall}/windows",
            json={"number": 9},
            headers=bearer(world.tokens[staff_no]),
        )
        assert response.status_code == 201
    rows = await _get(client, world, "supervisor_a", "/api/audit?action=window.create")
    assert [(r["hall_id"], r["actor_label"]) for r in rows] == [
        (world.org.hall_a1, "manager_a1"),
        (world.org.hall_a1, "test"),
    ]
    rows = await _get(client, world, "manager_b", "/api/audit?action=window.")
    assert {r["hall_id"] for r in rows} == {world.org.hall_b}


async def test_the_audit_log_filters_by_actor_and_time(client: Client, world: World) -> None:
    """actor=<staff id> and a time range select that staff member's rows."""
    await client.post(
        "/api/devices",
        json={"hall_id": world.org.hall_a1, "kind": "evaluator", "name": "pad"},
        headers=bearer(world.tokens["manager_a1"]),
    )
    actor = world.staff["manager_a1"]
    rows = await _get(
        client, world, "root_admin", f"/api/audit?actor={actor}&since=2000-01-01T00:00:00Z"
    )
    assert [r["action"] for r in rows] == ["device.register", "session.sign_in"]
    assert await _get(client, world, "root_admin", "/api/audit?until=2000-01-01T00:00:00Z") == []


async def test_a_device_token_is_shown_once(client: Client, world: World) -> None:
    """The registration answer holds the token; the device list does not."""
    response = await client.post(
        "/api/devices",
        json={"hall_id": world.org.hall_a1, "kind": "ticket_machine", "name": "取号机"},
        headers=bearer(world.tokens["manager_a1"]),
    )
    created = response.json()
    assert len(created["token"]) == 43
    listed = await _get(client, world, "manager_a1", f"/api/devices?hall_id={world.org.hall_a1}")
    assert created["device"] in listed
    assert all("token" not in d and "token_hash" not in d for d in listed)
