"""The demo hall's hardware, simulated, and the device agent that drives it (issue 5).

``hallhub demo`` starts, inside its own process, for the devices of hub/demo_hall.toml that
have hardware:

- a **printer** simulator (devices/simulators/printer.py) for each printer: a roll lasts
  :data:`ROLL` tickets (near its end :data:`LOW_BEFORE` tickets before), and a new roll goes
  in :data:`REFILL_SECONDS` after it ran out. The first printer starts on a used roll
  (:data:`FIRST_ROLL` tickets left), so paper running low, out and back shows within minutes;
- an **ID card reader** simulator (devices/simulators/id_reader.py) for each reader: now and
  then a citizen puts a card on it (a made-up name and a resident ID number with a valid check
  character, hub.domain.identity) and takes it off a few seconds later;
- a **wired evaluation pad** (devices/simulators/evaluator_serial.py) for each evaluator: the
  citizen presses a grade a few seconds after the prompt, mostly a good one, sometimes a bad
  one with a reason, sometimes none (the prompt runs out: the ticket stays unrated);
- the **LED window panels** on one RS-485 line (devices/simulators/led_panel.py), each at the
  address of its window's number, showing the window's state from the hall topic;
- the **device agent** (devices.agent.main.run_agent) with all of them, loaded from the
  agent.toml the demo writes to ``<data_dir>/demo-agent.toml`` (0600: it holds the tokens).

Each simulated device is joined to the agent by a ``socat`` pair of pseudo-terminals, as a
null-modem cable; the agent speaks the real bytes to it. Pauses scale with the demo's speed
(HALLHUB_DEMO_SPEED). Without socat (or on a system without pseudo-terminals) :func:`start`
logs why and returns None: the demo then runs these devices as bare peers, as any other.

What the simulators do is logged (``demo_ticket_printed``, ``demo_printer_paper``,
``demo_card_put``, ``demo_pad_pressed``, ``demo_panel_shows`` …); ID numbers only masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
from collections.abc import Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import structlog

from devices.agent.config import ConfigError, load_config
from devices.agent.main import run_agent
from devices.codecs.id_card import IdCard
from devices.simulators.escpos_reader import SimTicket
from devices.simulators.evaluator_serial import EvaluatorPadModel
from devices.simulators.evaluator_serial import serve as serve_pad
from devices.simulators.id_reader import IdReaderModel
from devices.simulators.id_reader import serve as serve_reader
from devices.simulators.led_panel import LedBus, LedPanelModel
from devices.simulators.led_panel import serve as serve_panels
from devices.simulators.printer import PrinterModel
from devices.simulators.printer import serve as serve_printer
from devices.simulators.socat import Socat, SocatError
from hub.domain.devices import TIMEOUTS, configured_timeout
from hub.domain.identity import mask_number
from hub.domain.rating import BAD_GRADES, REASONS, Grade, Reason

__all__ = [
    "ROLL",
    "SIMULATED_KINDS",
    "DeviceFloor",
    "FloorDevice",
    "rating_timeout",
    "start",
]

log = structlog.get_logger("hub.demo_devices")

SIMULATED_KINDS = frozenset({"printer", "id_reader", "evaluator", "window_display"})

# At speed 1. A roll: ROLL tickets, near its end LOW_BEFORE tickets before; the first printer
# starts with FIRST_ROLL tickets left; a new roll goes in REFILL_SECONDS after one ran out.
ROLL = 40
LOW_BEFORE = 5
FIRST_ROLL = 12
REFILL_SECONDS = 60.0
CARD_EVERY_SECONDS = (40.0, 90.0)  # a citizen puts an ID card on the kiosk's reader
CARD_HELD_SECONDS = 4.0
PRESS_AFTER_SECONDS = (2.0, 8.0)  # a citizen reads the pad, then presses
PRINT_SECONDS = 1.0  # a thermal printer prints a ticket in about a second
# What citizens press: mostly good grades, sometimes a bad one (with a reason), sometimes none.
_GOOD: tuple[tuple[Grade, float], ...] = (
    ("very_satisfied", 0.55),
    ("satisfied", 0.30),
    ("basically_satisfied", 0.15),
)
_BAD_SHARE, _SILENT_SHARE = 0.1, 0.1


class FloorDevice(msgspec.Struct, frozen=True, kw_only=True):
    """A registered device of the demo hall with its token, and its window if it stands at
    one (an evaluator's or panel's window: the panel's address is the window's number)."""

    id: int
    kind: str
    name: str
    token: str
    window_id: int | None = None
    window_number: int | None = None


def rating_timeout(speed: float) -> int:
    """The pads' countdown at the demo's speed: the hub's default over the speed, within an
    evaluator's bounds (hub.domain.devices.TIMEOUTS)."""
    default, _, _ = TIMEOUTS["evaluator"]
    return configured_timeout("evaluator", round(default / speed))


