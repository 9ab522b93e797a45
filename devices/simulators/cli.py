"""``hallhub simulate <kind>``: run one simulated device on a serial port, scripted from stdin.

By default the runner starts ``socat`` with two linked pseudo-terminals (a null-modem cable),
serves the device on one end and writes the other end, the port an agent opens, as one line
of JSON on stdout::

    $ hallhub simulate printer --paper-out-after 5
    {"kind":"printer","port":"/dev/pts/7","serving":"/dev/pts/6","baudrate":9600}

``--link PATH`` puts the agent's end at a stable symlink (``"port": PATH``); ``--port PATH``
serves an existing port instead (a real adapter, or one end of a pair made elsewhere; then
the line has no ``port``). Then each line on stdin is a command and gets one line of JSON
on stdout (``{"ok": true, "command": "paper-out", "state": {...}}``; ``ok`` false with an
``error`` otherwise):

==============  ======================================================================
kind            commands (every kind also takes ``state``)
==============  ======================================================================
printer         ``refill``, ``paper-low``, ``paper-out``, ``cover-open``, ``cover-close``,
                ``jam``, ``clear-jam``
id-reader       ``insert <name> <id_number> [address…]``, ``remove``, ``fault on|off``
code-reader     ``scan <text>``
evaluator       ``press <grade> [reasons…]``, ``auto <grade> [reasons…]``, ``auto off``
led-panel       ``show`` (every panel's header and lines)
evaluator-ble   ``press <grade> [reasons…]``, ``expire``, ``auto <grade>|off``, ``silent``
==============  ======================================================================

Grades and reasons are the hub's names (hub/domain/rating.py: ``very_satisfied`` …,
``slow_service`` …). The process stops cleanly on SIGINT, SIGTERM and the end of stdin
(``--ignore-eof`` keeps it serving), and when the port goes away; it logs with structlog to
stderr. ``socat`` is only needed without ``--port`` (Linux and macOS; on Windows use
``--port`` with a com0com pair).

BLE: a bumble virtual controller can only be reached from inside its own process, so BLE
pads are simulated in the tests and the demo (devices/simulators/ble_evaluator.py
``open_pad``); ``evaluator-ble`` here needs ``--transport`` (a bumble transport spec: ``usb:0``,
``android-netsim``, or ``tcp-client:127.0.0.1:6402`` for a controller of ``python -m
bumble.apps.controllers tcp-server:127.0.0.1:6402 tcp-server:127.0.0.1:6403``) and then runs
the pad on it. A ``tcp-server:`` spec works only once a controller has connected: bumble drops
the pad's first HCI commands while nobody is connected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import msgspec
import structlog

from devices.simulators.socat import Socat, SocatError
from hub.domain.rating import GRADES, REASONS, Grade, Reason

if TYPE_CHECKING:
    import serialx

    from devices.simulators.ble_evaluator import EvaluatorPad

__all__ = ["KINDS", "add_arguments", "run"]

log = structlog.get_logger("devices.simulators.cli")

KINDS = ("printer", "id-reader", "code-reader", "evaluator", "led-panel", "evaluator-ble")
# Line speeds the drivers use by default (docs/devices/*.md).
_BAUDRATES = {
    "printer": 9600,
    "id-reader": 115200,
    "code-reader": 9600,
    "evaluator": 9600,
    "led-panel": 9600,
}
_SUFFIXES = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "tab": b"\t", "none": b""}

BLE_HELP = (
    "hallhub simulate evaluator-ble: a bumble virtual controller is reachable only inside "
    "its own process, so BLE evaluation pads are simulated inside the tests and the demo "
    "process (devices/simulators/ble_evaluator.py, open_pad). To run a pad on a real adapter "
    "or an emulator, give a bumble transport: --transport usb:0, android-netsim, or "
    "tcp-client:127.0.0.1:6402 with virtual controllers from "
    "`python -m bumble.apps.controllers tcp-server:127.0.0.1:6402 tcp-server:127.0.0.1:6403`.\n"
)


class SimulateError(Exception):
    """The simulator cannot start (no socat, a port that does not open); the message says why."""


# --- what goes to stdout -----------------------------------------------------------------


class PortLine(msgspec.Struct, frozen=True, omit_defaults=True):
    """The first stdout line: the agent's end of the link and the simulator's own."""

    kind: str
    serving: str
    port: str | None = None
    baudrate: int | None = None
    transport: str | None = None
    name: str | None = None


class PrinterState(msgspec.Struct, frozen=True):
    paper: str
    cover_open: bool
    cutter_error: bool
    online: bool
    tickets: int
    refused: int


class IdReaderState(msgspec.Struct, frozen=True):
    card: bool
    fault: bool
    commands: int


class CodeReaderState(msgspec.Struct, frozen=True):
    scans: int


class PromptState(msgspec.Struct, frozen=True):
    request_id: int
    window_number: int | None = None
    ticket_number: str | None = None
    staff_name: str | None = None
    timeout_s: float | None = None


class EvaluatorState(msgspec.Struct, frozen=True):
    prompt: PromptState | None
    auto: str | None
    prompts_seen: int
    idle_text: str = ""


class PanelState(msgspec.Struct, frozen=True):
    address: int
    header: str
    lines: list[str]
    brightness: int


class LedState(msgspec.Struct, frozen=True):
    panels: list[PanelState]


State = PrinterState | IdReaderState | CodeReaderState | EvaluatorState | LedState


class Answer(msgspec.Struct, frozen=True, omit_defaults=True):
    """The one stdout line answering a stdin command."""

    ok: bool
    command: str
    error: str | None = None
    state: State | None = None


class CommandError(Exception):
    """A stdin command that cannot be done (unknown, bad arguments, nothing to press)."""


# --- the simulated devices -----------------------------------------------------------------


class Simulator(Protocol):
    """One simulated device: its serial loop and its stdin commands."""

    async def serve(self, port: serialx.AsyncSerial) -> None:
        """Be the device on the open port until it reaches EOF (or fails)."""

    async def command(self, verb: str, rest: str) -> State:
        """Do one scripted command; return the state after it. Raises CommandError."""

    def state(self) -> State: ...


def _words(rest: str) -> list[str]:
    return rest.split()


def _is_grade(word: str) -> TypeGuard[Grade]:
    return word in GRADES


def _is_reason(word: str) -> TypeGuard[Reason]:
    return word in REASONS


def _grade(words: list[str]) -> tuple[Grade, tuple[Reason, ...]]:
    if not words:
        raise CommandError(f"a grade is needed: {', '.join(GRADES)}")
    grade, *rest = words
    if not _is_grade(grade):
        raise CommandError(f"unknown grade {grade!r}: {', '.join(GRADES)}")
    reasons: list[Reason] = []
    for word in rest:
        if not _is_reason(word):
            raise CommandError(f"unknown reason {word!r}: {', '.join(REASONS)}")
        reasons.append(word)
    return grade, tuple(reasons)


class PrinterSim:
    """The ESC/POS printer (devices/simulators/printer.py)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from devices.simulators.printer import PrinterModel

        self.model = PrinterModel(
            paper_low_after=args.paper_low_after, paper_out_after=args.paper_out_after
        )

    async def serve(self, port: serialx.AsyncSerial) -> None:
        from devices.simulators.printer import serve_port

        await serve_port(port, self.model, feed=self._feed)

    def _feed(self, data: bytes) -> list[bytes]:
        model = self.model
        printed = len(model.tickets)
        refused = model.refused
        replies = model.feed(data)
        for ticket in model.tickets[printed:]:
            log.info("printer_sim_ticket", lines=[line.text for line in ticket.lines])
        if model.refused > refused:
            log.info("printer_sim_refused", paper=model.paper, cover=model.cover_open)
        return replies

    async def command(self, verb: str, rest: str) -> State:
        model = self.model
        actions: dict[str, Callable[[], list[bytes]]] = {
            "refill": model.refill,
            "paper-low": lambda: model.set_paper("low"),
            "paper-out": lambda: model.set_paper("out"),
            "cover-open": model.open_cover,
            "cover-close": model.close_cover,
            "jam": model.jam_cutter,
            "clear-jam": model.clear_jam,
        }
        action = actions.get(verb)
        if action is None:
            raise CommandError(f"unknown command {verb!r}: {', '.join(actions)}, state")
        action()  # ASB blocks, if enabled, go out through on_unsolicited
        return self.state()

    def state(self) -> PrinterState:
        m = self.model
        return PrinterState(
            paper=m.paper,
            cover_open=m.cover_open,
            cutter_error=m.cutter_error,
            online=m.online,
            tickets=len(m.tickets),
            refused=m.refused,
        )


