"""Queue KPIs (Q9) from real tickets, and the xlsx download built in the worker pool."""

from __future__ import annotations

import io

import asyncpg
import openpyxl
import pytest

from hub.services import kpis
from hub.services.queue import TicketRequest
from tests.factories import make_staff
from tests.hub.api.conftest import Client, assert_problem, bearer
from tests.hub.queue.world import Clock, QueueWorld, build_world


async def _serve_three(w: QueueWorld) -> None:
    """A001 waits 2 min and is served for 5; A002 waits 4 min and does not come twice."""
    for _ in range(2):
        await w.queue.issue(
            w.hall_id, TicketRequest(group_id=w.groups["A"]), source="kiosk", caller="device"
        )
    actor, window = w.actors[0], w.windows[0]
    await w.queue.sign_in(actor, w.place, window)
    w.clock.advance(minutes=2)
    await w.queue.call_next(actor, w.place, window)
    w.clock.advance(minutes=5)
    await w.queue.finish(actor, w.place, window)
    await w.queue.call_next(actor, w.place, window)
    await w.queue.skip(actor, w.place, window)
    await w.queue.call_next(actor, w.place, window)
    await w.queue.skip(actor, w.place, window)


async def test_kpis_per_window_staff_group_and_hour(db: asyncpg.Pool, qworld: QueueWorld):
    w = qworld
    await _serve_three(w)
    day = w.clock.now.date()
    by_window = await kpis.report(db, w.hall_id, day, day, "window")
    assert [(r.label, r.issued, r.served, r.no_shows) for r in by_window.rows] == [
        ("1号窗口", 2, 1, 1)
    ]
    row = by_window.rows[0]
    assert row.avg_service_seconds == 300
    # A001 waited 120 s; A002 was last called at 7 min.
    assert row.avg_wait_seconds == pytest.approx((120 + 420) / 2)
    by_staff = await kpis.report(db, w.hall_id, day, day, "staff")
    assert by_staff.rows[0].label == "窗口1（q1-W1）"
    by_hour = await kpis.report(db, w.hall_id, day, day, "hour")
    assert [(r.label, r.issued) for r in by_hour.rows] == [("10:00", 2)]
    by_group = await kpis.report(db, w.hall_id, day, day, "group")
    assert [r.label for r in by_group.rows] == ["A 社保业务"]


async def test_the_xlsx_download_is_for_oversight_roles_and_audited(
    db: asyncpg.Pool, client: Client
):
    clock = Clock()
    hub = client.app.state.hub
    hub.clock = clock
    w = await build_world(db, hub, clock)
    # The app's hub runs on the test client's own loop: drive it through HTTP only.
    base = f"/api/halls/{w.hall_id}"
    window = f"{base}/windows/{w.windows[0]}"
    staff = bearer(w.tokens[0])
    for _ in range(2):
        issued = await client.post(f"{base}/tickets", json={"group_id": w.groups["A"]})
        assert issued.status_code == 201, issued.text
    for action, minutes in [("sign-in", 2), ("call", 5), ("finish", 0), ("call", 0),
                            ("skip", 0), ("call", 0), ("skip", 0)]:  # fmt: skip
        done = await client.post(f"{window}/{action}", headers=staff)
        assert done.status_code == 200, done.text
        clock.advance(minutes=minutes)
    _, manager = await make_staff(db, "KM1", [("hall_manager", "hall", w.hall_id)])
    day = clock.now.date().isoformat()
    url = f"/api/halls/{w.hall_id}/kpis.xlsx?from={day}&to={day}"
    refused = await client.get(url, headers=bearer(w.tokens[0]))
    assert_problem(refused, 403, "forbidden")
    response = await client.get(url, headers=bearer(manager))
    assert response.status_code == 200, response.text
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["按窗口", "按人员", "按业务", "按时段"]
    sheet = book["按窗口"]
    assert [c.value for c in sheet[4]][:4] == ["1号窗口", 2, 1, 1]
    audited = await db.fetchval("SELECT count(*) FROM audit_log WHERE action = 'kpi.export'")
    assert audited == 1
    bad = await client.get(
        f"/api/halls/{w.hall_id}/kpis?from={day}&to=2020-01-01", headers=bearer(manager)
    )
    assert assert_problem(bad, 422, "invalid_input")["errors"][0]["field"] == "query.to"
