"""Paper tickets (D1, Q7): a kiosk's ticket is printed by its printer when that printer can
print (print_ticket written with the ticket), else the kiosk shows the e-ticket."""

from __future__ import annotations

from typing import Any

from tests.hub.api.conftest import bearer
from tests.hub.devices.conftest import (
    PRINTER_OK,
    Dev,
    DeviceWorld,
    accepted,
    live,
    next_update,
    until,
)


async def _issue(dw: DeviceWorld, dev: Dev) -> dict[str, Any]:
    response = await dw.client.post(
        f"/api/halls/{dw.hall_id}/tickets",
        json={"group_id": dw.w.groups["A"]},
        headers=bearer(dev.token),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _print_jobs(dw: DeviceWorld, printer: Dev) -> int:
    return int(
        await dw.db.fetchval(
            "SELECT count(*) FROM topic_event WHERE topic = $1 AND type = 'print_ticket'",
            printer.topic,
        )
    )


async def test_a_kiosk_ticket_is_printed_by_its_printer_with_hall_number_and_qr(
    dw: DeviceWorld,
) -> None:
    """The answer says queued; the printer gets print_ticket with the hall's name, the
    number, the group, the people ahead, the hall-local time, the citizen page's address
    (as the ticket's QR code) and the header of its configuration."""
    printer, kiosk = dw.devices["printer"], dw.devices["kiosk"]
    await dw.db.execute(
        """UPDATE device SET config = '{"header": "欢迎光临", "footer": ["谢谢"]}' WHERE id = $1""",
        printer.id,
    )
    async with dw.agent("printer") as agent:
        await live(agent)
        await agent.send_device_event("s-1", "printer_status", PRINTER_OK)
        await accepted(dw.db, printer, "s-1")
        first = await _issue(dw, kiosk)
        second = await _issue(dw, kiosk)
        assert (first["print"], second["print"]) == ("queued", "queued")
        job = await next_update(agent, "print_ticket", topic=printer.topic)
        base = str(dw.client.base_url).rstrip("/")
        assert job.data == {
            "job": f"ticket:{first['ticket_id']}",
            "ticket_id": first["ticket_id"],
            "token": first["token"],
            "ticket": {
                "hall_name": "q1 政务服务大厅",
                "number": "A001",
                "group_name": "社保业务",
                "people_ahead": 0,
                "issued_at": "2026-11-25 10:00",
                "qr_url": f"{base}/ticket/?t={first['token']}",
                "header": "欢迎光临",
                "footer": ["谢谢"],
            },
        }
        job = await next_update(agent, "print_ticket")
        assert (job.data["ticket"]["number"], job.data["ticket"]["people_ahead"]) == ("A002", 1)
    qr = await dw.client.get(f"/api/tickets/{first['token']}/qr.svg")
    assert qr.status_code == 200


async def test_a_printer_without_paper_or_connection_gives_an_e_ticket(dw: DeviceWorld) -> None:
    """Paper out, cover open, a printer that left, a machine without printer, staff: the
    answer says e_ticket and no print job is written; low paper still prints."""
    printer, kiosk = dw.devices["printer"], dw.devices["kiosk"]
    async with dw.agent("printer") as agent:
        await live(agent)
        for n, status in enumerate(
            (
                {**PRINTER_OK, "paper": "out", "online": False},
                {**PRINTER_OK, "cover_open": True},
                {**PRINTER_OK, "paper": "low"},
            )
        ):
            await agent.send_device_event(f"s-{n}", "printer_status", status)
            await accepted(dw.db, printer, f"s-{n}")
            issued = await _issue(dw, kiosk)
            assert issued["print"] == ("queued" if status["paper"] == "low" else "e_ticket")
    assert await _print_jobs(dw, printer) == 1
    await _issue_when_gone(dw, printer, kiosk)
    assert (await _issue(dw, dw.devices["machine"]))["print"] == "e_ticket"
    staff = await dw.client.post(
        f"/api/halls/{dw.hall_id}/tickets",
        json={"group_id": dw.w.groups["A"]},
        headers=bearer(dw.w.tokens[0]),
    )
    assert staff.json()["print"] == "e_ticket"
    assert await _print_jobs(dw, printer) == 1


async def _issue_when_gone(dw: DeviceWorld, printer: Dev, kiosk: Dev) -> None:
    async def offline() -> bool:
        return not await dw.db.fetchval(
            "SELECT online FROM peer_presence WHERE peer_id = $1", f"device:{printer.id}"
        )

    await until(offline)
    assert (await _issue(dw, kiosk))["print"] == "e_ticket"


async def test_a_kiosk_learns_its_e_ticket_mode_from_its_snapshot(dw: DeviceWorld) -> None:
    """device:<kiosk>'s snapshot: e_ticket true while no printer can print, with each
    printer's state; false once the printer reports paper."""
    printer = dw.devices["printer"]
    async with dw.agent("kiosk") as kiosk:
        snapshot = await next_update(kiosk, snapshot=True)
        assert snapshot.data["kind"] == "kiosk" and snapshot.data["e_ticket"] is True
        assert snapshot.data["printers"] == [
            {
                "printer_id": printer.id,
                "online": False,
                "paper": "ok",
                "cover_open": False,
                "error": False,
                "e_ticket": True,
            }
        ]
    async with dw.agent("printer") as agent:
        await live(agent)
        await agent.send_device_event("s-1", "printer_status", PRINTER_OK)
        await accepted(dw.db, printer, "s-1")
        async with dw.agent("kiosk") as kiosk:
            snapshot = await next_update(kiosk, snapshot=True)
            assert snapshot.data["e_ticket"] is False
            assert snapshot.data["printers"][0]["online"] is True
