"""``hallhub demo``: a simulated hall on an embedded PostgreSQL (H4).

Seeds (idempotently, at every start) a province and a city with an admin and a supervisor,
and the hall of hub/demo_hall.toml in the city (hub/hallfile.py: agencies, service groups,
eight windows, staff, devices). Then the hall comes alive through the real services:

- the hall's hardware is simulated and driven by the real device agent (hub/demo_devices.py):
  ticket printers whose paper runs low, out and back, an ID card reader where citizens put
  their cards, evaluation pads at windows 1-4 whose citizens rate (or not), LED window panels
  on one RS-485 line; the device page (``/devices/``) shows it all live. Without socat these
  devices are bare peers like the others;
- the other devices (ticket machines, kiosk, hall display) are peers of the real gateway; one
  ticket machine drops off and returns every cycle, so presence changes live;
- the staff of the hall file who have a window sign in there and call, recall, skip and
  finish tickets at a realistic pace (a ticket every 20–60 s per window);
- citizens take tickets at the ticket machines and the kiosk through the QueueService at a
  steady rate, some with a resident ID card, a few in the green channel; fewer come while
  many are waiting. Each ticket is printed by the machine's printer, or is an e-ticket while
  it cannot print.

``HALLHUB_DEMO_SPEED`` (default 1) makes staff and citizens that many times faster. Device
tokens of the demo are kept in ``<data_dir>/demo-devices.json`` (0600), and the agent's
configuration in ``<data_dir>/demo-agent.toml`` (0600): a real hall keeps a device's token
only on the machine the device is plugged into; the hub itself keeps only their SHA-256.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from collections.abc import Coroutine
from datetime import date
from pathlib import Path

import asyncpg
import msgspec
import structlog

from hub import demo_devices, hallfile
from hub.config import Settings
from hub.domain import identity
from hub.domain.access import Place, Role, covering_grant, staff_principal
from hub.domain.errors import DomainError
from hub.domain.queue import TicketSource
from hub.runtime import Hub
from hub.server import run_server
from hub.services import audit, auth, device_admin, org
from hub.services import staff as staff_service
from hub.services.access import hall_place
from hub.services.queue import IdDocumentIn, QueueService, TicketRequest, WindowResult
from realtime.client import PeerClient

log = structlog.get_logger("hub.demo")

DEMO_PASSWORD = "hallhub-demo"
DEMO_HALL_FILE = Path(__file__).with_name("demo_hall.toml")
_ACTOR = audit.Actor.system("demo")

# Pace at speed 1: a window serves a ticket in 20–60 s; a citizen arrives every ~6 s, about
# what six simulated windows serve; above _CROWD waiting tickets, arrivals thin out.
_SERVICE_SECONDS = (20.0, 60.0)
_ARRIVAL_SECONDS = 6.0
_CROWD = 40
# Relative demand of the groups by prefix (others: 10).
_DEMAND = {"A": 30, "B": 15, "C": 20, "D": 15, "E": 20}


class DemoDevice(msgspec.Struct, frozen=True):
    id: int
    kind: str
    name: str
    token: str


class DemoAccount(msgspec.Struct, frozen=True):
    staff_no: str
    name: str
    role: str
    scope: str


class DemoWindow(msgspec.Struct, frozen=True):
    window_id: int
    number: int
    name: str
    staff_id: int | None  # the simulated staff member who works it, if any


class DemoHall(msgspec.Struct, frozen=True):
    hall_id: int
    hall_name: str
    devices: list[DemoDevice]
    accounts: list[DemoAccount]
    windows: list[DemoWindow]
    groups: dict[str, int]
    device_windows: dict[int, int] = {}  # device id -> the number of the window it stands at


async def _region(pool: asyncpg.Pool, parent: int | None, level: str, code: str, name: str) -> int:
    found: int | None = await pool.fetchval("SELECT id FROM region WHERE code = $1", code)
    if found is not None:
        return found
    new = org.RegionNew(parent_id=parent, level=level, code=code, name=name)  # type: ignore[arg-type]
    return (await org.create_region(pool, _ACTOR, new)).id


async def _region_account(
    pool: asyncpg.Pool, staff_no: str, name: str, role: Role, region_id: int
) -> None:
    if await pool.fetchval("SELECT 1 FROM staff WHERE staff_no = $1", staff_no):
        return
    member = await staff_service.create_staff(
        pool,
        _ACTOR,
        staff_service.StaffNew(
            staff_no=staff_no, name=name, password=DEMO_PASSWORD, region_id=region_id
        ),
    )
    await staff_service.create_grant(
        pool,
        _ACTOR,
        staff_service.GrantNew(
            staff_id=member.id, role=role, scope_kind="region", scope_id=region_id
        ),
    )


def _keep_tokens(path: Path, created: list[auth.DeviceCreated]) -> list[DemoDevice]:
    """The demo's device tokens: those kept from earlier runs plus the new ones."""
    kept = msgspec.json.decode(path.read_bytes(), type=list[DemoDevice]) if path.exists() else []
    devices = kept + [
        DemoDevice(c.device.id, c.device.kind, c.device.name, c.token) for c in created
    ]
    if created:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(msgspec.json.encode(devices))
        os.chmod(path, 0o600)
    return devices


