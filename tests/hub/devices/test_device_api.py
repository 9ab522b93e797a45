"""Managing devices over HTTP: bindings (PATCH), remote settings (PUT …/config), the manager's
device page (GET /api/halls/{id}/devices), with roles, scopes and audit rows."""

from __future__ import annotations

from typing import Any

from tests.factories import make_device, make_hall, make_staff
from tests.hub.api.conftest import assert_problem, bearer, error_fields
from tests.hub.devices.conftest import PRINTER_OK, DeviceWorld, accepted, live, next_update
from tests.realtime.peers import Peer


async def _audit(dw: DeviceWorld, action: str) -> list[dict[str, Any]]:
    rows = await dw.db.fetch(
        "SELECT actor_label, target_id, before, after FROM audit_log WHERE action = $1 ORDER BY id",
        action,
    )
    return [dict(r) for r in rows]


async def test_a_manager_binds_a_printer_to_another_host_and_both_hosts_are_told(
    dw: DeviceWorld,
) -> None:
    """PATCH moves the printer: the old host loses it (e-ticket), the new one gets its state,
    the printer's own topic gets device_changed; the change is audited."""
    printer, kiosk, machine = dw.devices["printer"], dw.devices["kiosk"], dw.devices["machine"]
    async with dw.agent("printer") as agent, dw.agent("kiosk") as old, dw.agent("machine") as new:
        await live(agent, old, new)
        await agent.send_device_event("s-1", "printer_status", PRINTER_OK)
        # (Before its status, the printer's connecting was announced as "cannot print".)
        await next_update(old, "printer_state", where=lambda d: not d["e_ticket"])
        response = await dw.client.patch(
            f"/api/devices/{printer.id}", json={"host_id": machine.id}, headers=bearer(dw.manager)
        )
        assert response.status_code == 200, response.text
        assert response.json()["host_id"] == machine.id
        gone = await next_update(old, "printer_state")
        assert gone.data == {
            "printer_id": printer.id,
            "online": False,
            "paper": "ok",
            "cover_open": False,
            "error": False,
            "e_ticket": True,
        }
        came = await next_update(new, "printer_state")
        assert came.data["online"] is True and came.data["e_ticket"] is False
        changed = await next_update(agent, "device_changed")
        assert changed.data["host_id"] == machine.id
    [row] = await _audit(dw, "device.update")
    assert row["actor_label"] == "经理" and row["target_id"] == str(printer.id)
    assert row["before"]["host_id"] == kiosk.id and row["after"]["host_id"] == machine.id


async def test_bindings_are_checked_against_kind_and_hall(dw: DeviceWorld) -> None:
    """A host of another hall, a window of another hall, a host that is no kiosk, a window
    for a printer are refused, naming the field; null unbinds and a name renames."""
    printer, pad = dw.devices["printer"], dw.devices["pad"]
    other = await make_hall(dw.db, code="q9", windows=1)
    foreign_kiosk, _ = await make_device(dw.db, other.hall_id, "kiosk", "外厅自助机")
    headers = bearer(dw.manager)
    cases = [
        (printer.id, {"host_id": foreign_kiosk}, 404, "body.host_id"),
        (printer.id, {"host_id": dw.devices["camera"].id}, 422, "body.host_id"),
        (printer.id, {"host_id": None, "window_id": dw.w.windows[0]}, 422, "body.window_id"),
        (pad.id, {"window_id": other.window_ids[0]}, 404, "body.window_id"),
        (pad.id, {"host_id": dw.devices["kiosk"].id}, 422, "body.host_id"),
        (pad.id, {"colour": "red"}, 422, "body.colour"),
    ]
    for device_id, body, status, field in cases:
        response = await dw.client.patch(f"/api/devices/{device_id}", json=body, headers=headers)
        code = {404: "not_found", 422: "invalid_input"}[status]
        assert error_fields(assert_problem(response, status, code)) == [field], body
    moved = await dw.client.patch(
        f"/api/devices/{pad.id}", json={"window_id": dw.w.windows[1], "name": "2窗评价器"},
        headers=headers,
    )  # fmt: skip
    assert moved.status_code == 200, moved.text
    unbound = await dw.client.patch(
        f"/api/devices/{pad.id}", json={"window_id": None}, headers=headers
    )
    assert unbound.json()["window_id"] is None and unbound.json()["name"] == "2窗评价器"
    assert len(await _audit(dw, "device.update")) == 2


async def test_only_managers_of_the_hall_change_devices(dw: DeviceWorld) -> None:
    """Window staff, a supervisor and another hall's manager get 403; nothing changes."""
    _, other_manager = await make_staff(dw.db, "M9", [("hall_manager", "hall", dw.hall_id + 99)])
    printer = dw.devices["printer"]
    for token in (dw.w.tokens[0], dw.supervisor, other_manager):
        patch = await dw.client.patch(
            f"/api/devices/{printer.id}", json={"name": "x"}, headers=bearer(token)
        )
        assert_problem(patch, 403, "forbidden")
        put = await dw.client.put(
            f"/api/devices/{printer.id}/config", json={"settings": {}}, headers=bearer(token)
        )
        assert_problem(put, 403, "forbidden")
    assert await dw.db.fetchval("SELECT name FROM device WHERE id = $1", printer.id) == "1号打印机"
    assert_problem(await dw.client.patch(f"/api/devices/{printer.id}", json={}), 401,
                   "unauthenticated")  # fmt: skip