def _card(words: list[str]) -> Any:
    """An IdCard from ``<name> <id_number> [address…]``; the rest is derived or fixed test
    data (birth date and sex from the ID number when it is a valid one)."""
    from devices.codecs.id_card import IdCard

    if len(words) < 2:
        raise CommandError("insert <name> <id_number> [address]")
    name, number, *address = words
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        birth = date(1990, 1, 1)
    sex = "1" if len(number) >= 17 and number[16].isdigit() and int(number[16]) % 2 else "2"
    return IdCard(
        name=name,
        sex_code=sex,
        nation_code="01",
        birth_date=birth,
        address=" ".join(address) or "北京市朝阳区测试街道示例路1号",
        id_number=number,
        authority="北京市公安局朝阳分局",
        valid_from=date(2020, 1, 1),
        valid_to=None,
    )


class IdReaderSim:
    """The second-generation ID card reader (devices/simulators/id_reader.py)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from devices.simulators.id_reader import IdReaderModel

        self.model = IdReaderModel()
        self.card = False
        self.fault = False

    async def serve(self, port: serialx.AsyncSerial) -> None:
        from devices.simulators.serving import answer

        await answer(port, self.model.feed)

    async def command(self, verb: str, rest: str) -> State:
        words = _words(rest)
        if verb == "insert":
            card = _card(words)
            try:
                self.model.insert(card)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.card = True
            log.info("id_reader_sim_card", card=repr(card))  # masked
        elif verb == "remove":
            self.model.remove()
            self.card = False
        elif verb == "fault" and words in (["on"], ["off"]):
            self.fault = words == ["on"]
            self.model.set_fault(self.fault)
        else:
            raise CommandError(f"unknown command {verb!r}: insert, remove, fault on|off, state")
        return self.state()

    def state(self) -> IdReaderState:
        return IdReaderState(card=self.card, fault=self.fault, commands=len(self.model.commands))


class CodeReaderSim:
    """The serial QR/barcode reader (devices/simulators/code_reader.py)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.suffix = _SUFFIXES[args.suffix]
        self.port: serialx.AsyncSerial | None = None
        self.scans = 0

    async def serve(self, port: serialx.AsyncSerial) -> None:
        self.port = port
        try:
            while await port.read(4096):
                pass  # a reader in serial mode takes no commands
        finally:
            self.port = None

    async def command(self, verb: str, rest: str) -> State:
        from devices.simulators.code_reader import record

        if verb != "scan" or not rest:
            raise CommandError("scan <text>, state")
        if self.port is None:
            raise CommandError("the port is closed")
        try:
            data = record(rest, suffix=self.suffix)
        except UnicodeEncodeError as exc:
            raise CommandError(str(exc)) from None
        await self.port.write(data)
        self.scans += 1
        return self.state()

    def state(self) -> CodeReaderState:
        return CodeReaderState(scans=self.scans)


