"""The agent's entry points (devices/agent/main.py): exit codes, and a clean stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from devices.agent.config import parse_config
from devices.agent.main import EXIT_CONFIG, run, run_agent
from devices.transport.serial import SerialPort
from tests.devices.agent.helpers import eventually, fast_backoff, wait_for
from tests.support.ptys import pty_pair


def test_a_bad_config_is_exit_code_2_with_the_field_logged(tmp_path: Path) -> None:
    """run() refuses a config naming no port for a printer: exit 2, the field in the log."""
    path = tmp_path / "agent.toml"
    path.write_text('hub = "ws://h/"\n[[device]]\nkind = "printer"\ntoken = "t"\n')
    with capture_logs() as logs:
        assert run(str(path)) == EXIT_CONFIG
    (entry,) = [e for e in logs if e["event"] == "agent_config_invalid"]
    assert "`$.device[0]`" in entry["error"] and "port" in entry["error"]


async def test_stop_closes_every_port_and_returns_0() -> None:
    """An agent whose hub is unreachable and whose printer is silent keeps trying; set stop
    and it returns 0 with the port released (it opens again at once)."""
    async with pty_pair() as (port, _printer_end):
        config = parse_config(
            {
                "hub": "ws://127.0.0.1:1/",
                "device": [{"kind": "printer", "token": "t", "port": port}],
            }
        )
        stop = asyncio.Event()
        with capture_logs() as logs:
            task = asyncio.create_task(run_agent(config, stop=stop, backoff=fast_backoff))
            # The silent printer is found offline (and retried) before the stop.
            await eventually(
                lambda: any(e["event"] == "device_offline" for e in logs), what="offline"
            )
            stop.set()
            assert await wait_for(task) == 0
        async with SerialPort(port):
            pass
