"""The hall's queue configuration over HTTP (hub/api/queue_admin.py): groups, settings,
honours and the manager console's read model; audited, announced on ``hall:<id>``, refused
outside the hall managers' role and scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from hub.runtime import Hub
from realtime.messages import Event, Snapshot
from tests.hub.api.conftest import Client, World, assert_problem, bearer, error_fields
from tests.realtime.peers import Peer, gateway_url


def _hall(world: World) -> str:
    return f"/api/halls/{world.org.hall_a1}"


async def _create_group(client: Client, world: World, prefix: str, name: str) -> dict[str, Any]:
    response = await client.post(
        f"{_hall(world)}/groups",
        json={"prefix": prefix, "name": name},
        headers=bearer(world.tokens["manager_a1"]),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _send(
    client: Client, world: World, staff_no: str, method: str, path: str, body: object = None
) -> Any:
    return await client.request(method, path, json=body, headers=bearer(world.tokens[staff_no]))


async def _open_all_day(client: Client, world: World) -> None:
    """Tickets may be issued whatever the hour the test runs at."""
    response = await _send(client, world, "manager_a1", "PATCH", f"{_hall(world)}/queue-settings",
                           {"opens_minute": 0, "closes_minute": 1440})  # fmt: skip
    assert response.status_code == 200, response.text


@asynccontextmanager
async def _display(client: Client, hall_id: int) -> AsyncIterator[Peer]:
    """A public display subscribed to ``hall:<hall_id>``, past its snapshot."""
    hub: Hub = client.app.state.hub
    async with Peer.connect(gateway_url(hub)) as peer:
        await peer.hello("hall_display", topics=[{"topic": f"hall:{hall_id}"}])
        assert isinstance(await peer.recv(), Snapshot)
        yield peer


async def _configured(peer: Peer) -> dict[str, Any]:
    """The next queue_configured event's data (the hall's whole QueueState)."""
    event = await peer.recv()
    assert isinstance(event, Event), event
    assert event.name == "queue_configured", event
    return dict(event.data)


async def _audit(db: asyncpg.Pool, action: str) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "SELECT actor_id, role, target_kind, target_id, hall_id, before, after "
            "FROM audit_log WHERE action = $1 ORDER BY id",
            action,
        )
    )


# --- groups ------------------------------------------------------------------------------


async def test_a_changed_group_is_audited_and_reaches_a_display_of_the_hall(
    client: Client, db: asyncpg.Pool, world: World
) -> None:
    """PATCH changes the fields given, leaves the others, and the display hears the new
    QueueState at once."""
    group = await _create_group(client, world, "A", "社保业务")
    async with _display(client, world.org.hall_a1) as display:
        response = await _send(client, world, "manager_a1", "PATCH",
                               f"{_hall(world)}/groups/{group['id']}",
                               {"name": "社保医保", "active": False, "daily_quota": 200,
                                "service_seconds": 420})  # fmt: skip
        assert response.status_code == 200, response.text
        state = await _configured(display)
    assert response.json() == group | {
        "name": "社保医保",
        "active": False,
        "daily_quota": 200,
        "service_seconds": 420,
    }
    [view] = state["groups"]
    assert (view["group_id"], view["name"], view["active"]) == (group["id"], "社保医保", False)
    [row] = await _audit(db, "group.update")
    assert (row["actor_id"], row["role"], row["target_id"], row["hall_id"]) == (
        world.staff["manager_a1"], "hall_manager", str(group["id"]), world.org.hall_a1,
    )  # fmt: skip
    assert row["before"]["name"] == "社保业务" and row["after"]["name"] == "社保医保"


async def test_a_null_daily_quota_removes_the_cap_and_absent_fields_stay(
    client: Client, world: World
) -> None:
    """``daily_quota: null`` is a value (no cap); a field left out is not changed."""
    group = await _create_group(client, world, "A", "社保业务")
    path = f"{_hall(world)}/groups/{group['id']}"
    await _send(client, world, "manager_a1", "PATCH", path, {"daily_quota": 50})
    response = await _send(client, world, "manager_a1", "PATCH", path, {"daily_quota": None})
    assert response.json() == group | {"daily_quota": None}
    response = await _send(client, world, "manager_a1", "PATCH", path, {})
    assert response.json() == group


async def test_the_prefix_may_change_until_the_group_issued_a_ticket(
    client: Client, db: asyncpg.Pool, world: World
) -> None:
    """Before the first ticket the prefix is corrected; after it, 409 prefix_in_use on
    body.prefix and the group keeps its prefix."""
    await _open_all_day(client, world)
    group = await _create_group(client, world, "A", "社保业务")
    path = f"{_hall(world)}/groups/{group['id']}"
    response = await _send(client, world, "manager_a1", "PATCH", path, {"prefix": "S"})
    assert response.json()["prefix"] == "S"
    issued = await _send(client, world, "clerk_a1", "POST", f"{_hall(world)}/tickets",
                         {"group_id": group["id"]})  # fmt: skip
    assert issued.json()["ticket"]["number"] == "S001"
    refused = await _send(client, world, "manager_a1", "PATCH", path, {"prefix": "T"})
    assert error_fields(assert_problem(refused, 409, "prefix_in_use")) == ["body.prefix"]
    assert await db.fetchval("SELECT prefix FROM service_group WHERE id = $1", group["id"]) == "S"
    # Naming the prefix it has is no change.
    same = await _send(client, world, "manager_a1", "PATCH", path, {"prefix": "S", "name": "社保"})
    assert same.status_code == 200 and same.json()["name"] == "社保"


async def test_a_prefix_of_another_group_is_a_conflict(client: Client, world: World) -> None:
    await _create_group(client, world, "A", "社保业务")
    group = await _create_group(client, world, "B", "不动产登记")
    response = await _send(client, world, "manager_a1", "PATCH",
                           f"{_hall(world)}/groups/{group['id']}", {"prefix": "A"})  # fmt: skip
    assert error_fields(assert_problem(response, 409, "conflict")) == ["body.prefix"]


async def test_a_group_of_another_hall_is_not_found_on_the_path(
    client: Client, world: World
) -> None:
    """A group is addressed through its own hall only."""
    response = await _send(client, world, "manager_b", "POST",
                           f"/api/halls/{world.org.hall_b}/groups",
                           {"prefix": "A", "name": "户政"})  # fmt: skip
    other = response.json()
    response = await _send(client, world, "manager_a1", "PATCH",
                           f"{_hall(world)}/groups/{other['id']}", {"name": "x"})  # fmt: skip
    assert error_fields(assert_problem(response, 404, "not_found")) == ["path.group_id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prefix": "a"}, "body.prefix"),
        ({"prefix": "ABC"}, "body.prefix"),
        ({"name": ""}, "body.name"),
        ({"name": None}, "body.name"),
        ({"active": "yes"}, "body.active"),
        ({"daily_quota": 0}, "body.daily_quota"),
        ({"id_daily_limit": 21}, "body.id_daily_limit"),
        ({"service_seconds": 10}, "body.service_seconds"),
        ({"colour": "red"}, "body.colour"),
    ],
)
async def test_an_invalid_group_change_is_refused_on_its_field(
    client: Client, world: World, body: dict[str, object], field: str
) -> None:
    group = await _create_group(client, world, "A", "社保业务")
    response = await _send(client, world, "manager_a1", "PATCH",
                           f"{_hall(world)}/groups/{group['id']}", body)  # fmt: skip
    assert error_fields(assert_problem(response, 422, "invalid_input")) == [field]


# --- hall queue settings -----------------------------------------------------------------


async def test_queue_settings_are_read_changed_audited_and_announced(
    client: Client, db: asyncpg.Pool, world: World
) -> None:
    """The defaults of a new hall, then a change of every field."""
    path = f"{_hall(world)}/queue-settings"
    response = await _send(client, world, "manager_a1", "GET", path)
    defaults = {
        "hall_id": world.org.hall_a1,
        "timezone": "Asia/Shanghai",
        "opens_minute": 540,
        "closes_minute": 1020,
        "id_daily_limit": 3,
        "requeue_limit": 1,
    }
    assert response.json() == defaults
    change = {
        "opens_minute": 510,
        "closes_minute": 1050,
        "id_daily_limit": 5,
        "requeue_limit": 2,
        "timezone": "Asia/Urumqi",
    }
    async with _display(client, world.org.hall_a1) as display:
        response = await _send(client, world, "admin_a", "PATCH", path, change)
        assert response.status_code == 200, response.text
        await _configured(display)
    assert response.json() == defaults | change
    assert (await _send(client, world, "manager_a1", "GET", path)).json() == defaults | change
    [row] = await _audit(db, "hall.queue_settings")
    assert (row["role"], row["target_kind"], row["hall_id"]) == ("admin", "hall", world.org.hall_a1)
    assert (row["before"], row["after"]) == (defaults, defaults | change)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"opens_minute": 600, "closes_minute": 600}, "body.closes_minute"),
        ({"opens_minute": 1100}, "body.opens_minute"),  # after the current closing 17:00
        ({"closes_minute": 500}, "body.closes_minute"),  # before the current opening 09:00
        ({"closes_minute": 1441}, "body.closes_minute"),
        ({"opens_minute": -1}, "body.opens_minute"),
        ({"opens_minute": 1440}, "body.opens_minute"),
        ({"timezone": "Mars/Olympus"}, "body.timezone"),
        ({"timezone": ""}, "body.timezone"),
        ({"id_daily_limit": 0}, "body.id_daily_limit"),
        ({"requeue_limit": "x"}, "body.requeue_limit"),
        ({"requeue_limit": None}, "body.requeue_limit"),
        ({"colour": 1}, "body.colour"),
    ],
)
async def test_invalid_queue_settings_are_refused_on_their_field(
    client: Client, db: asyncpg.Pool, world: World, body: dict[str, object], field: str
) -> None:
    """422 naming the field; nothing is stored, audited or announced."""
    response = await _send(client, world, "manager_a1", "PATCH",
                           f"{_hall(world)}/queue-settings", body)  # fmt: skip
    assert error_fields(assert_problem(response, 422, "invalid_input")) == [field]
    row = await db.fetchrow(
        "SELECT opens_minute, closes_minute, timezone FROM hall WHERE id = $1", world.org.hall_a1
    )
    assert tuple(row) == (540, 1020, "Asia/Shanghai")
    assert await _audit(db, "hall.queue_settings") == []
    assert await db.fetchval("SELECT count(*) FROM topic_event") == 0


# --- honours -----------------------------------------------------------------------------


async def test_a_red_flag_window_is_shown_on_the_displays_of_its_hall(
    client: Client, db: asyncpg.Pool, world: World
) -> None:
    path = f"{_hall(world)}/windows/{world.org.window_a1}/red-flag"
    async with _display(client, world.org.hall_a1) as display:
        response = await _send(client, world, "manager_a1", "PUT", path, {"red_flag": True})
        assert response.status_code == 200, response.text
        state = await _configured(display)
    assert response.json()["red_flag"] is True
    [window] = state["windows"]
    assert (window["window_id"], window["red_flag"]) == (world.org.window_a1, True)
    [row] = await _audit(db, "window.red_flag")
    assert (row["before"], row["after"]) == ({"red_flag": False}, {"red_flag": True})
    # Setting what is already set changes nothing and announces nothing.
    again = await _send(client, world, "manager_a1", "PUT", path, {"red_flag": True})
    assert again.status_code == 200
    assert len(await _audit(db, "window.red_flag")) == 1


async def test_a_window_of_another_hall_gets_no_red_flag(client: Client, world: World) -> None:
    response = await _send(client, world, "manager_a1", "PUT",
                           f"{_hall(world)}/windows/{world.org.window_b}/red-flag",
                           {"red_flag": True})  # fmt: skip
    assert error_fields(assert_problem(response, 404, "not_found")) == ["path.window_id"]


async def test_a_star_staff_mark_is_announced_on_the_hall_of_the_staff_member(
    client: Client, db: asyncpg.Pool, world: World
) -> None:
    """The manager of hall a1 stars its clerk; the hall's display redraws."""
    path = f"/api/staff/{world.staff['clerk_a1']}/star"
    async with _display(client, world.org.hall_a1) as display:
        response = await _send(client, world, "manager_a1", "PUT", path, {"star_staff": True})
        assert response.status_code == 200, response.text
        await _configured(display)
    assert response.json() == {
        "staff_id": world.staff["clerk_a1"],
        "staff_no": "clerk_a1",
        "name": "clerk_a1",
        "hall_id": world.org.hall_a1,
        "active": True,
        "star_staff": True,
        "roles": ["window_staff"],
        "window_id": None,
    }
    [row] = await _audit(db, "staff.star")
    assert (row["target_kind"], row["target_id"], row["hall_id"]) == (
        "staff", str(world.staff["clerk_a1"]), world.org.hall_a1,
    )  # fmt: skip
    assert row["after"] == {"star_staff": True}


