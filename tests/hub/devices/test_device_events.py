"""Device events from fake agents (PeerClients speaking the real protocol) through the real
gateway, PostgreSQL and feed: alerts on alerts:<hall>, printer state and e-ticket mode on the
host's topic, print failures, codes scanned, device peers leaving and coming back."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from realtime.messages import Reply
from tests.hub.devices.conftest import PRINTER_OK, DeviceWorld, accepted, live, next_update
from tests.realtime.peers import Peer


async def test_paper_running_low_and_out_raises_alerts_once_and_the_kiosk_goes_e_ticket(
    dw: DeviceWorld,
) -> None:
    """paper ok → low → low (repeated) → out → ok: paper_low raised, paper_out raised and
    paper_low cleared, both cleared at the end, nothing for the repeat; the kiosk gets
    printer_state with e_ticket true while out and false when paper is back."""
    printer, hall = dw.devices["printer"], dw.hall_id
    async with dw.console(dw.manager, f"alerts:{hall}") as page, dw.agent("kiosk") as kiosk:
        await live(page, kiosk)
        snapshot = await next_update(page, snapshot=True)
        assert snapshot.data == {"hall_id": hall, "alerts": []}
        async with dw.agent("printer") as agent:
            await live(agent)
            for n, paper in enumerate(("ok", "low", "low", "out", "ok")):
                status = {**PRINTER_OK, "paper": paper}
                await agent.send_device_event(f"s-{n}", "printer_status", status)
                await accepted(dw.db, printer, f"s-{n}")
            names = []
            while len(names) < 4:
                event = await next_update(page, where=lambda d: True)
                if event.name in ("alert_raised", "alert_cleared"):
                    data = event.data
                    names.append((event.name, (data.get("alert") or data)["code"]))
            assert names == [
                ("alert_raised", "paper_low"),
                ("alert_cleared", "paper_low"),
                ("alert_raised", "paper_out"),
                ("alert_cleared", "paper_out"),
            ]
            seen: list[tuple[str, bool]] = []
            while ("out", True) not in seen or seen[-1] != ("ok", False):
                state = await next_update(kiosk, "printer_state", topic=dw.devices["kiosk"].topic)
                seen.append((state.data["paper"], state.data["e_ticket"]))
            assert ("low", False) in seen  # low paper still prints
    row = await dw.db.fetchrow("SELECT state, state_at FROM device WHERE id = $1", printer.id)
    assert row["state"] == PRINTER_OK and row["state_at"] is not None


async def test_an_alert_carries_the_device_and_a_chinese_message(dw: DeviceWorld) -> None:
    """alert_raised holds the whole DeviceAlert; a reconnecting page gets it in the snapshot."""
    printer = dw.devices["printer"]
    async with dw.agent("printer") as agent:
        await live(agent)
        await agent.send_device_event("s-1", "printer_status", {**PRINTER_OK, "cover_open": True})
        await accepted(dw.db, printer, "s-1")
    async with dw.console(dw.supervisor, f"alerts:{dw.hall_id}") as page:
        snapshot = await next_update(page, snapshot=True)
    alerts = {a["code"]: a for a in snapshot.data["alerts"]}
    assert set(alerts) == {"cover_open", "device_offline"}
    cover = alerts["cover_open"]
    assert cover == {
        "device_id": printer.id,
        "device_name": "1号打印机",
        "device_kind": "printer",
        "code": "cover_open",
        "level": "critical",
        "message": "1号自助机打印机上盖打开",
        "since": cover["since"],
    }
    assert alerts["device_offline"]["message"] == "1号打印机已离线"


async def test_a_device_peer_leaving_raises_device_offline_and_coming_back_clears_it(
    dw: DeviceWorld,
) -> None:
    """The pad's peer closes: device_offline (critical) on alerts:<hall>; it reconnects:
    alert_cleared; a printer leaving also turns its kiosk to e-tickets."""
    pad = dw.devices["pad"]
    async with dw.console(dw.manager, f"alerts:{dw.hall_id}") as page, dw.agent("kiosk") as kiosk:
        await live(page, kiosk)
        async with dw.agent("pad") as agent:
            await live(agent)
        raised = await next_update(page, "alert_raised")
        assert raised.data["alert"]["device_id"] == pad.id
        assert (raised.data["alert"]["code"], raised.data["alert"]["level"]) == (
            "device_offline",
            "critical",
        )
        async with dw.agent("pad") as agent:
            await live(agent)
            cleared = await next_update(page, "alert_cleared")
            assert cleared.data == {"device_id": pad.id, "code": "device_offline"}
        async with dw.agent("printer") as printer:
            await live(printer)
            await printer.send_device_event("s-1", "printer_status", PRINTER_OK)
            await next_update(kiosk, "printer_state", where=lambda d: not d["e_ticket"])
        gone = await next_update(kiosk, "printer_state", where=lambda d: d["e_ticket"])
        assert gone.data["online"] is False


async def test_the_agent_losing_the_hardware_raises_device_unreachable(dw: DeviceWorld) -> None:
    """device_state offline for a part raises device_unreachable naming it; online clears it;
    a printer whose link is down cannot print (its kiosk shows e-tickets)."""
    printer = dw.devices["printer"]
    async with dw.console(dw.manager, f"alerts:{dw.hall_id}") as page, dw.agent("kiosk") as kiosk:
        await live(page, kiosk)
        async with dw.agent("printer") as agent:
            await live(agent)
            await agent.send_device_event("s-1", "printer_status", PRINTER_OK)
            await next_update(kiosk, "printer_state", where=lambda d: not d["e_ticket"])
            down = {"part": "printer", "state": "offline", "reason": "port closed"}
            await agent.send_device_event("l-1", "device_state", down)
            raised = await next_update(page, "alert_raised")
            assert raised.data["alert"]["code"] == "device_unreachable"
            assert raised.data["alert"]["message"] == "1号打印机无法连接打印机"
            await next_update(kiosk, "printer_state", where=lambda d: d["e_ticket"])
            await agent.send_device_event("l-2", "device_state", {**down, "state": "online"})
            cleared = await next_update(page, "alert_cleared")
            assert cleared.data == {"device_id": printer.id, "code": "device_unreachable"}
            await next_update(kiosk, "printer_state", where=lambda d: not d["e_ticket"])
    state = await dw.db.fetchval("SELECT state FROM device WHERE id = $1", printer.id)
    assert state["links"] == {"printer": {"state": "online", "reason": "port closed"}}


async def test_device_info_and_print_failures_reach_the_device_page_and_the_kiosk(
    dw: DeviceWorld,
) -> None:
    """device_info stores model and firmware; print_failed counts an error, tells the kiosk
    that issued the ticket (with its number and token: it offers the e-ticket) and sends
    device_status to the device page."""
    printer, kiosk_dev = dw.devices["printer"], dw.devices["kiosk"]
    issued = await dw.client.post(
        f"/api/halls/{dw.hall_id}/tickets",
        json={"group_id": dw.w.groups["A"]},
        headers={"Authorization": f"Bearer {kiosk_dev.token}"},
    )
    ticket = issued.json()
    async with dw.console(dw.manager, f"alerts:{dw.hall_id}") as page, dw.agent("kiosk") as kiosk:
        await live(page, kiosk)
        async with dw.agent("printer") as agent:
            await live(agent)
            info = {"model": "RP-80", "firmware": "2.1", "parts": ["printer"]}
            await agent.send_device_event("i-1", "device_info", info)
            status = await next_update(page, "device_status")
            assert (status.data["model"], status.data["firmware"]) == ("RP-80", "2.1")
            failed = {"job": f"ticket:{ticket['ticket_id']}", "ticket_id": ticket["ticket_id"]}
            await agent.send_device_event("p-1", "print_failed", {**failed, "reason": "paper_out"})
            event = await next_update(kiosk, "print_failed")
            assert event.data == {
                "ticket_id": ticket["ticket_id"],
                "number": "A001",
                "token": ticket["token"],
                "reason": "paper_out",
            }
            assert event.seq is not None  # durable: the kiosk gets it after a reconnect too
            status = await next_update(page, "device_status", where=lambda d: d["errors"] == 1)
            assert status.data["device_id"] == printer.id
            await agent.send_device_event("p-2", "print_done", failed)
            await accepted(dw.db, printer, "p-2")
    row = await dw.db.fetchrow(
        "SELECT model, firmware, errors FROM device WHERE id = $1", printer.id
    )
    assert dict(row) == {"model": "RP-80", "firmware": "2.1", "errors": 1}


async def test_a_scanned_code_goes_to_the_kiosk_only_volatile_and_classified(
    dw: DeviceWorld,
) -> None:
    """code_scanned reaches the kiosk as a volatile event (seq None, not stored) with the
    code's kind and value (devices.codecs.code_reader.classify)."""
    reader = dw.devices["scanner_code"]
    async with dw.agent("kiosk") as kiosk, dw.agent("scanner_code") as agent:
        await live(kiosk, agent)
        await agent.send_device_event("c-1", "code_scanned", {"text": "123456"})
        event = await next_update(kiosk, "code_scanned")
        assert event.seq is None
        assert event.data == {"text": "123456", "kind": "appointment", "value": "123456"}
        url = "http://hall.example/ticket/?t=AbCdEfGhIjKlMnOpQrStUv"
        await agent.send_device_event("c-2", "code_scanned", {"text": url})
        event = await next_update(kiosk, "code_scanned")
        assert (event.data["kind"], event.data["value"]) == ("ticket", "AbCdEfGhIjKlMnOpQrStUv")
    await accepted(dw.db, reader, "c-2")
    stored = await dw.db.fetchval("SELECT count(*) FROM topic_event WHERE type = 'code_scanned'")
    assert stored == 0


