"""`hallhub demo` from nothing: embedded PostgreSQL, the hall of hub/demo_hall.toml, its
hardware simulated and driven by the device agent (hub/demo_devices.py), simulated staff
calling the tickets simulated citizens take.

What the demo does is read from its JSON log lines (stderr) and from the hub (the HTTP API,
the presence and alert topics); every wait is for a log line, a frame or an API answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from hub.demo import DEMO_HALL_FILE
from hub.hallfile import load
from realtime.messages import Event, Snapshot
from tests.e2e.processes import until
from tests.realtime.peers import Peer

HALLHUB = str(Path(sys.prefix) / "bin" / "hallhub")
SPEED = 20

SCREENS = [
    r"/hall/\?hall={hall}",
    r"/window/\?hall={hall}&window=\d+",
    r"/kiosk/\?hall={hall}",
    r"/staff/\?hall={hall}",
    r"/manage/\?hall={hall}",
    r"/status/\?hall={hall}&token=",
    r"/devices/\?hall={hall}&token=",
]
# The kinds whose hardware the demo simulates; the agent reports each one's model.
MODELS = {
    "printer": "ESC/POS",
    "evaluator": "HH-EV5",
    "window_display": "HH-LED4816",
    "id_reader": "SAM (GA 467)",
}


class Logs:
    """The demo's JSON log lines, read as they come."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                if isinstance(line, dict):
                    self.lines.append(line)
                    self._new.set()

    async def first(
        self,
        event: str,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
        within: float = 60,
    ) -> dict[str, Any]:
        """The first line of ``event`` (that ``where`` accepts), logged already or to come."""
        seen = 0
        async with asyncio.timeout(within):
            while True:
                for line in self.lines[seen:]:
                    if line.get("event") == event and where(line):
                        return line
                seen = len(self.lines)
                self._new.clear()
                await self._new.wait()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def demo(tmp_path: Path) -> AsyncIterator[tuple[str, Logs]]:
    """``hallhub demo`` running; its banner and its logs. SIGINT at the end, as Ctrl-C."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALLHUB_")} | {
        "HALLHUB_DATA_DIR": str(tmp_path / "var"),
        "HALLHUB_HTTP_PORT": "0",
        "HALLHUB_GATEWAY_PORT": "0",
        "HALLHUB_LOG_JSON": "true",
        "HALLHUB_DEMO_SPEED": str(SPEED),
    }
    proc = await asyncio.create_subprocess_exec(
        HALLHUB, "demo", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    logs = Logs(proc.stderr)
    try:
        banner = ""
        async with asyncio.timeout(60):
            while "Ctrl-C" not in banner:
                line = await proc.stdout.readline()
                assert line, "the demo exited before printing its URLs"
                banner += line.decode()
        yield banner, logs
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        async with asyncio.timeout(30):
            await proc.wait()
        await logs.close()


async def test_the_demo_starts_on_an_embedded_database_and_shows_its_devices_online(
    tmp_path: Path,
) -> None:
    """The banner's status URL works: its token sees every device of the hall file come
    online, the simulated ones with the model their agent read from the hardware. The banner
    names every screen of the hall; the hall has the file's groups and windows, and its
    simulated staff call tickets."""
    async with demo(tmp_path) as (banner, logs):
        match = re.search(r"http://127\.0\.0\.1:(\d+)/status/\?hall=(\d+)&token=(\S+)", banner)
        assert match, banner
        port, hall, token = match.groups()
        base = f"http://127.0.0.1:{port}"
        for screen in SCREENS:
            assert re.search(re.escape(base) + screen.format(hall=hall), banner), (screen, banner)
        async with httpx.AsyncClient(base_url=base, timeout=10, trust_env=False) as http:
            info = (await http.get("/api/realtime")).json()
            gateway = int(info["gateway_port"])
            auth = {"Authorization": f"Bearer {token}"}
            devices = (await http.get(f"/api/halls/{hall}/devices", headers=auth)).json()
            assert {(d["kind"], d["name"]) for d in devices} == {
                (d.kind, d.name) for d in load(DEMO_HALL_FILE).devices
            }
            async with Peer.connect(f"ws://127.0.0.1:{gateway}/") as watcher:
                await watcher.hello("console", token, [{"topic": f"presence:{hall}"}])
                snapshot = await watcher.recv()
                assert isinstance(snapshot, Snapshot)
                online = {p["peer_id"] for p in snapshot.data["peers"] if p["online"]}
                everyone = {f"device:{d['id']}" for d in devices}
                while not everyone <= online:
                    frame = await watcher.recv(timeout=20)
                    if isinstance(frame, Event) and frame.name == "peer_online":
                        online.add(frame.data["peer_id"])

            async def hardware_reported() -> bool:
                """Each simulated device's agent connected to its hardware (device_info)."""
                listed = (await http.get(f"/api/halls/{hall}/devices", headers=auth)).json()
                return all(d["model"] == MODELS[d["kind"]] for d in listed if d["kind"] in MODELS)

            await until(hardware_reported, within=30, what="the agent's devices report in")

        # A ticket comes out of a simulated printer: the number and the QR code of a ticket
        # the hub issued (its citizen's page, on the banner's address).
        printed = await logs.first("demo_ticket_printed")
        assert re.fullmatch(r"[A-E]\d{3}", printed["number"]), printed
        assert printed["qr"].startswith(f"{base}/ticket/?t="), printed
        ticket_token = printed["qr"].rpartition("=")[2]
        async with httpx.AsyncClient(base_url=base, timeout=10, trust_env=False) as http:
            ticket = (await http.get(f"/api/tickets/{ticket_token}")).json()
        assert ticket["number"] == printed["number"]

        async with Peer.connect(f"ws://127.0.0.1:{gateway}/") as display:
            await display.hello("hall_display", None, [{"topic": f"hall:{hall}"}])
            snapshot = await display.recv()
            assert isinstance(snapshot, Snapshot)
            queue = snapshot.data["queue"]
            assert [g["prefix"] for g in queue["groups"]] == ["A", "B", "C", "D", "E"]
            assert [w["number"] for w in queue["windows"]] == list(range(1, 9))
            assert all(w["group_ids"] for w in queue["windows"])
            called = None
            while called is None:
                frame = await display.recv(timeout=30)
                if isinstance(frame, Event) and frame.name == "ticket_called":
                    called = frame.data["call"]
            assert re.fullmatch(r"[A-E]\d{3}", called["number"]), called