# --- the simulated devices ----------------------------------------------------------------


def _number_of(ticket: SimTicket) -> str:
    """The ticket's number: the line printed widest (escpos.encode_ticket prints it large)."""
    if not ticket.lines:
        return ""
    return max(ticket.lines, key=lambda line: line.width).text.strip()


class DemoPrinter(PrinterModel):
    """A printer whose rolls run out and are replaced ``refill_after`` seconds later."""

    def __init__(self, name: str, *, first_roll: int, roll: int, refill_after: float) -> None:
        super().__init__(
            paper_low_after=max(1, first_roll - LOW_BEFORE), paper_out_after=first_roll
        )
        self.name = name
        self.roll = roll
        self.refill_after = refill_after
        self.printed = 0
        self._paper_seen = self.paper
        self._refill: asyncio.TimerHandle | None = None

    def feed(self, data: bytes) -> list[bytes]:
        count = len(self.tickets)
        replies = super().feed(data)
        for ticket in self.tickets[count:]:
            self.printed += 1
            qr = ticket.qr_codes[0].data if ticket.qr_codes else ""
            log.info(
                "demo_ticket_printed",
                printer=self.name,
                number=_number_of(ticket),
                qr=qr,
                printed=self.printed,
            )
        self._paper_changed()
        return replies

    def _paper_changed(self) -> None:
        if self.paper == self._paper_seen:
            return
        self._paper_seen = self.paper
        if self.paper == "out":
            log.info(
                "demo_printer_paper", printer=self.name, paper="out", refill_in=self.refill_after
            )
            if self._refill is None:
                loop = asyncio.get_running_loop()
                self._refill = loop.call_later(self.refill_after, self.new_roll)
        else:
            log.info("demo_printer_paper", printer=self.name, paper=self.paper)

    def new_roll(self) -> None:
        """An attendant puts a full roll in."""
        self._refill = None
        self.paper_out_after = self.roll
        self.paper_low_after = max(1, self.roll - LOW_BEFORE)
        self.refill()  # ASB tells the agent at once (when the port is served)
        self._paper_changed()

    def cancel(self) -> None:
        if self._refill is not None:
            self._refill.cancel()
            self._refill = None


class DemoLedLine(LedBus):
    """The RS-485 line of the window panels, logging what each panel shows when it changes."""

    def receive_data(self, data: bytes) -> None:
        before = {address: (p.header_text, p.lines) for address, p in self.panels.items()}
        super().receive_data(data)
        for address, panel in self.panels.items():
            if (panel.header_text, panel.lines) != before[address]:
                log.info(
                    "demo_panel_shows",
                    address=address,
                    header=panel.header_text,
                    lines=list(panel.lines),
                )


class DemoPad(EvaluatorPadModel):
    """A wired pad whose citizen answers each prompt a few seconds later, or not at all."""

    def __init__(self, name: str, rng: random.Random, speed: float) -> None:
        super().__init__(heartbeat_interval=10.0)
        self.name = name
        self.rng = rng
        self.speed = speed
        self._answers: set[asyncio.TimerHandle] = set()

    def receive_data(self, data: bytes) -> None:
        seen = self.prompts_seen
        super().receive_data(data)
        if self.prompts_seen > seen and self.prompt is not None:
            self._plan(self.prompt.request_id, self.prompt.ticket_number)

    def _plan(self, request_id: int, ticket: str) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < _SILENT_SHARE:
            log.info("demo_pad_silent", pad=self.name, ticket=ticket)
            return  # the pad's countdown ends the prompt: unrated
        reasons: tuple[Reason, ...] = ()
        if roll < _SILENT_SHARE + _BAD_SHARE:
            grade: Grade = rng.choice(sorted(BAD_GRADES))
            choices = [r for r in REASONS if r != "other"]
            reasons = tuple(rng.sample(choices, k=rng.choice((1, 1, 2))))
        else:
            grades, weights = zip(*_GOOD, strict=True)
            grade = rng.choices(grades, weights)[0]
        delay = rng.uniform(*PRESS_AFTER_SECONDS) / self.speed
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def press() -> None:
            if handle is not None:
                self._answers.discard(handle)
            if self.prompt is None or self.prompt.request_id != request_id:
                return  # cancelled meanwhile
            if self.press(grade, reasons):
                log.info(
                    "demo_pad_pressed", pad=self.name, ticket=ticket, grade=grade, reasons=reasons
                )

        handle = loop.call_later(delay, press)
        self._answers.add(handle)

    def cancel(self) -> None:
        for handle in self._answers:
            handle.cancel()
        self._answers.clear()


