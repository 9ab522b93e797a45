"""Sign-in, me and sign-out through HTTP."""

from __future__ import annotations

from tests.hub.api.conftest import Client, World, assert_problem, bearer
from tests.hub.conftest import PASSWORD


async def test_a_session_works_until_sign_out(client: Client, world: World) -> None:
    """Sign in, see yourself and your grants, sign out, and the token is refused."""
    response = await client.post(
        "/api/auth/sign-in", json={"staff_no": "manager_a1", "password": PASSWORD}
    )
    assert response.status_code == 200
    token = response.json()["token"]
    me = (await client.get("/api/auth/me", headers=bearer(token))).json()
    assert me == {
        "id": f"staff:{world.staff['manager_a1']}",
        "staff_id": world.staff["manager_a1"],
        "label": "manager_a1",
        "grants": [{"role": "hall_manager", "scope_kind": "hall", "scope_id": world.org.hall_a1}],
    }
    assert (await client.post("/api/auth/sign-out", headers=bearer(token))).status_code == 204
    assert_problem(await client.get("/api/auth/me", headers=bearer(token)), 401, "unauthenticated")


async def test_a_wrong_password_is_a_401_sign_in_failed(client: Client, world: World) -> None:
    """The problem has its own code, the same for an unknown staff number."""
    for body in (
        {"staff_no": "manager_a1", "password": "nope"},
        {"staff_no": "ghost", "password": PASSWORD},
    ):
        response = await client.post("/api/auth/sign-in", json=body)
        assert_problem(response, 401, "sign_in_failed")


async def test_a_non_bearer_authorization_is_unauthenticated(client: Client, world: World) -> None:
    """Basic credentials are not accepted."""
    response = await client.get("/api/auth/me", headers={"Authorization": "Basic eDp5"})
    assert_problem(response, 401, "unauthenticated")