class EvaluatorSim:
    """The wired evaluation pad (devices/simulators/evaluator_serial.py)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from devices.simulators.evaluator_serial import EvaluatorPadModel

        self.model = EvaluatorPadModel(heartbeat_interval=args.heartbeat)

    async def serve(self, port: serialx.AsyncSerial) -> None:
        from devices.simulators.evaluator_serial import serve_port

        await serve_port(port, self.model)

    async def command(self, verb: str, rest: str) -> State:
        words = _words(rest)
        if verb == "press":
            grade, reasons = _grade(words)
            if not self.model.press(grade, reasons):
                raise CommandError("no prompt is shown (or that button is faulty)")
        elif verb == "auto" and words == ["off"]:
            self.model.auto_grade = None
        elif verb == "auto":
            self.model.auto_grade, self.model.auto_reasons = _grade(words)
        else:
            raise CommandError(f"unknown command {verb!r}: press, auto <grade>|off, state")
        return self.state()

    def state(self) -> EvaluatorState:
        m = self.model
        prompt = None
        if m.prompt is not None:
            prompt = PromptState(
                request_id=m.prompt.request_id,
                window_number=m.prompt.window_number,
                ticket_number=m.prompt.ticket_number,
                staff_name=m.prompt.staff_name,
                timeout_s=m.prompt.timeout_s,
            )
        return EvaluatorState(
            prompt=prompt, auto=m.auto_grade, prompts_seen=m.prompts_seen, idle_text=m.idle_text
        )


class LedPanelSim:
    """LED window panels on one RS-485 line (devices/simulators/led_panel.py)."""

    def __init__(self, args: argparse.Namespace) -> None:
        from devices.simulators.led_panel import LedBus, LedPanelModel

        self.bus = LedBus({a: LedPanelModel(a) for a in args.addresses})

    async def serve(self, port: serialx.AsyncSerial) -> None:
        from devices.simulators.serving import answer

        await answer(port, self.bus.feed)

    async def command(self, verb: str, rest: str) -> State:
        if verb != "show":
            raise CommandError(f"unknown command {verb!r}: show, state")
        return self.state()

    def state(self) -> LedState:
        return LedState(
            panels=[
                PanelState(
                    address=address,
                    header=panel.header_text,
                    lines=list(panel.lines),
                    brightness=panel.brightness,
                )
                for address, panel in sorted(self.bus.panels.items())
            ]
        )


_SERIAL_SIMS: dict[str, Callable[[argparse.Namespace], Simulator]] = {
    "printer": PrinterSim,
    "id-reader": IdReaderSim,
    "code-reader": CodeReaderSim,
    "evaluator": EvaluatorSim,
    "led-panel": LedPanelSim,
}


class BlePadSim:
    """The Bluetooth LE pad on a bumble transport (devices/simulators/ble_evaluator.py)."""

    def __init__(self, pad: EvaluatorPad) -> None:
        self.pad = pad

    async def command(self, verb: str, rest: str) -> State:
        words = _words(rest)
        pad = self.pad
        if verb == "press":
            grade, reasons = _grade(words)
            if await pad.press(grade, reasons) is None:
                raise CommandError("no prompt is shown")
        elif verb == "expire":
            if await pad.expire() is None:
                raise CommandError("no prompt is shown")
        elif verb == "auto" and words == ["off"]:
            pad.answer = "manual"
        elif verb == "auto":
            pad.auto_grade, pad.auto_reasons = _grade(words)
            pad.answer = "auto"
        elif verb == "silent":
            pad.answer = "silent"
        else:
            raise CommandError(f"unknown command {verb!r}: press, expire, auto, silent, state")
        return self.state()

    def state(self) -> EvaluatorState:
        pad = self.pad
        shown = pad.shown
        prompt = None
        if shown is not None:
            prompt = PromptState(request_id=shown.request_id, timeout_s=shown.timeout_ms / 1000)
        auto = pad.auto_grade if pad.answer == "auto" else None
        return EvaluatorState(prompt=prompt, auto=auto, prompts_seen=len(pad.prompts))


# --- arguments -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``hallhub simulate`` (hub/cli.py adds the subcommand)."""
    parser.add_argument("kind", choices=KINDS, help="the device to simulate")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--link", metavar="PATH", help="put the agent's end of the socat pair at this symlink"
    )
    where.add_argument("--port", metavar="PATH", help="serve this existing serial port (no socat)")
    parser.add_argument("--baudrate", type=int, help="line speed (default: the device's)")
    parser.add_argument("--ignore-eof", action="store_true", help="keep serving after stdin ends")
    parser.add_argument("--paper-low-after", type=int, metavar="N", help="printer: tickets")
    parser.add_argument("--paper-out-after", type=int, metavar="N", help="printer: tickets")
    parser.add_argument(
        "--suffix", choices=sorted(_SUFFIXES), default="cr", help="code reader: record end"
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="evaluator: seconds between HEARTBEAT frames",
    )
    parser.add_argument(
        "--addresses",
        type=int,
        nargs="+",
        default=[1],
        metavar="N",
        help="led-panel: panel addresses on the line (1-247)",
    )
    parser.add_argument(
        "--transport", metavar="SPEC", help="evaluator-ble: bumble transport (usb:0, tcp-client:…)"
    )
    parser.add_argument("--label", default="03", help="evaluator-ble: HallEval-<label>")