async def seed(hub: Hub, data_dir: Path) -> DemoHall:
    """Create what the demo needs and is missing; returns what the demo runs."""
    assert hub.events is not None
    pool = hub.pool
    province = await _region(pool, None, "province", "demo-p", "示范省")
    city = await _region(pool, province, "city", "demo-c", "示范市")
    hall_file = hallfile.load(DEMO_HALL_FILE)
    applied = await hallfile.apply(
        hub.events, hub.now, hall_file, region_id=city, password=DEMO_PASSWORD, actor=_ACTOR
    )
    if hub.access is not None:
        hub.access.forget_hall(applied.hall_id)  # its windows' departments may be new
    await _region_account(pool, "A0001", "李明", "admin", city)
    await _region_account(pool, "S0001", "赵强", "supervisor", city)
    devices = _keep_tokens(data_dir / "demo-devices.json", applied.devices)
    workers = {m.window: applied.staff[m.staff_no] for m in hall_file.staff if m.window}
    # The accounts for visitors: every one but those the demo works itself.
    accounts = [
        DemoAccount(r["staff_no"], r["name"], r["role"], r["scope_kind"])
        for r in await pool.fetch(
            """SELECT s.staff_no, s.name, g.role, g.scope_kind FROM staff s
               JOIN role_grant g ON g.staff_id = s.id
               WHERE s.id <> ALL($1::bigint[]) ORDER BY s.staff_no""",
            list(workers.values()),
        )
    ]
    windows = [
        DemoWindow(applied.windows[w.number], w.number, w.name, workers.get(w.number))
        for w in hall_file.windows
    ]
    device_windows = {
        applied.device_ids[f"{d.kind}:{d.name}"]: d.window
        for d in hall_file.devices
        if d.window is not None
    }
    return DemoHall(
        applied.hall_id,
        applied.hall_name,
        devices,
        accounts,
        windows,
        applied.groups,
        device_windows,
    )


def _floor_devices(demo: DemoHall) -> list[demo_devices.FloorDevice]:
    window_ids = {w.number: w.window_id for w in demo.windows}
    out = []
    for d in demo.devices:
        number = demo.device_windows.get(d.id)
        out.append(
            demo_devices.FloorDevice(
                id=d.id,
                kind=d.kind,
                name=d.name,
                token=d.token,
                window_id=None if number is None else window_ids.get(number),
                window_number=number,
            )
        )
    return out


async def _pace_pads(hub: Hub, demo: DemoHall, pads: set[int]) -> None:
    """The pads' countdown at the demo's speed: the ``timeout_s`` setting of each simulated
    evaluator (D6), which the hub puts in its rating requests. Set only when it differs."""
    assert hub.events is not None
    seconds = demo_devices.rating_timeout(hub.settings.demo_speed)
    rows = await hub.pool.fetch(
        "SELECT id, config FROM device WHERE id = ANY($1::bigint[]) AND kind = 'evaluator'",
        list(pads),
    )
    place = await hall_place(hub.pool, demo.hall_id)
    for row in rows:
        config = dict(row["config"] or {})
        if config.get("timeout_s") == seconds:
            continue
        config["timeout_s"] = seconds
        await device_admin.configure(
            hub.events, _ACTOR, place, row["id"], device_admin.DeviceSettings(settings=config)
        )


# --- simulated devices ---------------------------------------------------------------------


async def _device_peer(url: str, device: DemoDevice, flaky: bool) -> None:
    """One simulated device: online with heartbeats; a flaky one drops and returns."""
    rng = random.Random(device.id)
    while True:
        async with PeerClient(url, device.kind, token=device.token) as peer:
            drain = asyncio.create_task(_drain(peer))
            try:
                await asyncio.sleep(rng.uniform(12, 20) if flaky else 3600 * 24)
            finally:
                drain.cancel()
        log.info("demo_device_dropped", device=device.name)
        await asyncio.sleep(rng.uniform(4, 8))


async def _drain(peer: PeerClient) -> None:
    while True:
        await peer.updates.get()


# --- simulated staff and citizens ----------------------------------------------------------


