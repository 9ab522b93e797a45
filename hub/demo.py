"""``hallhub demo``: a simulated hall on an embedded PostgreSQL (H4).

Seeds (once, idempotently) a province → city → county, three departments, a hall with six
windows, the four kinds of staff account, and one device of each kind; then runs simulated
device peers through the real gateway. One ticket machine drops off and returns every
cycle, so the status page shows presence changing live. Device tokens of the demo are kept
in ``<data_dir>/demo-devices.json`` (0600): a real hall never stores them, the hub itself
keeps only their SHA-256.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from pathlib import Path

import asyncpg
import msgspec
import structlog

from hub.config import Settings
from hub.domain.access import Role, ScopeKind
from hub.runtime import Hub
from hub.server import run_server
from hub.services import audit, auth, org
from hub.services import staff as staff_service
from realtime.client import PeerClient

log = structlog.get_logger("hub.demo")

DEMO_PASSWORD = "hallhub-demo"
_ACTOR = audit.Actor.system("demo")


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


class DemoHall(msgspec.Struct, frozen=True):
    hall_id: int
    hall_name: str
    devices: list[DemoDevice]
    accounts: list[DemoAccount]


_DEVICES = [
    ("ticket_machine", "一楼取号机"),
    ("ticket_machine", "二楼取号机"),
    ("hall_display", "大厅综合屏"),
    ("window_display", "1号窗口显示屏"),
    ("window_display", "2号窗口显示屏"),
    ("evaluator", "1号窗口评价器"),
    ("kiosk", "自助服务终端"),
    ("id_reader", "身份证读卡器"),
]


async def seed(pool: asyncpg.Pool, data_dir: Path) -> DemoHall:
    """Create the demo organisation unless it exists; returns what the demo needs."""
    existing = await pool.fetchrow("SELECT id, name FROM hall WHERE code = 'demo-hall'")
    tokens_file = data_dir / "demo-devices.json"
    if existing is None:
        province = await org.create_region(
            pool, _ACTOR, org.RegionNew(level="province", code="demo-p", name="示范省")
        )
        city = await org.create_region(
            pool,
            _ACTOR,
            org.RegionNew(parent_id=province.id, level="city", code="demo-c", name="示范市"),
        )
        departments = [
            await org.create_department(
                pool, _ACTOR, org.DepartmentNew(region_id=city.id, code=code, name=name)
            )
            for code, name in [
                ("demo-amr", "市场监督管理局"),
                ("demo-hrss", "人力资源和社会保障局"),
                ("demo-psb", "公安局"),
            ]
        ]
        hall = await org.create_hall(
            pool,
            _ACTOR,
            org.HallNew(region_id=city.id, code="demo-hall", name="示范市政务服务中心"),
        )
        for number in range(1, 7):
            department = departments[(number - 1) % len(departments)]
            await org.create_window(
                pool,
                _ACTOR,
                hall.id,
                org.WindowNew(number=number, name=f"{number}号窗口", department_id=department.id),
            )
        accounts: list[tuple[str, str, Role, ScopeKind, int]] = [
            ("A0001", "李明", "admin", "region", city.id),
            ("M0001", "王芳", "hall_manager", "hall", hall.id),
            ("S0001", "赵强", "supervisor", "region", city.id),
            ("W0001", "陈静", "window_staff", "hall", hall.id),
        ]
        for staff_no, name, role, scope_kind, scope_id in accounts:
            home = {"hall": "hall_id", "region": "region_id"}[scope_kind]
            member = await staff_service.create_staff(
                pool,
                _ACTOR,
                staff_service.StaffNew(
                    staff_no=staff_no, name=name, password=DEMO_PASSWORD, **{home: scope_id}
                ),
            )
            await staff_service.create_grant(
                pool,
                _ACTOR,
                staff_service.GrantNew(
                    staff_id=member.id, role=role, scope_kind=scope_kind, scope_id=scope_id
                ),
            )
        devices = []
        for kind, name in _DEVICES:
            created = await auth.register_device(pool, _ACTOR, hall.id, kind, name)  # type: ignore[arg-type]
            devices.append(DemoDevice(created.device.id, kind, name, created.token))
        tokens_file.parent.mkdir(parents=True, exist_ok=True)
        tokens_file.write_bytes(msgspec.json.encode(devices))
        os.chmod(tokens_file, 0o600)
        hall_id, hall_name = hall.id, hall.name
    else:
        hall_id, hall_name = existing["id"], existing["name"]
        devices = msgspec.json.decode(tokens_file.read_bytes(), type=list[DemoDevice])
    accounts_out = [
        DemoAccount(r["staff_no"], r["name"], r["role"], r["scope_kind"])
        for r in await pool.fetch(
            """SELECT s.staff_no, s.name, g.role, g.scope_kind FROM staff s
               JOIN role_grant g ON g.staff_id = s.id ORDER BY s.staff_no"""
        )
    ]
    return DemoHall(hall_id, hall_name, devices, accounts_out)


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


async def run_demo(settings: Settings) -> None:
    """Serve the hub with the demo hall and its simulated devices; print where to look."""
    peers: list[asyncio.Task[None]] = []

    async def on_ready(hub: Hub, port: int) -> None:
        demo = await seed(hub.pool, Path(settings.data_dir))
        assert hub.gateway is not None
        url = f"ws://127.0.0.1:{hub.gateway.port}/"
        for i, device in enumerate(demo.devices):
            peers.append(asyncio.create_task(_device_peer(url, device, flaky=i == 0)))
        session = await auth.sign_in(hub.pool, "M0001", DEMO_PASSWORD, settings.session_hours)
        _print_banner(settings, port, demo, session.token)

    try:
        await run_server(settings, on_ready)
    finally:
        for task in peers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*peers, return_exceptions=True)


def _print_banner(settings: Settings, port: int, demo: DemoHall, token: str) -> None:
    base = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}:{port}"
    lines = [
        "",
        f"hallhub demo — {demo.hall_name} (hall {demo.hall_id})",
        f"  landing page      {base}/",
        f"  device status     {base}/status/?hall={demo.hall_id}&token={token}",
        f"  API (OpenAPI)     {base}/schema",
        f"  health / ready    {base}/health  {base}/ready",
        f"  metrics           {base}/metrics",
        f"  sign-ins (password {DEMO_PASSWORD!r}, POST {base}/api/auth/sign-in):",
        *(f"    {a.staff_no}  {a.name}  {a.role} ({a.scope})" for a in demo.accounts),
        f"  simulated devices: {len(demo.devices)}; {demo.devices[0].name} drops and returns",
        "  Ctrl-C stops the hub.",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    log.info("demo_ready", hall=demo.hall_id, url=base)