@pytest.mark.parametrize("staff_no", ["manager_b", "clerk_a1", "supervisor_a", "intern_a1"])
async def test_only_managers_of_the_staff_members_hall_star_them(
    client: Client, db: asyncpg.Pool, world: World, staff_no: str
) -> None:
    response = await _send(client, world, staff_no, "PUT",
                           f"/api/staff/{world.staff['clerk_a1']}/star",
                           {"star_staff": True})  # fmt: skip
    assert_problem(response, 403, "forbidden")
    assert await db.fetchval("SELECT star_staff FROM staff WHERE id = $1", world.staff["clerk_a1"])\
        is False  # fmt: skip


async def test_a_missing_staff_member_is_not_found_on_the_path(
    client: Client, world: World
) -> None:
    response = await _send(client, world, "root_admin", "PUT", "/api/staff/99999/star",
                           {"star_staff": True})  # fmt: skip
    assert error_fields(assert_problem(response, 404, "not_found")) == ["path.staff_id"]


# --- the manager console's read model ----------------------------------------------------


async def test_the_queue_config_lists_groups_windows_with_ranks_settings_and_staff(
    client: Client, world: World
) -> None:
    a = await _create_group(client, world, "A", "社保业务")
    b = await _create_group(client, world, "B", "不动产登记")
    ranked = [{"group_id": b["id"], "rank": 1}, {"group_id": a["id"], "rank": 2}]
    path = f"{_hall(world)}/windows/{world.org.window_a1}/groups"
    response = await _send(client, world, "manager_a1", "PUT", path, ranked)
    assert response.status_code == 200, response.text
    response = await _send(client, world, "manager_a1", "GET", f"{_hall(world)}/queue-config")
    config = response.json()
    assert config["hall_id"] == world.org.hall_a1
    assert (config["code"], config["name"]) == ("a1", "Hall a1")
    assert config["groups"] == [a, b]
    assert config["windows"] == [
        {
            "window_id": world.org.window_a1,
            "number": 1,
            "name": "",
            "department_id": world.org.tax,
            "department": "Tax",
            "red_flag": False,
            "groups": ranked,
        }
    ]
    assert config["settings"]["opens_minute"] == 540
    assert {s["staff_no"]: s["roles"] for s in config["staff"]} == {
        "clerk_a1": ["window_staff"],
        "intern_a1": [],
        "manager_a1": ["hall_manager"],
    }