def _card(name: str, number: str, rng: random.Random) -> IdCard:
    """A second-generation card for a made-up citizen: birth date and sex from the number,
    valid 5, 10 or 20 years, or long-term from 46 (GA 467 validity by age at issue)."""
    birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    issued = date(
        rng.randint(max(2012, birth.year + 1), 2025), rng.randint(1, 12), rng.randint(1, 28)
    )
    age = issued.year - birth.year
    years = 5 if age < 16 else 10 if age < 26 else 20 if age < 46 else None
    return IdCard(
        name=name,
        sex_code="1" if int(number[16]) % 2 else "2",
        nation_code="01",
        birth_date=birth,
        address=f"示范市人民路{rng.randint(1, 300)}号",
        id_number=number,
        authority="示范市公安局",
        valid_from=issued,
        valid_to=None if years is None else issued.replace(year=issued.year + years),
    )


# --- the floor ----------------------------------------------------------------------------


class DeviceFloor:
    """The simulated devices of the demo hall, their cables and the agent; :meth:`close`
    stops them all."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.devices: list[FloorDevice] = []
        self.printers: list[DemoPrinter] = []
        self.pads: list[DemoPad] = []
        self.readers: list[IdReaderModel] = []
        self.panels: dict[int, LedPanelModel] = {}
        self.agent_config: Path | None = None
        self._cables: list[Socat] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()

    @property
    def device_ids(self) -> set[int]:
        """The devices the agent runs (the demo runs the others as bare peers)."""
        return {d.id for d in self.devices}

    def _spawn(self, what: str, coro: Coroutine[Any, Any, Any]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a port that failed: the demo goes on without it
                log.warning("demo_device_ended", device=what, error=repr(exc))

        self._tasks.append(asyncio.create_task(guarded(), name=f"demo-{what}"))

    async def _cable(self) -> tuple[str, str]:
        """A null-modem cable: (simulator's pty, agent's pty)."""
        cable = Socat("pty,raw,echo=0", "pty,raw,echo=0", die_with_parent=True)
        self._cables.append(cable)
        return await cable.start()

    async def close(self) -> None:
        """Stop the agent (its peers leave the hub), the simulators and the cables."""
        self._stop.set()
        for model in self.printers:
            model.cancel()
        for pad in self.pads:
            pad.cancel()
        for task in reversed(self._tasks):  # the agent was started last: it stops first
            if task.get_name() == "demo-agent":
                with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), 10)
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for cable in self._cables:
            await cable.stop()
        self._cables.clear()
        log.info("demo_devices_stopped")


async def start(
    devices: list[FloorDevice],
    *,
    hall_id: int,
    gateway_url: str,
    data_dir: Path,
    speed: float,
    citizen: Callable[[random.Random], tuple[str, str]],
) -> DeviceFloor | None:
    """Simulate the hardware of ``devices`` (those of :data:`SIMULATED_KINDS`) and run the
    agent with them; None (logged ``demo_devices_unavailable`` with the reason) when they
    cannot be simulated here.

    Args:
        devices: the demo hall's devices with their tokens.
        gateway_url: where the agent connects (``ws://127.0.0.1:<port>/``).
        data_dir: where ``demo-agent.toml`` is written.
        speed: HALLHUB_DEMO_SPEED: pauses are divided by it.
        citizen: makes a citizen's name and resident ID number (hub/demo.py's).
    """
    wanted = [d for d in devices if d.kind in SIMULATED_KINDS]
    if not wanted:
        return None
    if shutil.which("socat") is None:
        log.warning(
            "demo_devices_unavailable",
            reason="socat not found (apt install socat / brew install socat): "
            "printers, readers, pads and panels run as bare peers, without simulated hardware",
        )
        return None
    floor = DeviceFloor(speed)
    try:
        tables = await _wire(floor, wanted, hall_id, citizen)
        path = data_dir / "demo-agent.toml"
        _write_agent_toml(path, gateway_url, tables)
        config = load_config(path)
    except (OSError, SocatError, ConfigError) as exc:
        await floor.close()
        log.warning(
            "demo_devices_unavailable",
            reason=f"cannot simulate the hardware ({exc}): the devices run as bare peers",
        )
        return None
    floor.agent_config = path
    floor._spawn("agent", run_agent(config, stop=floor._stop))
    log.info(
        "demo_devices_started",
        printers=len(floor.printers),
        readers=len(floor.readers),
        pads=len(floor.pads),
        panels=len(floor.panels),
        agent_config=str(path),
    )
    return floor


async def _wire(
    floor: DeviceFloor,
    devices: list[FloorDevice],
    hall_id: int,
    citizen: Callable[[random.Random], tuple[str, str]],
) -> list[dict[str, Any]]:
    """Start each device's simulator on its cable; return the agent's ``[[device]]`` tables."""
    speed = floor.speed
    tables: list[dict[str, Any]] = []
    panels = [d for d in devices if d.kind == "window_display" and d.window_number is not None]
    bus_end = ""
    if panels:  # one RS-485 line: every panel at the address of its window's number
        sim_end, bus_end = await floor._cable()
        floor.panels = {n: LedPanelModel(n) for n in (d.window_number for d in panels) if n}
        await _served(floor, "led-line", serve_panels, sim_end, DemoLedLine(floor.panels))
    for device in devices:
        common = {"kind": device.kind, "name": device.name, "token": device.token}
        if device.kind == "printer":
            sim_end, agent_end = await floor._cable()
            first = not floor.printers
            model = DemoPrinter(
                device.name,
                first_roll=FIRST_ROLL if first else ROLL,
                roll=ROLL,
                refill_after=REFILL_SECONDS / speed,
            )
            floor.printers.append(model)
            await _served(floor, device.name, serve_printer, sim_end, model, baudrate=115200)
            tables.append(
                common
                | {
                    "port": agent_end,
                    "baudrate": 115200,
                    "print_seconds": max(0.05, PRINT_SECONDS / speed),
                }
            )
        elif device.kind == "id_reader":
            sim_end, agent_end = await floor._cable()
            reader = IdReaderModel()
            floor.readers.append(reader)
            await _served(floor, device.name, serve_reader, sim_end, reader)
            floor._spawn(f"{device.name}-cards", _cards(device.name, reader, speed, citizen))
            tables.append(common | {"port": agent_end, "auto_read": True})
        elif device.kind == "evaluator":
            sim_end, agent_end = await floor._cable()
            pad = DemoPad(device.name, random.Random(device.id), speed)
            floor.pads.append(pad)
            await _served(floor, device.name, serve_pad, sim_end, pad)
            table = common | {"port": agent_end, "timeout_s": rating_timeout(speed)}
            if device.window_id is not None:
                table["window_id"] = device.window_id
            tables.append(table)
        elif device.kind == "window_display" and device in panels:
            tables.append(
                common
                | {
                    "port": bus_end,
                    "address": device.window_number,
                    "window_id": device.window_id,
                    "hall_id": hall_id,
                }
            )
        else:
            continue  # a panel without a window: a bare peer
        floor.devices.append(device)
    return tables


async def _served(
    floor: DeviceFloor,
    name: str,
    serve: Callable[..., Coroutine[Any, Any, None]],
    *args: Any,
    **options: Any,
) -> None:
    """Run a simulator's ``serve`` and wait until its port is open (bytes the agent sends
    before that would be lost)."""
    ready = asyncio.Event()
    floor._spawn(name, serve(*args, ready=ready, **options))
    async with asyncio.timeout(10):
        await ready.wait()


async def _cards(
    name: str,
    reader: IdReaderModel,
    speed: float,
    citizen: Callable[[random.Random], tuple[str, str]],
) -> None:
    """Now and then a citizen puts an ID card on the reader, and takes it off again."""
    rng = random.Random()
    while True:
        await asyncio.sleep(rng.uniform(*CARD_EVERY_SECONDS) / speed)
        person, number = citizen(rng)
        reader.insert(_card(person, number, rng))
        log.info("demo_card_put", reader=name, id_number=mask_number(number))
        # The agent looks for a card every 0.3 s: held at least a second, whatever the speed.
        await asyncio.sleep(max(1.0, CARD_HELD_SECONDS / speed))
        reader.remove()


def _toml(value: Any) -> str:
    """A TOML value: a JSON string is a TOML basic string; numbers and booleans likewise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _write_agent_toml(path: Path, hub: str, tables: list[dict[str, Any]]) -> None:
    """agent.toml for the demo's devices (docs/devices/agent.md), readable by its owner only:
    it holds the device tokens."""
    lines = [
        "# Written by `hallhub demo` at each start: the device agent of the demo hall, with its",
        "# simulated hardware on socat pseudo-terminals. It holds the devices' tokens.",
        f"hub = {_toml(hub)}",
        "",
    ]
    for table in tables:
        lines.append("[[device]]")
        lines.extend(f"{key} = {_toml(value)}" for key, value in table.items())
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines))
    os.chmod(path, 0o600)
