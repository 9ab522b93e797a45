"""Every error is an RFC 9457 problem with a stable code and, where known, the field."""

from __future__ import annotations

from tests.hub.api.conftest import Client, World, assert_problem, bearer, error_fields


async def test_a_validation_error_names_the_field_path(client: Client, world: World) -> None:
    """A body field of the wrong type: 422, code invalid_input, errors[].field body.<name>."""
    response = await client.post(
        "/api/halls",
        json={"region_id": "one", "code": "c", "name": "n"},
        headers=bearer(world.tokens["admin_a"]),
    )
    body = assert_problem(response, 422, "invalid_input")
    assert body["errors"] == [{"field": "body.region_id", "message": "Expected `int`, got `str`"}]
    assert body["instance"] == "/api/halls"


async def test_a_constraint_violation_names_the_field(client: Client, world: World) -> None:
    """A name shorter than its minimum is refused on body.name."""
    response = await client.post(
        "/api/halls",
        json={"region_id": world.org.city_a, "code": "c", "name": ""},
        headers=bearer(world.tokens["admin_a"]),
    )
    body = assert_problem(response, 422, "invalid_input")
    assert error_fields(body) == ["body.name"]


async def test_a_bad_query_parameter_names_the_query_field(client: Client, world: World) -> None:
    """?hall_id=abc: 422 on query.hall_id."""
    response = await client.get("/api/devices?hall_id=abc", headers=bearer(world.tokens["admin_a"]))
    body = assert_problem(response, 422, "invalid_input")
    assert error_fields(body) == ["query.hall_id"]


async def test_malformed_json_is_a_bad_request(client: Client, world: World) -> None:
    """A body that is not JSON: 400 malformed_body."""
    response = await client.post(
        "/api/halls", content=b"{oops", headers=bearer(world.tokens["admin_a"])
    )
    assert_problem(response, 400, "malformed_body")


async def test_a_taken_code_is_a_conflict_on_its_field(client: Client, world: World) -> None:
    """Creating a hall with an existing code: 409 conflict on body.code."""
    response = await client.post(
        "/api/halls",
        json={"region_id": world.org.city_a, "code": "a1", "name": "again"},
        headers=bearer(world.tokens["admin_a"]),
    )
    body = assert_problem(response, 409, "conflict")
    assert error_fields(body) == ["body.code"]


async def test_a_missing_target_is_not_found_on_its_field(client: Client, world: World) -> None:
    """Registering a device in a hall that does not exist: 404 on body.hall_id."""
    response = await client.post(
        "/api/devices",
        json={"hall_id": 9999, "kind": "kiosk", "name": "k"},
        headers=bearer(world.tokens["root_admin"]),
    )
    body = assert_problem(response, 404, "not_found")
    assert error_fields(body) == ["body.hall_id"]


async def test_an_unknown_device_kind_is_invalid(client: Client, world: World) -> None:
    """Device kinds come from the glossary."""
    response = await client.post(
        "/api/devices",
        json={"hall_id": world.org.hall_a1, "kind": "toaster", "name": "k"},
        headers=bearer(world.tokens["manager_a1"]),
    )
    body = assert_problem(response, 422, "invalid_input")
    assert error_fields(body) == ["body.kind"]


async def test_an_unknown_route_is_a_problem_too(client: Client) -> None:
    """Even a 404 from routing is problem details."""
    assert_problem(await client.get("/api/nothing-here"), 404, "not_found")


async def test_a_wrong_method_is_a_problem(client: Client) -> None:
    """DELETE on a list: 405 problem details."""
    assert_problem(await client.delete("/api/audit"), 405, "method_not_allowed")
