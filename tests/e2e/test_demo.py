"""`hallhub demo` from nothing: embedded PostgreSQL, a seeded hall, simulated devices online."""

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


async def test_the_demo_starts_on_an_embedded_database_and_shows_its_devices_online(
    tmp_path: Path,
):
    """The banner's status URL works: its token sees every simulated device come online."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HALLHUB_")} | {
        "HALLHUB_DATA_DIR": str(tmp_path / "var"),
        "HALLHUB_HTTP_PORT": "0",
        "HALLHUB_GATEWAY_PORT": "0",
        "HALLHUB_LOG_JSON": "true",
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
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        async with asyncio.timeout(30):
            await proc.wait()