async def _window_staff(
    queue: QueueService, pool: asyncpg.Pool, place: Place, window: DemoWindow, speed: float
) -> None:
    """One staff member at one window: sign in, then call, serve and finish, for ever.

    A refused action (a manager closed the window, a visitor took it) is logged and the
    staff member tries again a little later.
    """
    assert window.staff_id is not None
    rng = random.Random(window.window_id)
    name = await pool.fetchval("SELECT name FROM staff WHERE id = $1", window.staff_id)
    principal = staff_principal(
        window.staff_id, name, await auth.load_grants(pool, window.staff_id)
    )
    grant = covering_grant(principal, "queue.operate", place)
    if grant is None:
        log.warning("demo_staff_without_grant", staff=window.staff_id)
        return
    actor = audit.Actor.of(principal, grant)

    async def pause(low: float, high: float) -> None:
        await asyncio.sleep(rng.uniform(low, high) / speed)

    while True:
        try:
            state = await queue.sign_in(actor, place, window.window_id)
            await _ready(queue, actor, place, window.window_id, state)
            while True:
                called = await queue.call_next(actor, place, window.window_id)
                if called.called is None:
                    await pause(3, 6)  # nobody waits for this window
                    continue
                service = rng.uniform(*_SERVICE_SECONDS)
                if rng.random() < 0.12:  # the citizen does not come at once: recall
                    await pause(8, 12)
                    await queue.recall(actor, place, window.window_id)
                    if rng.random() < 0.4:  # still nobody: skip (过号)
                        await pause(8, 12)
                        await queue.skip(actor, place, window.window_id)
                        continue
                await asyncio.sleep(service / speed)
                await queue.finish(actor, place, window.window_id)
        except DomainError as exc:
            log.info("demo_window_refused", window=window.number, code=exc.code, detail=exc.detail)
            await pause(10, 20)
        except Exception:  # the database went away for a moment: the demo goes on
            log.warning("demo_window_failed", window=window.number, exc_info=True)
            await pause(10, 20)


async def _ready(
    queue: QueueService, actor: audit.Actor, place: Place, window_id: int, state: WindowResult
) -> None:
    """A window found as a previous run left it: resumed, its tickets finished."""
    if state.window.status == "paused":
        await queue.resume(actor, place, window_id)
    for ticket in state.serving:
        if ticket.status == "held":
            await queue.return_held(actor, place, window_id, ticket.ticket_id)
        await queue.finish(actor, place, window_id)


_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建国志文辉波宁晨"
_DIVISIONS = ("110105", "310104", "440305", "330106", "510107", "420106", "320102", "610113")


def _citizen(rng: random.Random) -> tuple[str, str]:
    """A made-up name and a resident ID number with a valid check character (Q4)."""
    name = rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2))))
    birth = date.fromordinal(
        rng.randint(date(1940, 1, 1).toordinal(), date(2006, 12, 31).toordinal())
    )
    first17 = f"{rng.choice(_DIVISIONS)}{birth:%Y%m%d}{rng.randint(1, 999):03d}"
    return name, first17 + identity.check_character(first17)


async def _citizens(
    queue: QueueService,
    pool: asyncpg.Pool,
    hall: DemoHall,
    speed: float,
    base_url: str,
) -> None:
    """Citizens take tickets at the ticket machines and the kiosk (most at the first one):
    most with their ID card, a few in the green channel (the elderly, the disabled, the
    pregnant, military). A machine's printer prints the ticket when it can."""
    rng = random.Random()  # not seeded: a restarted demo brings new citizens (Q4 limits)
    prefixes = sorted(hall.groups)
    weights = [_DEMAND.get(p, 10) for p in prefixes]
    hosts = [d for d in hall.devices if d.kind in ("ticket_machine", "kiosk")]
    shares = [len(hosts) - i for i in range(len(hosts))]
    while True:
        await asyncio.sleep(rng.uniform(0.5, 1.5) * _ARRIVAL_SECONDS / speed)
        waiting = await pool.fetchval(
            "SELECT count(*) FROM ticket WHERE hall_id = $1 AND status = 'waiting'", hall.hall_id
        )
        if waiting > _CROWD and rng.random() < 0.7:
            continue
        prefix = rng.choices(prefixes, weights)[0]
        name, number = _citizen(rng)
        with_card = rng.random() < 0.7
        request = TicketRequest(
            group_id=hall.groups[prefix],
            priority="green_channel" if rng.random() < 0.05 else "normal",
            id_document=IdDocumentIn(kind="resident_id", number=number) if with_card else None,
            name=name if with_card else None,
        )
        host = rng.choices(hosts, shares)[0] if hosts else None
        source: TicketSource = "kiosk"
        if host is not None and host.kind == "ticket_machine":
            source = "id_card" if with_card else "ticket_machine"
        try:
            issued = await queue.issue(
                hall.hall_id,
                request,
                source=source,
                caller="device",
                device_id=None if host is None else host.id,
                print_base_url=None if host is None else base_url,
            )
            log.debug("demo_ticket_taken", ticket=issued.ticket.number, print=issued.print)
        except DomainError as exc:
            log.info("demo_ticket_refused", group=prefix, code=exc.code, detail=exc.detail)
        except Exception:  # the database went away for a moment: the demo goes on
            log.warning("demo_ticket_failed", group=prefix, exc_info=True)


