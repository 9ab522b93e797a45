"""``hallhub agent --config agent.toml``: the process on a hall PC or kiosk that owns its local
devices and speaks the peer protocol to the hub.

:func:`run` is the blocking entry point the CLI calls; :func:`run_agent` is the coroutine
(tests and the demo run it with a ``stop`` event). Every configured device gets a
:class:`~devices.agent.runner.DeviceRunner` of its kind; they run side by side and share
nothing but the RS-485 line of LED panels on one port. One device failing (its hardware
gone, its token rejected) never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import httpx
import structlog

from devices.agent.config import (
    AgentConfig,
    CodeReaderConfig,
    ConfigError,
    EvaluatorConfig,
    IdReaderConfig,
    PrinterConfig,
    ScannerConfig,
    WindowDisplayConfig,
    load_config,
)
from devices.agent.evaluator import EvaluatorRunner
from devices.agent.printer import PrinterRunner
from devices.agent.readers import CodeReaderRunner, IdReaderRunner
from devices.agent.runner import BackoffFactory, DeviceRunner
from devices.agent.scanner import ScannerRunner
from devices.agent.window_display import WindowDisplayRunner
from devices.drivers.led_bus import LedBus
from devices.transport.serial import SerialPort

__all__ = ["build_runners", "run", "run_agent"]

log = structlog.get_logger("devices.agent")

EXIT_OK, EXIT_REJECTED, EXIT_CONFIG = 0, 1, 2


def build_runners(
    config: AgentConfig,
    *,
    backoff: BackoffFactory | None = None,
    ble_options: dict[str, Any] | None = None,
    http: httpx.AsyncClient | None = None,
) -> tuple[list[DeviceRunner], list[LedBus]]:
    """One runner per configured device, and the LED buses they share (one per port)."""
    runners: list[DeviceRunner] = []
    buses: dict[str, LedBus] = {}
    for device in config.device:
        if isinstance(device, PrinterConfig):
            runners.append(PrinterRunner(config, device, backoff=backoff))
        elif isinstance(device, IdReaderConfig):
            runners.append(IdReaderRunner(config, device, backoff=backoff))
        elif isinstance(device, CodeReaderConfig):
            runners.append(CodeReaderRunner(config, device, backoff=backoff))
        elif isinstance(device, EvaluatorConfig):
            runners.append(
                EvaluatorRunner(config, device, backoff=backoff, ble_options=ble_options)
            )
        elif isinstance(device, WindowDisplayConfig):
            key = device.port.casefold()
            if key not in buses:
                buses[key] = LedBus(SerialPort(device.port, baudrate=device.baudrate))
            runners.append(WindowDisplayRunner(config, device, bus=buses[key], backoff=backoff))
        elif isinstance(device, ScannerConfig):
            runners.append(ScannerRunner(config, device, backoff=backoff, http=http))
    return runners, list(buses.values())


async def run_agent(
    config: AgentConfig,
    *,
    stop: asyncio.Event | None = None,
    backoff: BackoffFactory | None = None,
    ble_options: dict[str, Any] | None = None,
    http: httpx.AsyncClient | None = None,
) -> int:
    """Run every configured device until ``stop`` is set (or the task is cancelled).

    Args:
        config: the checked agent.toml.
        stop: set to shut down: ports are closed, peers leave the hub. Events still in the
            upstream buffer are lost (the buffer lives in memory).
        backoff: makes the reconnect backoffs (tests: fast and deterministic).
        ble_options: for Bluetooth pads, passed to the BLE driver (tests: bleak backends).
        http: the client for scanner uploads (tests).

    Returns:
        0, or 1 when the hub rejected every device's token (nothing left to run).
    """
    runners, buses = build_runners(config, backoff=backoff, ble_options=ble_options, http=http)
    log.info(
        "agent_starting", hub=config.hub, devices=[f"{r.config.kind}:{r.name}" for r in runners]
    )
    tasks = [asyncio.create_task(r.run(), name=f"device-{r.name}") for r in runners]
    waiter = asyncio.create_task(stop.wait()) if stop is not None else None
    try:
        pending: set[asyncio.Future[Any]] = set(tasks)
        if waiter is not None:
            pending.add(waiter)
        # Until stopped, or until every device ended (all rejected by the hub).
        while pending and (waiter is None or not waiter.done()):
            if tasks and all(t.done() for t in tasks):
                break
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if not tasks and waiter is not None:
            await waiter
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if waiter is not None:
            waiter.cancel()
        for bus in buses:
            await asyncio.shield(bus.close())
        log.info("agent_stopped")
    if runners and all(r.rejected for r in runners):
        return EXIT_REJECTED
    return EXIT_OK


def run(config_path: str) -> int:
    """Load ``config_path`` and run the agent until SIGINT/SIGTERM (Ctrl+C on Windows).

    Returns:
        The process exit code: 0 after a normal stop, 1 when the hub rejected every device,
        2 for a configuration that cannot be used (the error names the field).
    """
    try:
        config = load_config(Path(config_path))
    except ConfigError as exc:
        log.error("agent_config_invalid", error=str(exc))
        return EXIT_CONFIG

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Windows has no add_signal_handler: Ctrl+C arrives as KeyboardInterrupt there.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        return await run_agent(config, stop=stop)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return EXIT_OK