async def test_the_demo_shows_paper_running_out_and_coming_back_cards_read_and_ratings_given(
    tmp_path: Path,
) -> None:
    """The first printer's used roll runs out: the hall's alert topic raises paper_out for it
    and clears it once the simulated attendant put a new roll in; a card put on the kiosk's
    reader reaches the kiosk; the LED panels show their windows; a citizen's press on a
    window's pad is a rating in the hub."""
    async with demo(tmp_path) as (banner, logs):
        match = re.search(r"http://127\.0\.0\.1:(\d+)/devices/\?hall=(\d+)&token=(\S+)", banner)
        assert match, banner
        port, hall, token = match.groups()
        started = await logs.first("demo_devices_started", within=5)
        assert (started["printers"], started["readers"], started["pads"], started["panels"]) == (
            3, 1, 4, 4,
        )  # fmt: skip
        async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
            info = (await http.get(f"http://127.0.0.1:{port}/api/realtime")).json()
        async with Peer.connect(f"ws://127.0.0.1:{info['gateway_port']}/") as watcher:
            await watcher.hello("console", token, [{"topic": f"alerts:{hall}"}])
            snapshot = await watcher.recv()
            assert isinstance(snapshot, Snapshot)
            out: dict[str, Any] | None = None
            while True:
                frame = await watcher.recv(timeout=60)
                if not isinstance(frame, Event):
                    continue
                if frame.name == "alert_raised" and frame.data["alert"]["code"] == "paper_out":
                    out = frame.data["alert"]
                    assert out["message"].endswith("打印纸已用完"), out
                    assert out["level"] == "critical"
                elif (
                    out is not None
                    and frame.name == "alert_cleared"
                    and frame.data == {"device_id": out["device_id"], "code": "paper_out"}
                ):
                    break
        empty = await logs.first("demo_printer_paper", lambda line: line["paper"] == "out")
        refilled = await logs.first(
            "demo_printer_paper",
            lambda line: line["paper"] == "ok" and line["printer"] == empty["printer"],
        )
        assert refilled["timestamp"] > empty["timestamp"]

        put = await logs.first("demo_card_put")
        assert re.fullmatch(r"\d{3}\*{11}[\dX]{4}", put["id_number"]), put
        read = await logs.first("card_read", lambda line: line.get("id_number") == put["id_number"])
        assert read["to"].startswith("device:") and read["request"] == ""

        shown = await logs.first("demo_panel_shows", lambda line: bool(line["lines"]))
        assert re.fullmatch(r"[1-4]号窗口 .+", shown["header"]), shown

        pressed = await logs.first("demo_pad_pressed")
        await logs.first("rating_received", within=30)
        assert pressed["grade"] in (
            "very_satisfied", "satisfied", "basically_satisfied", "dissatisfied",
            "very_dissatisfied",
        )  # fmt: skip