async def test_new_settings_reach_the_device_as_configure_and_in_its_snapshot(
    dw: DeviceWorld,
) -> None:
    """PUT …/config replaces the settings, emits configure on device:<id> (durable: a device
    that connects later has them in its snapshot), and is audited with before and after."""
    printer = dw.devices["printer"]
    settings = {"header": "欢迎光临", "footer": ["请保管好号票"], "poll_seconds": 2}
    async with dw.agent("printer") as agent:
        await live(agent)
        snapshot = await next_update(agent, snapshot=True)
        assert snapshot.data["config"] == {} and snapshot.data["host_id"] == dw.devices["kiosk"].id
        response = await dw.client.put(
            f"/api/devices/{printer.id}/config", json={"settings": settings},
            headers=bearer(dw.manager),
        )  # fmt: skip
        assert response.status_code == 200, response.text
        configure = await next_update(agent, "configure")
        assert configure.data == {"settings": settings}
    async with dw.agent("printer") as later:
        snapshot = await next_update(later, snapshot=True)
        assert snapshot.data["config"] == settings
    [row] = await _audit(dw, "device.configure")
    assert row["before"] == {"settings": {}} and row["after"] == {"settings": settings}
    bad = await dw.client.put(
        f"/api/devices/{printer.id}/config", json={"settings": {"timeout_s": 9999}},
        headers=bearer(dw.manager),
    )  # fmt: skip
    assert error_fields(assert_problem(bad, 422, "invalid_input")) == ["body.settings.timeout_s"]


async def _page(dw: DeviceWorld, token: str) -> dict[int, dict[str, Any]]:
    response = await dw.client.get(f"/api/halls/{dw.hall_id}/devices", headers=bearer(token))
    assert response.status_code == 200, response.text
    return {d["id"]: d for d in response.json()}


async def test_the_device_page_lists_bindings_presence_state_and_alerts(dw: DeviceWorld) -> None:
    """GET /api/halls/{id}/devices: every unrevoked device with its host and window, whether
    its peer is online, its reported state, model and firmware, and its live alerts; for
    the hall's managers and supervisors, not for window staff."""
    printer = dw.devices["printer"]
    info = {"model": "TM-T88VI", "firmware": "1.02", "parts": ["printer"]}
    async with dw.agent("printer") as agent:
        await live(agent)
        await agent.send_device_event("i-1", "device_info", info)
        await agent.send_device_event("s-1", "printer_status", {**PRINTER_OK, "paper": "low"})
        await accepted(dw.db, printer, "s-1")
        page = await _page(dw, dw.supervisor)
    assert set(page) == {d.id for d in dw.devices.values()}
    row = page[printer.id]
    assert row["online"] is True and row["last_seen"] is not None
    assert (row["kind"], row["host_id"], row["host_name"]) == (
        "printer",
        dw.devices["kiosk"].id,
        "1号自助机",
    )
    assert row["state"] == {**PRINTER_OK, "paper": "low", "parts": ["printer"]}
    assert (row["model"], row["firmware"], row["errors"]) == ("TM-T88VI", "1.02", 0)
    assert [(a["code"], a["level"], a["message"]) for a in row["alerts"]] == [
        ("paper_low", "warning", "1号自助机打印纸将尽")
    ]
    pad = (await _page(dw, dw.manager))[dw.devices["pad"].id]
    assert (pad["window_id"], pad["window_number"], pad["online"]) == (dw.w.windows[0], 1, False)
    refused = await dw.client.get(
        f"/api/halls/{dw.hall_id}/devices", headers=bearer(dw.w.tokens[0])
    )
    assert_problem(refused, 403, "forbidden")


async def test_revoking_a_device_ends_its_alerts(dw: DeviceWorld) -> None:
    """A revoked printer's alerts are cleared on alerts:<hall>; it leaves the device page."""
    printer = dw.devices["printer"]
    async with dw.console(dw.manager, f"alerts:{dw.hall_id}") as page:
        await live(page)
        async with dw.agent("printer") as agent:
            await live(agent)
            await agent.send_device_event("s-1", "printer_status", {**PRINTER_OK, "paper": "out"})
            raised = await next_update(page, "alert_raised")
            assert raised.data["alert"]["code"] == "paper_out"
            revoked = await dw.client.post(
                f"/api/devices/{printer.id}/revoke", headers=bearer(dw.manager)
            )
            assert revoked.status_code == 200, revoked.text
            cleared = await next_update(page, "alert_cleared")
            assert cleared.data == {"device_id": printer.id, "code": "paper_out"}
    listed = await dw.client.get(f"/api/halls/{dw.hall_id}/devices", headers=bearer(dw.manager))
    assert printer.id not in {d["id"] for d in listed.json()}
    assert await dw.db.fetchval("SELECT count(*) FROM device_alert") == 0


async def test_revoking_a_device_closes_its_live_connection(dw: DeviceWorld) -> None:
    """A connected device whose token is revoked is closed with 4401 within the presence
    period (the token is checked at hello only; revocation must not wait for a reconnect)."""
    kiosk = dw.devices["kiosk"]
    async with Peer.connect(dw.url) as peer:
        welcome = await peer.hello(kiosk.kind, kiosk.token)
        assert type(welcome).__name__ == "Welcome"
        revoked = await dw.client.post(
            f"/api/devices/{kiosk.id}/revoke", headers=bearer(dw.manager)
        )
        assert revoked.status_code == 200, revoked.text
        code, reason = await peer.close_code(timeout=15)
    assert (code, reason) == (4401, "device token revoked")