# --- running ---------------------------------------------------------------------------


def _write_line(message: msgspec.Struct) -> None:
    out = sys.stdout.buffer
    out.write(msgspec.json.encode(message) + b"\n")
    out.flush()


def _read_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """A daemon thread: stdin lines into ``lines``, then None at its end. Portable (asyncio
    has no pipe reader on Windows, nor for a file); it reads the file descriptor itself, as
    a daemon thread blocked inside ``sys.stdin`` holds its lock and aborts the interpreter's
    shutdown."""

    def put(item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: the process is ending
            loop.call_soon_threadsafe(lines.put_nowait, item)

    fd = sys.stdin.fileno()
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        *complete, pending = (pending + chunk).split(b"\n")
        for raw in complete:
            put(raw.decode("utf-8", "replace").strip())
    if pending.strip():
        put(pending.decode("utf-8", "replace").strip())
    put(None)


async def _socat_pair(link: str | None) -> tuple[Socat, str, str]:
    """``socat`` joining two new ptys: (socat, the simulator's pty, the agent's path: the
    symlink if given, else its pty). socat dies with this process.

    Raises:
        SimulateError: socat is missing or did not start.
    """
    if shutil.which("socat") is None:
        raise SimulateError(
            "socat not found: install it (apt install socat, brew install socat) "
            "or serve an existing port with --port PATH"
        )
    agent = "pty,raw,echo=0"
    if link is not None:
        Path(link).unlink(missing_ok=True)  # noqa: ASYNC240 (a local symlink)
        agent += f",link={link}"
    socat = Socat("pty,raw,echo=0", agent, die_with_parent=True)
    try:
        serving, agent_pty = await socat.start()
    except SocatError as exc:
        raise SimulateError(str(exc)) from None
    return socat, serving, link or agent_pty


@contextlib.asynccontextmanager
async def _stop_signals() -> AsyncIterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while inside (where the loop supports it)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C raises instead
            pass
    try:
        yield stop
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _answer_commands(
    sim: Simulator | BlePadSim, lines: asyncio.Queue[str | None], ignore_eof: bool
) -> None:
    """Answer each stdin line with one JSON line; return at the end of stdin."""
    while (line := await lines.get()) is not None:
        if not line or line.startswith("#"):
            continue
        verb, _, rest = line.partition(" ")
        rest = rest.strip()
        try:
            state = sim.state() if verb in ("state", "status") else await sim.command(verb, rest)
        except CommandError as exc:
            _write_line(Answer(ok=False, command=verb, error=str(exc), state=sim.state()))
            continue
        log.info("simulator_command", command=verb)
        _write_line(Answer(ok=True, command=verb, state=state))
    if ignore_eof:
        log.info("simulator_stdin_closed")
        await asyncio.Event().wait()  # until a signal or the port ends it


async def _until_first(*aws: Any) -> None:
    """Run the awaitables; return (cancelling the others) once one has finished; re-raise
    what it raised."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and (exc := task.exception()) is not None:
            raise exc


async def run(args: argparse.Namespace) -> int:
    """``hallhub simulate``: run until a signal, the end of stdin or the port's end.

    Returns:
        0 after a clean stop; 1 when the port failed or socat died; 2 when the simulator
        could not start (the reason is on stderr).
    """
    if args.kind == "evaluator-ble":
        if not args.transport:
            sys.stderr.write(BLE_HELP)
            return 2
        return await _run_ble(args)
    try:
        return await _run_serial(args)
    except SimulateError as exc:
        sys.stderr.write(f"hallhub simulate: {exc}\n")
        return 2


async def _run_serial(args: argparse.Namespace) -> int:
    import serialx

    sim = _SERIAL_SIMS[args.kind](args)
    baudrate = args.baudrate or _BAUDRATES[args.kind]
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    async with contextlib.AsyncExitStack() as stack:
        stop = await stack.enter_async_context(_stop_signals())
        socat: Socat | None = None
        if args.port:
            serving, agent_end = args.port, None
        else:
            socat, serving, agent_end = await _socat_pair(args.link)
            stack.push_async_callback(socat.stop)
        port = serialx.async_serial_for_url(serving, baudrate=baudrate)
        try:
            await port.open()
        except (OSError, serialx.SerialException) as exc:
            raise SimulateError(f"cannot open {serving}: {exc}") from exc
        stack.push_async_callback(port.close)
        # Announced once the port is open: nothing the agent sends is lost.
        _write_line(PortLine(kind=args.kind, serving=serving, port=agent_end, baudrate=baudrate))
        log.info("simulator_serving", kind=args.kind, serving=serving, port=agent_end)
        threading.Thread(target=_read_stdin, args=(loop, lines), daemon=True).start()
        serving_task = asyncio.ensure_future(sim.serve(port))
        try:
            await _until_first(
                stop.wait(),
                _answer_commands(sim, lines, args.ignore_eof),
                asyncio.shield(serving_task),
                *(() if socat is None else (socat.wait(),)),
            )
        except (OSError, serialx.SerialException) as exc:
            log.error("simulator_port_failed", error=str(exc))
            return 1
        finally:
            port_ended = serving_task.done()
            serving_task.cancel()
            await asyncio.gather(serving_task, return_exceptions=True)
        if stop.is_set():
            log.info("simulator_stopped", reason="signal")
            return 0
        if port_ended:
            log.error("simulator_port_ended", port=serving)
            return 1
        if socat is not None and socat.exited:
            log.error("simulator_socat_exited")
            return 1
        log.info("simulator_stopped", reason="end of stdin")
        return 0
    raise AssertionError("unreachable")  # pragma: no cover (mypy: the stack swallows nothing)


async def _run_ble(args: argparse.Namespace) -> int:
    from devices.simulators.ble_evaluator import open_pad

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    async with contextlib.AsyncExitStack() as stack:
        stop = await stack.enter_async_context(_stop_signals())
        try:
            pad = await stack.enter_async_context(open_pad(args.transport, label=args.label))
        except Exception as exc:  # bumble raises its own errors and OS errors for a transport
            sys.stderr.write(f"hallhub simulate: cannot open {args.transport}: {exc}\n")
            return 2
        address = str(pad.device.random_address)
        _write_line(
            PortLine(kind=args.kind, serving=address, transport=args.transport, name=pad.name)
        )
        log.info("simulator_serving", kind=args.kind, transport=args.transport, name=pad.name)
        threading.Thread(target=_read_stdin, args=(loop, lines), daemon=True).start()
        await _until_first(stop.wait(), _answer_commands(BlePadSim(pad), lines, args.ignore_eof))
        log.info("simulator_stopped", reason="signal" if stop.is_set() else "end of stdin")
    return 0