# --- who may configure -------------------------------------------------------------------


def _endpoints(world: World, group_id: int) -> list[tuple[str, str, object]]:
    hall = _hall(world)
    return [
        ("PATCH", f"{hall}/groups/{group_id}", {"name": "x"}),
        ("GET", f"{hall}/queue-settings", None),
        ("PATCH", f"{hall}/queue-settings", {"requeue_limit": 3}),
        ("PUT", f"{hall}/windows/{world.org.window_a1}/red-flag", {"red_flag": True}),
        ("GET", f"{hall}/queue-config", None),
    ]


@pytest.mark.parametrize(
    "staff_no",
    [
        "clerk_a1",  # window staff of the hall: works a window, does not configure
        "intern_a1",  # no grant at all
        "supervisor_a",  # oversees the city
        "supervisor_tax",  # oversees a department with a window in the hall
        "manager_b",  # the right role, another hall
        "admin_b",  # the right role, another city
    ],
)
async def test_a_caller_outside_the_role_or_scope_cannot_configure(
    client: Client, db: asyncpg.Pool, world: World, staff_no: str
) -> None:
    """403 problem details on every endpoint; nothing changes, nothing is announced."""
    group = await _create_group(client, world, "A", "社保业务")
    before = await db.fetchval("SELECT count(*) FROM topic_event")
    for method, path, body in _endpoints(world, group["id"]):
        response = await _send(client, world, staff_no, method, path, body)
        assert_problem(response, 403, "forbidden")
    assert await db.fetchval("SELECT count(*) FROM topic_event") == before
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE action <> ALL($1)",
                             ["group.create", "session.sign_in", "staff.create", "grant.create",
                              "region.create", "department.create", "hall.create",
                              "window.create", "device.register"]) == 0  # fmt: skip


@pytest.mark.parametrize("staff_no", ["manager_a1", "admin_a", "root_admin"])
async def test_managers_and_admins_of_the_hall_configure(
    client: Client, world: World, staff_no: str
) -> None:
    group = await _create_group(client, world, "A", "社保业务")
    for method, path, body in _endpoints(world, group["id"]):
        response = await _send(client, world, staff_no, method, path, body)
        assert response.status_code == 200, (method, path, response.text)


@pytest.mark.parametrize("headers", [{}, bearer("not-a-session")], ids=["none", "unknown"])
async def test_configuration_needs_a_session(
    client: Client, world: World, headers: dict[str, str]
) -> None:
    for method, path, body in _endpoints(world, 1):
        response = await client.request(method, path, json=body, headers=headers)
        assert_problem(response, 401, "unauthenticated")