async def _simulate(hub: Hub, demo: DemoHall, base_url: str) -> list[Coroutine[None, None, None]]:
    """The simulated citizens and staff of the demo hall."""
    assert hub.queue is not None
    queue, pool, speed = hub.queue, hub.pool, hub.settings.demo_speed
    place = await hall_place(pool, demo.hall_id)
    return [
        _citizens(queue, pool, demo, speed, base_url),
        *(
            _window_staff(queue, pool, place, window, speed)
            for window in demo.windows
            if window.staff_id is not None
        ),
    ]


async def run_demo(settings: Settings) -> None:
    """Serve the hub with the demo hall and its simulated devices, staff and citizens;
    print where to look."""
    tasks: list[asyncio.Task[None]] = []
    floors: list[demo_devices.DeviceFloor] = []

    async def on_ready(hub: Hub, port: int) -> None:
        data_dir = Path(settings.data_dir)
        demo = await seed(hub, data_dir)
        assert hub.gateway is not None
        url = f"ws://127.0.0.1:{hub.gateway.port}/"
        floor = await demo_devices.start(
            _floor_devices(demo),
            hall_id=demo.hall_id,
            gateway_url=url,
            data_dir=data_dir,
            speed=settings.demo_speed,
            citizen=_citizen,
        )
        simulated: set[int] = set()
        if floor is not None:
            floors.append(floor)
            simulated = floor.device_ids
            await _pace_pads(hub, demo, simulated)
        for i, device in enumerate(demo.devices):
            if device.id not in simulated:
                tasks.append(asyncio.create_task(_device_peer(url, device, flaky=i == 0)))
        base = _base_url(settings, port)
        tasks.extend(asyncio.create_task(run) for run in await _simulate(hub, demo, base))
        session = await auth.sign_in(hub.pool, "M0001", DEMO_PASSWORD, settings.session_hours)
        _print_banner(settings, port, demo, session.token, floor)

    try:
        await run_server(settings, on_ready)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        for floor in floors:
            await floor.close()


def _base_url(settings: Settings, port: int) -> str:
    """The hub's address as the banner prints it (and the printed QR codes encode it)."""
    return f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{port}"


def _print_banner(
    settings: Settings,
    port: int,
    demo: DemoHall,
    token: str,
    floor: demo_devices.DeviceFloor | None,
) -> None:
    base = _base_url(settings, port)
    hall = demo.hall_id
    staffed = sum(1 for w in demo.windows if w.staff_id is not None)
    if floor is None:
        hardware = ["  simulated hardware: none (see the demo_devices_unavailable log line)"]
    else:
        hardware = [
            f"  simulated hardware ({floor.agent_config}): {len(floor.printers)} printers "
            f"(paper runs out after {demo_devices.ROLL} tickets, refilled later), "
            f"{len(floor.readers)} ID card reader, {len(floor.pads)} evaluation pads, "
            f"{len(floor.panels)} LED window panels",
        ]
    lines = [
        "",
        f"hallhub demo — {demo.hall_name} (hall {hall})",
        f"  landing page      {base}/",
        f"  hall display      {base}/hall/?hall={hall}",
        f"  kiosk             {base}/kiosk/?hall={hall}",
        f"  staff console     {base}/staff/?hall={hall}   (W0001 or M0001; windows 6, 8 free)",
        f"  manager console   {base}/manage/?hall={hall}   (M0001)",
        f"  device page       {base}/devices/?hall={hall}&token={token}",
        f"  device status     {base}/status/?hall={hall}&token={token}",
        "  window displays",
        *(
            f"    {w.number}号 {w.name:<8}{base}/window/?hall={hall}&window={w.window_id}"
            for w in demo.windows
        ),
        f"  API (OpenAPI)     {base}/schema",
        f"  health / ready    {base}/health  {base}/ready",
        f"  metrics           {base}/metrics",
        f"  sign-ins (password {DEMO_PASSWORD!r}, POST {base}/api/auth/sign-in):",
        *(f"    {a.staff_no}  {a.name}  {a.role} ({a.scope})" for a in demo.accounts),
        f"  devices: {len(demo.devices)}; {demo.devices[0].name} drops and returns",
        *hardware,
        f"  simulated staff at {staffed} windows, citizens at the ticket machines and the kiosk "
        f"(speed {settings.demo_speed:g}, HALLHUB_DEMO_SPEED)",
        "  Ctrl-C stops the hub.",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    log.info("demo_ready", hall=hall, url=base)
