"""Ratings (O9) on real PostgreSQL: through the service and the HTTP API, tickets issued,
called and finished through the queue service first."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from hub.domain.rating import AlreadyRated, TicketNotFinished
from hub.services import ratings
from hub.services.queue import TicketRequest
from hub.services.ratings import RatingNew
from realtime.messages import Event, Snapshot
from tests.factories import make_device, make_hall, make_staff
from tests.hub.api.conftest import Client, assert_problem, bearer, error_fields
from tests.hub.queue.world import QueueWorld
from tests.realtime.peers import Peer, gateway_url


async def _issue(w: QueueWorld, group: str = "A") -> tuple[int, str]:
    issued = await w.queue.issue(
        w.hall_id, TicketRequest(group_id=w.groups[group]), source="kiosk", caller="device"
    )
    return issued.ticket_id, issued.token


async def _serve(w: QueueWorld, at: int = 0) -> tuple[int, str]:
    """Issue a ticket and serve it at window ``at`` to the end (finish)."""
    ticket_id, token = await _issue(w)
    await w.queue.sign_in(w.actors[at], w.place, w.windows[at])
    w.clock.advance(seconds=5)
    called = await w.queue.call_next(w.actors[at], w.place, w.windows[at])
    assert called.serving[0].ticket_id == ticket_id
    w.clock.advance(minutes=3)
    await w.queue.finish(w.actors[at], w.place, w.windows[at])
    return ticket_id, token


def _rate(w: QueueWorld, token: str, grade: str = "satisfied", **kw: object) -> object:
    assert w.hub.events is not None
    return ratings.rate_by_token(
        w.hub.events,
        w.clock,
        token,
        RatingNew(grade=grade, **kw),
        source="web",  # type: ignore[arg-type]
    )


async def test_a_served_ticket_is_rated_once_and_linked_to_its_window_and_staff(
    db: asyncpg.Pool, qworld: QueueWorld
):
    w = qworld
    ticket_id, token = await _serve(w, at=1)
    receipt = await _rate(w, token, "very_dissatisfied", reasons=["slow_service"], comment=" 太慢 ")
    assert receipt.number == "A001" and receipt.grade == "very_dissatisfied"  # type: ignore[attr-defined]
    row = await db.fetchrow("SELECT * FROM rating WHERE ticket_id = $1", ticket_id)
    assert row["window_id"] == w.windows[1] and row["staff_id"] == w.staff[1]
    assert row["hall_id"] == w.hall_id and row["source"] == "web"
    assert row["reasons"] == ["slow_service"] and row["comment"] == "太慢"
    assert row["created_at"] == w.clock.now and row["case_id"] is None
    with pytest.raises(AlreadyRated) as again:
        await _rate(w, token, "very_satisfied")
    assert again.value.code == "already_rated"
    assert await db.fetchval("SELECT count(*) FROM rating") == 1
    assert await db.fetchval("SELECT grade FROM rating") == "very_dissatisfied"


async def test_a_ticket_is_rated_only_once_it_is_served(db: asyncpg.Pool, qworld: QueueWorld):
    w = qworld
    _, token = await _issue(w)
    with pytest.raises(TicketNotFinished) as waiting:
        await _rate(w, token)
    assert waiting.value.code == "ticket_not_finished"
    await w.queue.sign_in(w.actors[0], w.place, w.windows[0])
    await w.queue.call_next(w.actors[0], w.place, w.windows[0])
    with pytest.raises(TicketNotFinished):
        await _rate(w, token)
    assert await db.fetchval("SELECT count(*) FROM rating") == 0
    await w.queue.finish(w.actors[0], w.place, w.windows[0])
    await _rate(w, token)
    assert await db.fetchval("SELECT count(*) FROM rating") == 1


async def test_two_ratings_of_one_ticket_at_once_store_one(db: asyncpg.Pool, qworld: QueueWorld):
    w = qworld
    _, token = await _serve(w)
    results = await asyncio.gather(
        _rate(w, token, "satisfied"),  # type: ignore[arg-type]
        _rate(w, token, "very_satisfied"),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert sum(isinstance(r, AlreadyRated) for r in results) == 1
    assert await db.fetchval("SELECT count(*) FROM rating") == 1


async def test_the_staff_topic_hears_grade_and_reasons_the_window_topic_the_grade_only(
    db: asyncpg.Pool, qworld: QueueWorld
):
    w = qworld
    ticket_id, token = await _serve(w, at=0)
    async with (
        Peer.connect(gateway_url(w.hub)) as console,
        Peer.connect(gateway_url(w.hub)) as pad,
    ):
        await console.hello("console", w.tokens[0], [{"topic": f"staff:{w.staff[0]}"}])
        assert isinstance(await console.recv(), Snapshot)
        await pad.hello("evaluator", None, [{"topic": f"window:{w.windows[0]}"}])
        assert isinstance(await pad.recv(), Snapshot)
        await _rate(w, token, "dissatisfied", reasons=["poor_attitude"], comment="不耐烦")
        mine = await console.recv()
        assert isinstance(mine, Event) and mine.name == "rating_received"
        assert mine.topic == f"staff:{w.staff[0]}"
        assert mine.data["grade"] == "dissatisfied"
        assert mine.data["reasons"] == ["poor_attitude"]
        assert mine.data["ticket_id"] == ticket_id and mine.data["number"] == "A001"
        assert "comment" not in mine.data
        public = await pad.recv()
        assert isinstance(public, Event) and public.name == "rating_received"
        assert public.data == {
            "ticket_id": ticket_id,
            "number": "A001",
            "window_id": w.windows[0],
            "grade": "dissatisfied",
        }


async def test_another_staff_member_may_not_follow_the_ratings_of_a_colleague(
    db: asyncpg.Pool, qworld: QueueWorld
):
    w = qworld
    async with Peer.connect(gateway_url(w.hub)) as console:
        topics = [{"topic": f"staff:{w.staff[0]}"}]
        await console.send(
            {"type": "hello", "kind": "console", "token": w.tokens[1], "topics": topics}
        )
        code, _ = await console.close_code()
        assert code == 4403


# -- HTTP ----------------------------------------------------------------------------------
# The app runs its hub on the test client's own loop: the queue is driven over HTTP as well.


async def _issue_http(client: Client, w: QueueWorld, group: str = "A") -> tuple[int, str]:
    issued = await client.post(
        f"/api/halls/{w.hall_id}/tickets", json={"group_id": w.groups[group]}
    )
    assert issued.status_code == 201, issued.text
    return issued.json()["ticket_id"], issued.json()["token"]


async def _serve_http(client: Client, w: QueueWorld, at: int = 0) -> tuple[int, str]:
    ticket_id, token = await _issue_http(client, w)
    url = f"/api/halls/{w.hall_id}/windows/{w.windows[at]}"
    for action in ("sign-in", "call", "finish"):
        done = await client.post(f"{url}/{action}", headers=bearer(w.tokens[at]))
        assert done.status_code == 200, done.text
        w.clock.advance(seconds=30)
    return ticket_id, token


async def test_the_citizen_rates_by_token_on_the_web_by_sms_or_at_a_kiosk(
    db: asyncpg.Pool, api: tuple[Client, QueueWorld]
):
    client, w = api
    _, kiosk_token = await make_device(db, w.hall_id, "kiosk", "自助终端1")
    sources = {}
    for query, headers in (("", {}), ("?via=sms", {}), ("", bearer(kiosk_token))):
        ticket_id, token = await _serve_http(client, w)
        response = await client.post(
            f"/api/tickets/{token}/rating{query}",
            json={"grade": "very_satisfied"},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        assert response.json()["grade"] == "very_satisfied"
        sources[ticket_id] = response.json()["source"]
    assert list(sources.values()) == ["web", "sms", "kiosk"]
    stored = await db.fetch("SELECT ticket_id, source FROM rating ORDER BY id")
    assert {r["ticket_id"]: r["source"] for r in stored} == sources
    # The page asks whether its ticket has been rated.
    seen = await client.get(f"/api/tickets/{token}/rating")
    assert seen.status_code == 200 and seen.json()["source"] == "kiosk"


async def test_http_refusals_are_problems_and_store_nothing(
    db: asyncpg.Pool, api: tuple[Client, QueueWorld]
):
    client, w = api
    _, waiting = await _issue_http(client, w, "B")
    _, token = await _serve_http(client, w)
    bad = await client.post(f"/api/tickets/{token}/rating", json={"grade": "dissatisfied"})
    assert error_fields(assert_problem(bad, 422, "invalid_input")) == ["body.reasons"]
    early = await client.post(f"/api/tickets/{waiting}/rating", json={"grade": "satisfied"})
    assert_problem(early, 409, "ticket_not_finished")
    unknown = await client.post("/api/tickets/nope/rating", json={"grade": "satisfied"})
    assert_problem(unknown, 404, "not_found")
    assert_problem(await client.get(f"/api/tickets/{token}/rating"), 404, "not_found")
    assert await db.fetchval("SELECT count(*) FROM rating") == 0
    ok = await client.post(
        f"/api/tickets/{token}/rating",
        json={
            "grade": "dissatisfied",
            "reasons": ["repeated_visits", "other"],
            "comment": "跑了三次",
        },
    )
    assert ok.status_code == 201, ok.text
    again = await client.post(f"/api/tickets/{token}/rating", json={"grade": "satisfied"})
    assert_problem(again, 409, "already_rated")
    assert await db.fetchval("SELECT count(*) FROM rating") == 1
    # A device that is not a kiosk does not rate for the citizen.
    _, display = await make_device(db, w.hall_id, "window_display", "1号窗口屏")
    _, other = await _serve_http(client, w)
    refused = await client.post(
        f"/api/tickets/{other}/rating", json={"grade": "satisfied"}, headers=bearer(display)
    )
    assert_problem(refused, 403, "forbidden")


async def test_the_evaluation_pad_rates_the_tickets_of_its_window(
    db: asyncpg.Pool, api: tuple[Client, QueueWorld]
):
    client, w = api
    _, pad = await make_device(db, w.hall_id, "evaluator", "1号窗口评价器")
    elsewhere = await make_hall(db, code="q2", windows=1)
    _, foreign_pad = await make_device(db, elsewhere.hall_id, "evaluator", "外厅评价器")
    _, kiosk = await make_device(db, w.hall_id, "kiosk", "自助终端")
    ticket_id, _ = await _serve_http(client, w, at=0)
    url = f"/api/halls/{w.hall_id}/windows/{w.windows[0]}"
    body = {"ticket_id": ticket_id, "grade": "satisfied"}

    # The pad asks which ticket to rate (after a reconnect, say).
    pending = await client.get(f"{url}/rating-request", headers=bearer(pad))
    assert pending.json() == {
        "ticket_id": ticket_id,
        "number": "A001",
        "window_id": w.windows[0],
        "staff_id": w.staff[0],
        "window_number": 1,
        "staff_name": "窗口1",
        "staff_no": "q1-W1",
        "timeout_s": 30,
    }
    foreign = await client.post(f"{url}/ratings", json=body, headers=bearer(foreign_pad))
    assert_problem(foreign, 403, "forbidden")
    not_a_pad = await client.post(f"{url}/ratings", json=body, headers=bearer(kiosk))
    assert_problem(not_a_pad, 403, "forbidden")
    assert_problem(await client.post(f"{url}/ratings", json=body), 401, "unauthenticated")
    wrong_window = await client.post(
        f"/api/halls/{w.hall_id}/windows/{w.windows[1]}/ratings", json=body, headers=bearer(pad)
    )
    assert error_fields(assert_problem(wrong_window, 404, "not_found")) == ["body.ticket_id"]
    assert await db.fetchval("SELECT count(*) FROM rating") == 0

    rated = await client.post(f"{url}/ratings", json=body, headers=bearer(pad))
    assert rated.status_code == 201, rated.text
    row = await db.fetchrow("SELECT source, device_id, staff_id FROM rating")
    assert row["source"] == "evaluator" and row["staff_id"] == w.staff[0]
    assert (await client.get(f"{url}/rating-request", headers=bearer(pad))).json() is None


async def test_managers_and_supervisors_read_a_halls_ratings(
    db: asyncpg.Pool, api: tuple[Client, QueueWorld]
):
    client, w = api
    _, manager = await make_staff(db, "M1", [("hall_manager", "hall", w.hall_id)])
    for grade, reasons in (
        ("very_satisfied", []),
        ("very_satisfied", []),
        ("dissatisfied", ["other"]),
    ):
        _, token = await _serve_http(client, w, at=2)
        rated = await client.post(
            f"/api/tickets/{token}/rating", json={"grade": grade, "reasons": reasons}
        )
        assert rated.status_code == 201, rated.text
    query = "from=2026-11-25&to=2026-11-25"
    report = await client.get(f"/api/halls/{w.hall_id}/ratings?{query}", headers=bearer(manager))
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["total"] == 3 and not body["truncated"]
    assert {c["grade"]: c["count"] for c in body["counts"]} == {
        "very_satisfied": 2,
        "satisfied": 0,
        "basically_satisfied": 0,
        "dissatisfied": 1,
        "very_dissatisfied": 0,
    }
    assert body["satisfaction"] == pytest.approx(2 / 3)
    assert [r["staff_name"] for r in body["ratings"]] == ["窗口3"] * 3
    # The next hall-local day has none.
    later = await client.get(
        f"/api/halls/{w.hall_id}/ratings?from=2026-11-26&to=2026-11-30", headers=bearer(manager)
    )
    assert later.json()["total"] == 0
    refused = await client.get(
        f"/api/halls/{w.hall_id}/ratings?{query}", headers=bearer(w.tokens[0])
    )
    assert_problem(refused, 403, "forbidden")
