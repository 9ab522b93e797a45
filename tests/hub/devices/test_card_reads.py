"""ID card reads: a kiosk page or a staff console asks (websocket command read_card), the
reader's agent reads, and the card reaches the asker only, VOLATILE, its number masked in
every log line."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from realtime.client import PeerClient
from tests.hub.api.conftest import bearer
from tests.hub.devices.conftest import DeviceWorld, accepted, live, next_update

ID_NUMBER = "11010519491231002X"
CARD = {
    "name": "张三",
    "sex": "男",
    "nation": "汉",
    "birth_date": "1949-12-31",
    "address": "北京市东城区某街1号",
    "id_number": ID_NUMBER,
    "authority": "北京市公安局东城分局",
    "valid_from": "2019-03-01",
    "valid_to": None,
}


async def _read_card(peer: PeerClient, **args: Any) -> Any:
    reply = await peer.command("read_card", args)
    return reply


async def test_a_kiosk_asks_its_reader_and_gets_the_card_volatile_and_nobody_else_does(
    dw: DeviceWorld,
) -> None:
    """read_card → read_card {request_id, timeout_s} on the reader's topic → the agent's
    card_read → card_read on the kiosk's topic with the whole card, seq None; not stored,
    not on the other host, and logged with the number masked."""
    reader, kiosk_dev = dw.devices["reader"], dw.devices["kiosk"]
    with capture_logs() as logs:
        async with (
            dw.agent("kiosk") as kiosk,
            dw.agent("machine") as machine,
            dw.agent("reader") as agent,
        ):
            await live(kiosk, machine, agent)
            reply = await _read_card(kiosk, reader_id=reader.id)
            assert reply.ok, reply
            request_id = reply.data["request_id"]
            asked = await next_update(agent, "read_card", topic=reader.topic)
            assert asked.data == {"request_id": request_id, "timeout_s": 20}
            read_data = {"request_id": request_id, "card": CARD}
            await agent.send_device_event("r-1", "card_read", read_data)
            read = await next_update(kiosk, "card_read", topic=kiosk_dev.topic)
            assert read.seq is None
            assert read.data == {"request_id": request_id, "card": CARD}
            # A card put on the reader unasked goes to the kiosk all the same.
            await agent.send_device_event("r-2", "card_read", {"request_id": "", "card": CARD})
            unasked = await next_update(kiosk, "card_read")
            assert unasked.data["request_id"] == ""
            await accepted(dw.db, reader, "r-2")
            # Both reads were fanned out before the kiosk saw the second: the other host's
            # peer (same process) would have them by now.
            others = [machine.updates.get_nowait() for _ in range(machine.updates.qsize())]
            assert "card_read" not in [getattr(u, "name", None) for u in others]
    stored = await dw.db.fetchval(
        "SELECT count(*) FROM topic_event WHERE type IN ('card_read', 'card_read_failed')"
    )
    assert stored == 0
    assert not [e for e in logs if ID_NUMBER in repr(e) or "张三" in repr(e)]
    routed = [e for e in logs if e["event"] == "card_read"]
    assert [e["id_number"] for e in routed] == ["110***********002X"] * 2


async def test_a_kiosk_without_reader_id_uses_its_own_and_may_not_use_anothers(
    dw: DeviceWorld,
) -> None:
    """Without reader_id the kiosk's own reader is asked; the ticket machine (no reader)
    gets no_reader, and asking the kiosk's reader by id gets forbidden."""
    reader = dw.devices["reader"]
    async with dw.agent("kiosk") as kiosk, dw.agent("machine") as machine:
        await live(kiosk, machine)
        async with dw.agent("reader") as agent:
            await live(agent)
            reply = await _read_card(kiosk)
            assert reply.ok
            asked = await next_update(agent, "read_card")
            assert asked.data["request_id"] == reply.data["request_id"]
        none = await _read_card(machine)
        assert (none.ok, none.error.code) == (False, "no_reader")
        foreign = await _read_card(machine, reader_id=reader.id)
        assert (foreign.ok, foreign.error.code) == (False, "forbidden")
        not_a_reader = await _read_card(kiosk, reader_id=dw.devices["printer"].id)
        assert (not_a_reader.ok, not_a_reader.error.code) == (False, "not_found")
        bad = await _read_card(kiosk, reader_id="one")
        assert (bad.ok, bad.error.code) == (False, "invalid_input")


async def test_a_reader_that_is_not_connected_fails_the_read_at_once(dw: DeviceWorld) -> None:
    """No read_card is written for an offline reader; the asker gets card_read_failed
    offline with the request's id."""
    reader = dw.devices["reader"]
    async with dw.agent("kiosk") as kiosk:
        await live(kiosk)
        reply = await _read_card(kiosk, reader_id=reader.id)
        assert reply.ok
        failed = await next_update(kiosk, "card_read_failed")
        assert failed.seq is None
        assert failed.data == {"request_id": reply.data["request_id"], "reason": "offline"}
    written = await dw.db.fetchval(
        "SELECT count(*) FROM topic_event WHERE topic = $1", reader.topic
    )
    assert written == 0


async def test_a_window_reader_serves_the_staff_member_signed_in_at_its_window(
    dw: DeviceWorld,
) -> None:
    """The clerk of window 1 asks from the console (staff peer): the window's reader is asked,
    its failure and its card go to staff:<clerk>; a clerk of another window is refused."""
    w = dw.w
    reader = dw.devices["window_reader"]
    url = f"/api/halls/{w.hall_id}/windows"
    for i in (0, 1):
        signed = await dw.client.post(f"{url}/{w.windows[i]}/sign-in", headers=bearer(w.tokens[i]))
        assert signed.status_code == 200, signed.text
    staff_topic = f"staff:{w.staff[0]}"
    async with (
        dw.console(w.tokens[0], staff_topic) as console,
        dw.console(w.tokens[1], f"staff:{w.staff[1]}") as other,
        dw.agent("window_reader") as agent,
    ):
        await live(console, other, agent)
        reply = await _read_card(console)
        assert reply.ok, reply
        asked = await next_update(agent, "read_card", topic=reader.topic)
        request_id = asked.data["request_id"]
        assert request_id == reply.data["request_id"]
        await agent.send_device_event(
            "f-1", "card_read_failed", {"request_id": request_id, "reason": "no_card"}
        )
        failed = await next_update(console, "card_read_failed", topic=staff_topic)
        assert failed.seq is None and failed.data == {"request_id": request_id, "reason": "no_card"}
        await agent.send_device_event("r-1", "card_read", {"request_id": request_id, "card": CARD})
        read = await next_update(console, "card_read", topic=staff_topic)
        assert read.data["card"]["id_number"] == ID_NUMBER
        refused = await _read_card(other, reader_id=reader.id)
        assert (refused.ok, refused.error.code) == (False, "forbidden")


async def test_a_card_for_nobody_is_dropped(dw: DeviceWorld) -> None:
    """A window reader whose window has nobody signed in: the read goes nowhere (logged
    masked), and is acknowledged."""
    reader = dw.devices["window_reader"]
    with capture_logs() as logs:
        async with dw.agent("window_reader") as agent:
            await live(agent)
            await agent.send_device_event("r-1", "card_read", {"request_id": "", "card": CARD})
            await accepted(dw.db, reader, "r-1")
    [dropped] = [e for e in logs if e["event"] == "card_read_unrouted"]
    assert dropped["id_number"] == "110***********002X"
    assert not [e for e in logs if ID_NUMBER in repr(e)]
