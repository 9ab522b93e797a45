"""`hallhub demo` from nothing: embedded PostgreSQL, the hall of hub/demo_hall.toml, simulated
devices online, simulated staff calling the tickets simulated citizens take."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import urllib.request
from pathlib import Path

from realtime.messages import Event, Snapshot
from tests.realtime.peers import Peer

HALLHUB = str(Path(sys.prefix) / "bin" / "hallhub")


SCREENS = [
    r"/hall/\?hall={hall}",
    r"/window/\?hall={hall}&window=\d+",
    r"/kiosk/\?hall={hall}",
    r"/staff/\?hall={hall}",
    r"/manage/\?hall={hall}",
    r"/status/\?hall={hall}&token=",
]


async def test_the_demo_starts_on_an_embedded_database_and_shows_its_devices_online(
    tmp_path: Path,
):
    """The banner's status URL works: its token sees every simulated device come online.
    The banner names every screen of the hall; the hall has the file's groups and windows,
    and its simulated staff call tickets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALLHUB_")} | {
        "HALLHUB_DATA_DIR": str(tmp_path / "var"),
        "HALLHUB_HTTP_PORT": "0",
        "HALLHUB_GATEWAY_PORT": "0",
        "HALLHUB_LOG_JSON": "true",
        "HALLHUB_DEMO_SPEED": "20",
    }
    proc = await asyncio.create_subprocess_exec(
        HALLHUB, "demo", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        banner = ""
        async with asyncio.timeout(60):
            while "Ctrl-C" not in banner:
                line = await proc.stdout.readline()
                assert line, "the demo exited before printing its URLs"
                banner += line.decode()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/status/\?hall=(\d+)&token=(\S+)", banner)
        assert match, banner
        port, hall, token = match.groups()
        base = re.escape(f"http://127.0.0.1:{port}")
        for screen in SCREENS:
            assert re.search(base + screen.format(hall=hall), banner), (screen, banner)
        info = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/api/realtime").read()
        )
        gateway = int(re.search(rb'"gateway_port":(\d+)', info).group(1))  # type: ignore[union-attr]
        async with Peer.connect(f"ws://127.0.0.1:{gateway}/") as watcher:
            await watcher.hello("console", token, [{"topic": f"presence:{hall}"}])
            snapshot = await watcher.recv()
            assert isinstance(snapshot, Snapshot)
            online = {p["peer_id"] for p in snapshot.data["peers"] if p["online"]}
            while len(online) < 8:
                frame = await watcher.recv(timeout=20)
                if isinstance(frame, Event) and frame.name == "peer_online":
                    online.add(frame.data["peer_id"])
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
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        async with asyncio.timeout(30):
            await proc.wait()
