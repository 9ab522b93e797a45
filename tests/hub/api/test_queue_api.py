"""The queue over HTTP (hub/api/queue.py) on the real app: every action from an illegal state
is refused with a problem-details error and a stable code, and changes nothing (tickets,
window states, counters, audit rows and events compared before and after); online tickets
work and are rate-limited; the citizen's ticket page carries no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from hub.runtime import Hub
from hub.services.queue_views import TicketStatusView
from tests.factories import make_device, make_hall, make_staff
from tests.hub.api.conftest import Client, assert_problem, bearer, error_fields, make_app
from tests.hub.queue.world import Clock, add_group, serve

# A valid resident ID card number (GB 11643 check character X) and one with a wrong check.
RESIDENT_ID = "11010519491231002X"
BAD_CHECK = "110105194912310021"
NAME = "欧阳娜娜"
PHONE = "13800138000"
# 20:00 in Shanghai: after the default issuing hours (09:00–17:00).
EVENING = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@dataclass
class QueueHall:
    """A hall with groups A and B, three windows serving both, a window staff member per
    window, a supervisor of the city, a kiosk of the hall and a kiosk of another hall."""

    hall_id: int
    windows: list[int]
    groups: dict[str, int]
    staff: list[str]  # session tokens, staff[i] works windows[i]
    supervisor: str
    kiosk: str
    foreign_kiosk: str
    clock: Clock

    @property
    def tickets(self) -> str:
        return f"/api/halls/{self.hall_id}/tickets"

    def window(self, i: int, action: str) -> str:
        return f"/api/halls/{self.hall_id}/windows/{self.windows[i]}/{action}"


async def build_queue_hall(db: asyncpg.Pool, hub: Hub, code: str = "qa") -> QueueHall:
    hall = await make_hall(db, code=code, windows=3)
    other = await make_hall(db, code=f"{code}-other", windows=1)
    groups = {
        "A": await add_group(db, hall.hall_id, "A", "社保业务"),
        "B": await add_group(db, hall.hall_id, "B", "不动产登记"),
    }
    for window_id in hall.window_ids:
        await serve(db, window_id, groups["A"], groups["B"])
    staff = [
        (await make_staff(db, f"{code}-W{i}", [("window_staff", "hall", hall.hall_id)]))[1]
        for i in range(1, 4)
    ]
    _, supervisor = await make_staff(db, f"{code}-sup", [("supervisor", "region", hall.city_id)])
    _, kiosk = await make_device(db, hall.hall_id, "kiosk", "自助机1")
    _, foreign = await make_device(db, other.hall_id, "kiosk", "自助机1")
    clock = Clock()  # 10:00 in Shanghai
    hub.clock = clock
    return QueueHall(
        hall.hall_id, hall.window_ids, groups, staff, supervisor, kiosk, foreign, clock
    )


@pytest.fixture
async def qhall(client: Client, db: asyncpg.Pool) -> QueueHall:
    hub: Hub = client.app.state.hub
    return await build_queue_hall(db, hub)


async def database_state(db: asyncpg.Pool, hall_id: int) -> dict[str, Any]:
    """Everything a queue action could change, as comparable values."""

    async def rows(sql: str) -> list[dict[str, Any]]:
        return [dict(r) for r in await db.fetch(sql, hall_id)]

    return {
        "tickets": await rows("SELECT * FROM ticket WHERE hall_id = $1 ORDER BY id"),
        "windows": await rows("SELECT * FROM window_state WHERE hall_id = $1 ORDER BY window_id"),
        "counters": await rows(
            "SELECT c.* FROM ticket_counter c JOIN service_group g ON g.id = c.group_id "
            "WHERE g.hall_id = $1 ORDER BY c.group_id, c.service_day"
        ),
        "audit": await db.fetchval("SELECT count(*) FROM audit_log"),
        "events": await db.fetchval("SELECT count(*) FROM topic_event"),
        "outbox": await rows("SELECT * FROM topic WHERE name = 'hall:' || $1::bigint"),
    }


class Api:
    def __init__(self, client: Client, hall: QueueHall) -> None:
        self.client = client
        self.hall = hall

    async def act(self, who: str, i: int, action: str, body: object = None) -> Any:
        return await self.client.post(self.hall.window(i, action), json=body, headers=bearer(who))

    async def ok(self, who: str, i: int, action: str, body: object = None) -> dict[str, Any]:
        response = await self.act(who, i, action, body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def issue(self, body: dict[str, Any], token: str | None = None) -> Any:
        headers = bearer(token) if token else None
        return await self.client.post(self.hall.tickets, json=body, headers=headers)

    async def issued(self, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        response = await self.issue(body, token)
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
def api(client: Client, qhall: QueueHall) -> Api:
    return Api(client, qhall)


async def refused(
    db: asyncpg.Pool, hall: QueueHall, request: Any, status: int, code: str
) -> dict[str, Any]:
    """Send the request; it is refused with this problem and the database is unchanged."""
    before = await database_state(db, hall.hall_id)
    problem = assert_problem(await request, status, code)
    assert await database_state(db, hall.hall_id) == before
    return problem


# --- window actions from illegal states ----------------------------------------------------


async def test_calling_while_paused_or_serving_and_finishing_twice_are_refused(
    db: asyncpg.Pool, api: Api, qhall: QueueHall
) -> None:
    w1 = qhall.staff[0]
    await api.issued({"group_id": qhall.groups["A"]}, qhall.kiosk)
    await api.issued({"group_id": qhall.groups["A"]}, qhall.kiosk)
    await api.ok(w1, 0, "sign-in")
    await api.ok(w1, 0, "pause")
    await refused(db, qhall, api.act(w1, 0, "call"), 409, "window_not_open")
    await api.ok(w1, 0, "resume")
    assert (await api.ok(w1, 0, "call"))["called"] == "A001"
    await refused(db, qhall, api.act(w1, 0, "call"), 409, "window_busy")
    await api.ok(w1, 0, "finish")
    await refused(db, qhall, api.act(w1, 0, "finish"), 409, "no_current_ticket")
    # Nothing was lost on the way: the second ticket is next.
    assert (await api.ok(w1, 0, "call"))["called"] == "A002"


async def test_transfer_to_a_closed_window_is_refused(
    db: asyncpg.Pool, api: Api, qhall: QueueHall
) -> None:
    w1 = qhall.staff[0]
    await api.issued({"group_id": qhall.groups["A"]}, qhall.kiosk)
    await api.ok(w1, 0, "sign-in")
    await api.ok(w1, 0, "call")
    problem = await refused(
        db,
        qhall,
        api.act(w1, 0, "transfer", {"window_id": qhall.windows[2]}),
        409,
        "window_closed",
    )
    assert error_fields(problem) == ["body.window_id"]
    # Open the target window and the same transfer goes through.
    await api.ok(qhall.staff[2], 2, "sign-in")
    moved = await api.ok(w1, 0, "transfer", {"window_id": qhall.windows[2]})
    assert moved["window"]["current"] is None
    assert (await api.ok(qhall.staff[2], 2, "call"))["called"] == "A001"


async def test_another_staff_members_window_and_a_wrong_role_are_forbidden(
    db: asyncpg.Pool, api: Api, qhall: QueueHall
) -> None:
    await api.issued({"group_id": qhall.groups["A"]}, qhall.kiosk)
    await api.ok(qhall.staff[0], 0, "sign-in")
    # Window staff of the same hall, but window 1 is worked by someone else.
    for action in ("call", "pause", "finish"):
        await refused(db, qhall, api.act(qhall.staff[1], 0, action), 403, "forbidden")
    await refused(db, qhall, api.act(qhall.staff[1], 0, "sign-in"), 409, "window_taken")
    # A supervisor oversees the hall but works no window.
    await refused(db, qhall, api.act(qhall.supervisor, 0, "call"), 403, "forbidden")
    await refused(db, qhall, api.act(qhall.supervisor, 1, "sign-in"), 403, "forbidden")
    assert (await api.ok(qhall.staff[0], 0, "call"))["called"] == "A001"


# --- issuing from illegal states ------------------------------------------------------------


async def test_an_unknown_group_and_a_bad_check_digit_are_refused_with_their_field(
    db: asyncpg.Pool, api: Api, qhall: QueueHall
) -> None:
    problem = await refused(
        db, qhall, api.issue({"group_id": 999_999}, qhall.kiosk), 404, "not_found"
    )
    assert error_fields(problem) == ["body.group_id"]
    # Group B of another hall is unknown here too.
    other_group = await add_group(db, (await make_hall(db, code="qa-x")).hall_id, "B", "其他")
    await refused(db, qhall, api.issue({"group_id": other_group}, qhall.kiosk), 404, "not_found")
    bad = {
        "group_id": qhall.groups["A"],
        "id_document": {"kind": "resident_id", "number": BAD_CHECK},
    }
    problem = await refused(db, qhall, api.issue(bad, qhall.kiosk), 422, "invalid_id_document")
    assert [f for f in error_fields(problem) if not f.startswith("body.id_document")] == []
    assert error_fields(problem)
    assert BAD_CHECK not in str(problem)  # the message never repeats the number


async def test_a_ticket_past_the_daily_document_limit_is_refused(
    db: asyncpg.Pool, api: Api, qhall: QueueHall
) -> None:
    document = {"kind": "resident_id", "number": RESIDENT_ID}
    await api.issued({"group_id": qhall.groups["A"], "id_document": document}, qhall.kiosk)
    # One ticket per document and group a day (the group's id_daily_limit is 1).
    problem = await refused(
        db,
        qhall,
        api.issue({"group_id": qhall.groups["A"], "id_document": document}, qhall.kiosk),
        409,
        "ticket_limit_reached",
    )
    assert error_fields(problem) == ["body.id_document.number"]
    # The hall allows three a day across its groups.
    await db.execute("UPDATE hall SET id_daily_limit = 2 WHERE id = $1", qhall.hall_id)
    await api.issued({"group_id": qhall.groups["B"], "id_document": document}, qhall.kiosk)
    group_c = await add_group(db, qhall.hall_id, "C", "公积金")
    await refused(
        db,
        qhall,
        api.issue({"group_id": group_c, "id_document": document}, qhall.kiosk),
        409,
        "ticket_limit_reached",
    )
    # The same number typed with spaces and a lower-case x is the same document.
    typed = {"kind": "resident_id", "number": " 110105 19491231 002x "}
    await refused(
        db,
        qhall,
        api.issue({"group_id": group_c, "id_document": typed}, qhall.kiosk),
        409,
        "ticket_limit_reached",
    )


async def test_issuing_outside_the_halls_hours_is_refused(
    db: asyncpg.Pool, api: Api, qhall: QueueHall
) -> None:
    qhall.clock.now = EVENING
    await refused(
        db, qhall, api.issue({"group_id": qhall.groups["A"]}, qhall.kiosk), 409, "hall_closed"
    )
    await refused(db, qhall, api.issue({"group_id": qhall.groups["A"]}), 409, "hall_closed")


async def test_a_device_of_another_hall_is_forbidden(
    db: asyncpg.Pool, api: Api, qhall: QueueHall
) -> None:
    await refused(
        db,
        qhall,
        api.issue({"group_id": qhall.groups["A"]}, qhall.foreign_kiosk),
        403,
        "forbidden",
    )


async def test_the_public_may_not_ask_for_a_priority(
    db: asyncpg.Pool, api: Api, qhall: QueueHall
) -> None:
    problem = await refused(
        db,
        qhall,
        api.issue({"group_id": qhall.groups["A"], "priority": "green_channel"}),
        403,
        "forbidden",
    )
    assert error_fields(problem) == ["body.priority"]


# --- online tickets and the citizen's page ----------------------------------------------------


async def test_an_online_ticket_is_issued_without_a_token_and_rate_limited(
    db: asyncpg.Pool, database_url: str
) -> None:
    rate = 3
    async with AsyncTestClient(make_app(database_url, rate=rate)) as client:
        hall = await build_queue_hall(db, client.app.state.hub, code="qr")
        api = Api(client, hall)
        numbers = [
            (await api.issued({"group_id": hall.groups["A"]}))["ticket"]["number"]
            for _ in range(rate)
        ]
        assert numbers == ["A001", "A002", "A003"]
        assert {r["source"] for r in await db.fetch("SELECT source FROM ticket")} == {"online"}
        before = await database_state(db, hall.hall_id)
        response = await api.issue({"group_id": hall.groups["A"]})
        assert_problem(response, 429, "rate_limited")
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert await database_state(db, hall.hall_id) == before


async def test_a_kiosk_is_not_held_to_the_public_rate_but_a_bad_token_is(
    db: asyncpg.Pool, database_url: str
) -> None:
    """The per-address limit is for the anonymous public: registered devices (kiosks behind
    one address) and staff are not counted, while a request with an unknown token is."""
    rate = 3
    async with AsyncTestClient(make_app(database_url, rate=rate)) as client:
        hall = await build_queue_hall(db, client.app.state.hub, code="qk")
        api = Api(client, hall)
        numbers = [
            (await api.issued({"group_id": hall.groups["A"]}, hall.kiosk))["ticket"]["number"]
            for _ in range(rate + 2)
        ]
        assert numbers == ["A001", "A002", "A003", "A004", "A005"]
        for _ in range(rate):
            assert_problem(await api.issue({"group_id": hall.groups["A"]}, "no-such-token"),
                           401, "unauthenticated")  # fmt: skip
        refused = await api.issue({"group_id": hall.groups["A"]}, "no-such-token")
        assert_problem(refused, 429, "rate_limited")
        assert_problem(await api.issue({"group_id": hall.groups["A"]}), 429, "rate_limited")


async def test_the_ticket_page_shows_no_personal_data_and_the_wait(
    db: asyncpg.Pool, client: Client, api: Api, qhall: QueueHall
) -> None:
    a = qhall.groups["A"]
    personal = {
        "group_id": a,
        "id_document": {"kind": "resident_id", "number": RESIDENT_ID},
        "name": NAME,
        "phone": PHONE,
    }
    first = await api.issued({"group_id": a}, qhall.kiosk)
    await api.issued({"group_id": a}, qhall.kiosk)
    mine = await api.issued(personal, qhall.kiosk)
    assert set(mine) == {"ticket_id", "token", "ticket", "print"}

    async def page(token: str) -> dict[str, Any]:
        response = await client.get(f"/api/tickets/{token}")
        assert response.status_code == 200, response.text
        for secret in (NAME, NAME[0] + "*", PHONE, PHONE[-4:], RESIDENT_ID, RESIDENT_ID[-4:]):
            assert secret not in response.text
        body: dict[str, Any] = response.json()
        assert set(body) == set(TicketStatusView.__struct_fields__)
        assert not {"name", "name_masked", "phone", "id_document", "id_masked", "id_kind"} & set(
            body
        )
        return body

    shown = await page(mine["token"])
    assert (shown["number"], shown["status"], shown["window_number"]) == ("A003", "waiting", None)
    # Two ahead, no window open: 2 × 300 s (the group's prior service time) over one window.
    assert (shown["ahead"], shown["estimate_seconds"]) == (2, 600)
    for i in (0, 1):
        await api.ok(qhall.staff[i], i, "sign-in")
    assert (await page(mine["token"]))["estimate_seconds"] == 300  # two windows open
    await api.ok(qhall.staff[0], 0, "call")
    shown = await page(mine["token"])
    assert (shown["ahead"], shown["estimate_seconds"]) == (1, 150)
    called = await page(first["token"])
    assert (called["status"], called["ahead"], called["window_number"]) == ("called", 0, 1)
    assert_problem(await client.get("/api/tickets/not-a-ticket"), 404, "not_found")