async def test_a_repeated_or_refused_device_event_changes_nothing_and_is_acknowledged(
    dw: DeviceWorld,
) -> None:
    """A re-sent key is a duplicate; malformed data or an event of another kind of device is
    refused with its code, undone, and not retried; the connection stays up."""
    printer = dw.devices["printer"]
    async with Peer.connect(dw.url) as peer:
        await peer.hello("printer", printer.token)

        async def send(key: str, name: str, data: object) -> object:
            await peer.send({"type": "device_event", "key": key, "name": name, "data": data})
            while True:
                frame = await peer.recv()
                if isinstance(frame, Reply):
                    assert frame.id == key
                    return frame.data

        with capture_logs() as logs:
            assert await send("s-1", "printer_status", {**PRINTER_OK, "paper": "out"}) == {
                "accepted": True,
                "duplicate": False,
            }
            assert await send("s-1", "printer_status", PRINTER_OK) == {
                "accepted": False,
                "duplicate": True,
            }
            bad = {**PRINTER_OK, "paper": "half"}
            assert await send("s-2", "printer_status", bad) == {
                "accepted": False,
                "duplicate": False,
                "error": "invalid_input",
            }
            assert await send("c-1", "card_read", {"request_id": "", "card": {}}) == {
                "accepted": False,
                "duplicate": False,
                "error": "invalid_input",
            }
            scanned = await send("c-2", "code_scanned", {"text": "x"})
            assert scanned == {"accepted": False, "duplicate": False, "error": "forbidden"}
            assert (await send("s-2", "printer_status", PRINTER_OK))["duplicate"] is True
        refused = [e for e in logs if e["event"] == "device_event_refused"]
        assert [e["code"] for e in refused] == ["invalid_input", "invalid_input", "forbidden"]
    state = await dw.db.fetchval("SELECT state FROM device WHERE id = $1", printer.id)
    assert state["paper"] == "out"
    codes = await dw.db.fetch(
        "SELECT code FROM device_alert WHERE device_id = $1 AND code LIKE 'paper%'", printer.id
    )
    assert [r["code"] for r in codes] == ["paper_out"]


@pytest.mark.parametrize("topic_kind", ["alerts", "presence"])
async def test_alerts_are_for_the_halls_managers_and_supervisors(
    dw: DeviceWorld, topic_kind: str
) -> None:
    """alerts:<hall> follows presence:<hall>: managers and supervisors covering the hall may
    subscribe; window staff and devices are closed with 4403."""
    topics = [{"topic": f"{topic_kind}:{dw.hall_id}"}]
    for kind, token in (("console", dw.manager), ("console", dw.supervisor)):
        async with Peer.connect(dw.url) as peer:
            welcome = await peer.hello(kind, token, topics)
            assert type(welcome).__name__ == "Welcome", welcome
    for kind, token in (("console", dw.w.tokens[0]), ("kiosk", dw.devices["kiosk"].token)):
        async with Peer.connect(dw.url) as peer:
            await peer.send({"type": "hello", "kind": kind, "token": token, "topics": topics})
            assert (await peer.close_code())[0] == 4403
