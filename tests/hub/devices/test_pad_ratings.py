"""Ratings from the window's evaluation pad as device events (O9): the extended
rating_requested, rating and rating_unrated."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from tests.hub.api.conftest import bearer
from tests.hub.devices.conftest import DeviceWorld, accepted, live, next_update


async def _serve(dw: DeviceWorld) -> int:
    """Issue a ticket, call and finish it at window 1; its id."""
    w = dw.w
    issued = await dw.client.post(
        f"/api/halls/{w.hall_id}/tickets",
        json={"group_id": w.groups["A"]},
        headers=bearer(dw.devices["kiosk"].token),
    )
    url = f"/api/halls/{w.hall_id}/windows/{w.windows[0]}"
    for action in ("sign-in", "call", "finish"):
        done = await dw.client.post(f"{url}/{action}", headers=bearer(w.tokens[0]))
        assert done.status_code == 200, done.text
    ticket_id: int = issued.json()["ticket_id"]
    return ticket_id


async def _rating(dw: DeviceWorld, ticket_id: int) -> dict[str, Any] | None:
    row = await dw.db.fetchrow(
        "SELECT grade, reasons, source, device_id, window_id FROM rating WHERE ticket_id = $1",
        ticket_id,
    )
    return None if row is None else dict(row)


async def test_the_pad_is_asked_with_window_staff_and_timeout_and_its_rating_is_stored(
    dw: DeviceWorld,
) -> None:
    """rating_requested on window:<id> names the window's number, the staff member and the
    pad's configured timeout; the pad's rating event becomes a rating of source evaluator
    linked to the pad, announced on the window."""
    w, pad = dw.w, dw.devices["pad"]
    await dw.db.execute("""UPDATE device SET config = '{"timeout_s": 45}' WHERE id = $1""", pad.id)
    window_topic = f"window:{w.windows[0]}"
    async with dw.agent("pad", window_topic) as agent:
        await live(agent)
        ticket_id = await _serve(dw)
        asked = await next_update(agent, "rating_requested", topic=window_topic)
        assert asked.data == {
            "ticket_id": ticket_id,
            "number": "A001",
            "window_id": w.windows[0],
            "staff_id": w.staff[0],
            "window_number": 1,
            "staff_name": "窗口1",
            "staff_no": "q1-W1",
            "timeout_s": 45,
        }
        rating = {"ticket_id": ticket_id, "grade": "very_satisfied", "reasons": []}
        await agent.send_device_event("g-1", "rating", rating)
        received = await next_update(agent, "rating_received", topic=window_topic)
        assert received.data["grade"] == "very_satisfied"
    assert await _rating(dw, ticket_id) == {
        "grade": "very_satisfied",
        "reasons": [],
        "source": "evaluator",
        "device_id": pad.id,
        "window_id": w.windows[0],
    }


async def test_a_bad_grade_without_reasons_is_kept_with_reason_other(dw: DeviceWorld) -> None:
    """A pad that sends dissatisfied without reasons: the rating is stored with ['other'],
    and the hub logs it."""
    pad = dw.devices["pad"]
    ticket_id = await _serve(dw)
    with capture_logs() as logs:
        async with dw.agent("pad") as agent:
            await live(agent)
            bad = {"ticket_id": ticket_id, "grade": "dissatisfied"}
            await agent.send_device_event("g-1", "rating", bad)
            await accepted(dw.db, pad, "g-1")
    assert (await _rating(dw, ticket_id) or {})["reasons"] == ["other"]
    assert [e["ticket"] for e in logs if e["event"] == "rating_without_reasons"] == [ticket_id]


async def test_an_unanswered_prompt_is_recorded_unrated_and_not_asked_again(
    dw: DeviceWorld,
) -> None:
    """rating_unrated stores the ticket with its window, staff, pad and reason, once; the pad
    is not asked about it again after a reconnect; a second rating of a rated ticket is
    refused and changes nothing."""
    w, pad = dw.w, dw.devices["pad"]
    ticket_id = await _serve(dw)
    url = f"/api/halls/{w.hall_id}/windows/{w.windows[0]}/rating-request"
    pending = await dw.client.get(url, headers=bearer(pad.token))
    assert pending.json()["ticket_id"] == ticket_id
    async with dw.agent("pad") as agent:
        await live(agent)
        unrated = {"ticket_id": ticket_id, "reason": "timed_out"}
        await agent.send_device_event("u-1", "rating_unrated", unrated)
        await agent.send_device_event("u-2", "rating_unrated", {**unrated, "reason": "no_answer"})
        await accepted(dw.db, pad, "u-2")
    row = await dw.db.fetchrow("SELECT * FROM rating_unrated WHERE ticket_id = $1", ticket_id)
    assert (row["window_id"], row["staff_id"], row["device_id"], row["reason"]) == (
        w.windows[0],
        w.staff[0],
        pad.id,
        "timed_out",
    )
    assert (await dw.client.get(url, headers=bearer(pad.token))).json() is None


async def test_a_rating_of_an_unserved_ticket_is_refused(dw: DeviceWorld) -> None:
    """A rating for a ticket still waiting (not served at the pad's window) is refused with
    not_found and stores nothing; the pad's link stays up."""
    pad = dw.devices["pad"]
    issued = await dw.client.post(
        f"/api/halls/{dw.hall_id}/tickets",
        json={"group_id": dw.w.groups["A"]},
        headers=bearer(dw.devices["kiosk"].token),
    )
    ticket_id = issued.json()["ticket_id"]
    with capture_logs() as logs:
        async with dw.agent("pad") as agent:
            await live(agent)
            rating = {"ticket_id": ticket_id, "grade": "satisfied"}
            await agent.send_device_event("g-1", "rating", rating)
            await accepted(dw.db, pad, "g-1")
            assert agent.state == "live"
    assert await _rating(dw, ticket_id) is None
    assert [e["code"] for e in logs if e["event"] == "device_event_refused"] == ["not_found"]
