"""Hall notices (Q5): posted by the hall's managers, stored with an audit row, announced on
``hall:<id>`` to its displays, listed to the hall's staff."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import msgspec
import pytest

from hub.runtime import Hub
from realtime.messages import Event, Snapshot, Welcome
from tests.hub.api.conftest import Client, World, assert_problem, bearer, error_fields
from tests.realtime.peers import Peer, gateway_url


def _notices(world: World, hall: int | None = None) -> str:
    return f"/api/halls/{world.org.hall_a1 if hall is None else hall}/notices"


async def _post(
    client: Client, world: World, staff_no: str, body: dict[str, object], hall: int | None = None
) -> object:
    return await client.post(
        _notices(world, hall), json=body, headers=bearer(world.tokens[staff_no])
    )


async def test_a_posted_notice_reaches_a_display_subscribed_to_the_hall(
    client: Client, world: World
) -> None:
    """A public display of hall:<id> receives notice_posted with the stored notice's facts."""
    hub: Hub = client.app.state.hub
    hall_topic = f"hall:{world.org.hall_a1}"
    async with Peer.connect(gateway_url(hub)) as display:
        welcome = await display.hello("hall_display", topics=[{"topic": hall_topic}])
        assert isinstance(welcome, Welcome)
        assert isinstance(await display.recv(), Snapshot)

        response = await client.post(
            _notices(world),
            json={"text": "今日下午三点后暂停办理出入境业务", "ttl_seconds": 3600},
            headers=bearer(world.tokens["manager_a1"]),
        )
        assert response.status_code == 201, response.text
        notice = response.json()

        event = await display.recv()
        assert isinstance(event, Event)
        assert (event.topic, event.name) == (hall_topic, "notice_posted")
        assert event.data == {
            "id": notice["id"],
            "text": "今日下午三点后暂停办理出入境业务",
            "created_at": notice["created_at"],
            "expires_at": notice["expires_at"],
        }
    created = datetime.fromisoformat(notice["created_at"])
    assert datetime.fromisoformat(notice["expires_at"]) - created == timedelta(hours=1)
    assert notice["hall_id"] == world.org.hall_a1
    assert notice["created_by"] == world.staff["manager_a1"]


async def test_a_display_that_joins_later_gets_the_current_notices_in_its_snapshot(
    client: Client, world: World
) -> None:
    """Resuming by snapshot shows the notices still current, not an empty ticker."""
    hub: Hub = client.app.state.hub
    for text, ttl in (("请携带身份证原件", 3600), ("长期有效的通知", None)):
        body: dict[str, object] = {"text": text} | ({"ttl_seconds": ttl} if ttl else {})
        response = await _post(client, world, "manager_a1", body)
        assert response.status_code == 201  # type: ignore[attr-defined]
    async with Peer.connect(gateway_url(hub)) as display:
        await display.hello("hall_display", topics=[{"topic": f"hall:{world.org.hall_a1}"}])
        snapshot = await display.recv()
        assert isinstance(snapshot, Snapshot)
        assert [n["text"] for n in snapshot.data["notices"]] == [
            "长期有效的通知",
            "请携带身份证原件",
        ]
        assert all("created_by" not in n for n in snapshot.data["notices"])


async def test_the_event_carries_no_personal_data(
    client: Client, db: asyncpg.Pool, world: World
) -> None:
    """hall: topics are public: the stored event names no author."""
    response = await _post(client, world, "admin_a", {"text": "系统维护"})
    assert response.status_code == 201  # type: ignore[attr-defined]
    frame = await db.fetchval(
        "SELECT frame FROM topic_event WHERE topic = $1 AND type = 'notice_posted'",
        f"hall:{world.org.hall_a1}",
    )
    data = msgspec.json.decode(frame)["data"]
    assert sorted(data) == ["created_at", "expires_at", "id", "text"]


async def test_a_posted_notice_is_audited_with_its_actor_and_hall(
    client: Client, db: asyncpg.Pool, world: World
) -> None:
    """One audit row notice.post naming the manager, its role, the hall and the record."""
    before = await db.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    response = await _post(client, world, "manager_a1", {"text": "请保管好随身物品"})
    notice = response.json()  # type: ignore[attr-defined]
    [row] = await db.fetch(
        "SELECT actor_id, role, action, target_kind, target_id, hall_id, after "
        "FROM audit_log WHERE id > $1",
        before,
    )
    assert dict(row) | {"after": None} == {
        "actor_id": world.staff["manager_a1"],
        "role": "hall_manager",
        "action": "notice.post",
        "target_kind": "notice",
        "target_id": str(notice["id"]),
        "hall_id": world.org.hall_a1,
        "after": None,
    }
    assert row["after"]["text"] == "请保管好随身物品"


