"""The refusal matrix: every protected endpoint × no token, bad token, wrong role, wrong scope
answers 401/403 problem details; the permitted caller succeeds, and each change is audited."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from tests.hub.api.conftest import Client, World, assert_problem, bearer


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: Callable[[World], str]
    body: Callable[[World], dict[str, Any]] | None
    allowed: str
    status: int
    wrong_role: str | None = None
    wrong_scope: str | None = None
    action: str | None = None  # the audit action a successful call records


CASES = [
    Case("regions.list", "GET", lambda w: "/api/regions", None, "clerk_a1", 200, "intern_a1"),
    Case(
        "regions.create",
        "POST",
        lambda w: "/api/regions",
        lambda w: {"parent_id": w.org.city_a, "level": "county", "code": "A2", "name": "A2"},
        "admin_a",
        201,
        "supervisor_a",
        "admin_b",
        "region.create",
    ),
    Case(
        "departments.list", "GET", lambda w: "/api/departments", None, "clerk_a1", 200, "intern_a1"
    ),
    Case(
        "departments.create",
        "POST",
        lambda w: "/api/departments",
        lambda w: {"region_id": w.org.city_a, "code": "market", "name": "Market"},
        "admin_a",
        201,
        "supervisor_a",
        "admin_b",
        "department.create",
    ),
    Case("halls.list", "GET", lambda w: "/api/halls", None, "supervisor_a", 200, "intern_a1"),
    Case(
        "halls.create",
        "POST",
        lambda w: "/api/halls",
        lambda w: {"region_id": w.org.county_a1, "code": "a1-east", "name": "East"},
        "admin_a",
        201,
        "manager_a1",
        "admin_b",
        "hall.create",
    ),
    Case(
        "windows.list",
        "GET",
        lambda w: f"/api/halls/{w.org.hall_a1}/windows",
        None,
        "clerk_a1",
        200,
        "intern_a1",
        "manager_b",
    ),
    Case(
        "windows.create",
        "POST",
        lambda w: f"/api/halls/{w.org.hall_a1}/windows",
        lambda w: {"number": 5, "name": "五号窗口"},
        "manager_a1",
        201,
        "clerk_a1",
        "manager_b",
        "window.create",
    ),
    Case("staff.list", "GET", lambda w: "/api/staff", None, "manager_a1", 200, "intern_a1"),
    Case(
        "staff.create",
        "POST",
        lambda w: "/api/staff",
        lambda w: {
            "staff_no": "a1-007",
            "name": "王五",
            "password": "long enough",
            "hall_id": w.org.hall_a1,
        },
        "manager_a1",
        201,
        "clerk_a1",
        "manager_b",
        "staff.create",
    ),
    Case(
        "grants.list",
        "GET",
        lambda w: f"/api/staff/{w.staff['clerk_a1']}/grants",
        None,
        "supervisor_a",
        200,
        "intern_a1",
        "manager_b",
    ),
    Case(
        "grants.create",
        "POST",
        lambda w: "/api/grants",
        lambda w: {
            "staff_id": w.staff["intern_a1"],
            "role": "window_staff",
            "scope_kind": "hall",
            "scope_id": w.org.hall_a1,
        },
        "manager_a1",
        201,
        "supervisor_a",
        "manager_b",
        "grant.create",
    ),
    Case(
        "devices.register",
        "POST",
        lambda w: "/api/devices",
        lambda w: {"hall_id": w.org.hall_a1, "kind": "evaluator", "name": "pad-1"},
        "manager_a1",
        201,
        "supervisor_a",
        "manager_b",
        "device.register",
    ),
    Case(
        "devices.list",
        "GET",
        lambda w: f"/api/devices?hall_id={w.org.hall_a1}",
        None,
        "supervisor_a",
        200,
        "clerk_a1",
        "manager_b",
    ),
    Case(
        "devices.revoke",
        "POST",
        lambda w: f"/api/devices/{w.device_a1}/revoke",
        None,
        "admin_a",
        200,
        "supervisor_a",
        "admin_b",
        "device.revoke",
    ),
    Case("audit.query", "GET", lambda w: "/api/audit", None, "supervisor_a", 200, "clerk_a1"),
    Case("auth.me", "GET", lambda w: "/api/auth/me", None, "clerk_a1", 200),
    Case("auth.sign_out", "POST", lambda w: "/api/auth/sign-out", None, "clerk_a1", 204),
]
IDS = [c.name for c in CASES]


async def _call(client: Client, case: Case, world: World, headers: dict[str, str]) -> Any:
    body = case.body(world) if case.body else None
    return await client.request(case.method, case.path(world), json=body, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_a_call_without_a_token_is_unauthenticated(
    client: Client, world: World, case: Case
) -> None:
    """No Authorization header: 401 problem details."""
    assert_problem(await _call(client, case, world, {}), 401, "unauthenticated")


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_a_call_with_an_unknown_token_is_unauthenticated(
    client: Client, world: World, case: Case
) -> None:
    """A token that is no session: 401 problem details."""
    response = await _call(client, case, world, bearer("not-a-session"))
    assert_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize("case", [c for c in CASES if c.wrong_role], ids=lambda c: c.name)
async def test_a_caller_without_the_role_is_forbidden(
    client: Client, world: World, case: Case
) -> None:
    """A caller whose roles do not permit the action: 403 problem details."""
    assert case.wrong_role
    response = await _call(client, case, world, bearer(world.tokens[case.wrong_role]))
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("case", [c for c in CASES if c.wrong_scope], ids=lambda c: c.name)
async def test_a_caller_of_another_scope_is_forbidden(
    client: Client, world: World, case: Case
) -> None:
    """The right role in another hall or city: 403 problem details."""
    assert case.wrong_scope
    response = await _call(client, case, world, bearer(world.tokens[case.wrong_scope]))
    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_the_permitted_caller_succeeds_and_each_change_is_audited(
    client: Client, db: asyncpg.Pool, world: World, case: Case
) -> None:
    """The permitted role in scope gets its status; a change leaves one audit row naming the
    caller, its role and the action."""
    before = await db.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    response = await _call(client, case, world, bearer(world.tokens[case.allowed]))
    assert response.status_code == case.status, response.text
    rows = await db.fetch(
        "SELECT actor_id, role, action FROM audit_log WHERE id > $1 ORDER BY id", before
    )
    if case.action is None:
        expected = ["session.sign_out"] if case.name == "auth.sign_out" else []
        assert [r["action"] for r in rows] == expected
    else:
        [row] = rows
        assert row["action"] == case.action
        assert row["actor_id"] == world.staff[case.allowed]
        assert row["role"] in ("admin", "hall_manager")