async def test_the_list_shows_current_notices_newest_first(
    client: Client, db: asyncpg.Pool, world: World
) -> None:
    """Expired notices and those of other halls are left out."""
    for text in ("first", "second"):
        await _post(client, world, "manager_a1", {"text": text})
    await _post(client, world, "manager_b", {"text": "other hall"}, hall=world.org.hall_b)
    await db.execute(
        "INSERT INTO notice (hall_id, text, created_at, expires_at) "
        "VALUES ($1, 'expired', now() - interval '2 hours', now() - interval '1 hour')",
        world.org.hall_a1,
    )
    response = await client.get(_notices(world), headers=bearer(world.tokens["clerk_a1"]))
    assert response.status_code == 200, response.text
    assert [n["text"] for n in response.json()] == ["second", "first"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.text"),
        ({"text": ""}, "body.text"),
        ({"text": "x" * 501}, "body.text"),
        ({"text": "   "}, "body.text"),
        ({"text": 5}, "body.text"),
        ({"text": "ok", "ttl_seconds": 0}, "body.ttl_seconds"),
        ({"text": "ok", "ttl_seconds": "soon"}, "body.ttl_seconds"),
        ({"text": "ok", "colour": "red"}, "body.colour"),
    ],
)
async def test_an_invalid_notice_is_refused_on_its_field(
    client: Client, db: asyncpg.Pool, world: World, body: dict[str, object], field: str
) -> None:
    """422 invalid_input naming the field; nothing is stored or announced."""
    response = await _post(client, world, "manager_a1", body)
    problem = assert_problem(response, 422, "invalid_input")
    assert error_fields(problem) == [field]
    assert await db.fetchval("SELECT count(*) FROM notice") == 0
    assert await db.fetchval("SELECT count(*) FROM topic_event") == 0


async def test_a_notice_of_exactly_500_characters_is_accepted(client: Client, world: World) -> None:
    """The bound counts characters, not bytes: 500 Chinese characters fit."""
    response = await _post(client, world, "manager_a1", {"text": "通" * 500})
    assert response.status_code == 201  # type: ignore[attr-defined]


async def test_a_notice_to_a_missing_hall_is_not_found_on_the_path(
    client: Client, world: World
) -> None:
    """404 on path.hall_id."""
    response = await _post(client, world, "root_admin", {"text": "x"}, hall=9999)
    assert error_fields(assert_problem(response, 404, "not_found")) == ["path.hall_id"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("headers", [{}, bearer("not-a-session")], ids=["none", "unknown"])
async def test_a_call_without_a_valid_session_is_unauthenticated(
    client: Client, world: World, method: str, headers: dict[str, str]
) -> None:
    """No token or an unknown one: 401 problem details."""
    response = await client.request(
        method, _notices(world), json={"text": "x"} if method == "POST" else None, headers=headers
    )
    assert_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize(
    ("method", "staff_no"),
    [
        ("POST", "clerk_a1"),  # window staff of the hall: may read, not post
        ("POST", "supervisor_a"),  # oversees the city: may read, not post
        ("POST", "intern_a1"),  # no grant at all
        ("POST", "manager_b"),  # the right role, another hall
        ("POST", "admin_b"),  # the right role, another city
        ("GET", "intern_a1"),
        ("GET", "manager_b"),
        ("GET", "admin_b"),
    ],
)
async def test_a_caller_outside_the_role_or_scope_is_forbidden(
    client: Client, db: asyncpg.Pool, world: World, method: str, staff_no: str
) -> None:
    """403 problem details, and nothing is posted."""
    response = await client.request(
        method,
        _notices(world),
        json={"text": "x"} if method == "POST" else None,
        headers=bearer(world.tokens[staff_no]),
    )
    assert_problem(response, 403, "forbidden")
    assert await db.fetchval("SELECT count(*) FROM notice") == 0


@pytest.mark.parametrize(
    ("method", "staff_no", "status"),
    [
        ("POST", "manager_a1", 201),
        ("POST", "admin_a", 201),
        ("POST", "root_admin", 201),
        ("GET", "clerk_a1", 200),
        ("GET", "supervisor_a", 200),
        ("GET", "supervisor_tax", 200),  # the tax department has a window in hall a1
    ],
)
async def test_a_caller_whose_role_covers_the_hall_succeeds(
    client: Client, world: World, method: str, staff_no: str, status: int
) -> None:
    """Managers and admins of the hall post; any role reaching the hall lists."""
    response = await client.request(
        method,
        _notices(world),
        json={"text": "x"} if method == "POST" else None,
        headers=bearer(world.tokens[staff_no]),
    )
    assert response.status_code == status, response.text
