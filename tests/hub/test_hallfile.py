"""Hall files (hub/hallfile.py): the demo hall's file loads; a broken file is refused with the
path of its first error; applying creates the hall once and only what is missing after."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import msgspec
import pytest

from hub import hallfile
from hub.demo import DEMO_HALL_FILE
from hub.runtime import Hub
from hub.services import auth, org
from tests.hub.conftest import SYSTEM
from tests.realtime.peers import hubs

PASSWORD = "hall-file-pw"

SMALL = """
[hall]
code = "h1"
name = "滨江区政务服务中心"
opens = "08:30"
closes = "17:30"
requeue_limit = 2

[[departments]]
code = "tax-1"
name = "税务局"

[[groups]]
prefix = "A"
name = "社保"

[[groups]]
prefix = "D"
name = "税务"
daily_quota = 100

[[windows]]
number = 1
name = "税务综合"
department = "tax-1"
groups = ["D", "A"]
red_flag = true

[[windows]]
number = 2
groups = ["A"]

[[staff]]
staff_no = "H1M1"
name = "王芳"
role = "hall_manager"

[[staff]]
staff_no = "H1W1"
name = "刘洋"
window = 1
star = true

[[devices]]
kind = "kiosk"
name = "自助服务终端"

[[devices]]
kind = "printer"
name = "自助服务终端打印机"
host = "自助服务终端"

[[devices]]
kind = "evaluator"
name = "1号窗口评价器"
window = 1
"""

EVALUATOR = 'name = "1号窗口评价器"\nwindow = 1'
KIOSK = 'name = "自助服务终端"\n\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hall.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
async def hub(db: asyncpg.Pool, database_url: str) -> AsyncIterator[Hub]:
    async with hubs(database_url) as start:
        yield await start()


@pytest.fixture
async def region(db: asyncpg.Pool) -> int:
    new = org.RegionNew(level="province", code="p", name="某省")
    return (await org.create_region(db, SYSTEM, new)).id


async def _apply(hub: Hub, f: hallfile.HallFile, region: int) -> hallfile.AppliedHall:
    assert hub.events is not None
    return await hallfile.apply(hub.events, hub.now, f, region_id=region, password=PASSWORD)


async def _counts(db: asyncpg.Pool) -> dict[str, int]:
    tables = ["hall", "department", "service_group", '"window"', "window_group", "staff",
              "role_grant", "device", "audit_log"]  # fmt: skip
    return {t: await db.fetchval(f"SELECT count(*) FROM {t}") for t in tables}


def test_the_demo_hall_file_loads() -> None:
    """The demo's hall: five groups, eight windows each serving a group, staff with Chinese
    names, the visitors' accounts without a window, its devices bound to hosts and windows."""
    f = hallfile.load(DEMO_HALL_FILE)
    assert f.hall.name == "示范市政务服务中心"
    assert [g.prefix for g in f.groups] == ["A", "B", "C", "D", "E"]
    assert [w.number for w in f.windows] == list(range(1, 9))
    assert all(w.groups and w.department for w in f.windows)
    staff = {s.staff_no: s for s in f.staff}
    assert staff["M0001"].role == "hall_manager" and staff["M0001"].window is None
    assert staff["W0001"].window is None
    assert (f.opens_minute, f.closes_minute) == (0, 1440)
    # Its hardware (simulated by hub/demo_devices.py): a printer in each ticket machine and
    # the kiosk, the kiosk's ID card reader, a pad and an LED panel at windows 1-4.
    hosts = {d.name for d in f.devices if d.kind in ("ticket_machine", "kiosk")}
    assert sorted(d.host or "" for d in f.devices if d.kind == "printer") == sorted(hosts)
    assert [(d.host, d.window) for d in f.devices if d.kind == "id_reader"] == [
        ("自助服务终端", None)
    ]
    assert [d.window for d in f.devices if d.kind == "evaluator"] == [1, 2, 3, 4]
    assert sorted(d.window or 0 for d in f.devices if d.kind == "window_display") == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (('prefix = "A"', 'prefix = "a"'), "$.groups[0].prefix"),
        (("number = 2\n", 'number = 2\ncolour = "red"\n'), "$.windows[1]"),
        (('groups = ["D", "A"]', 'groups = ["D", "Z"]'), "$.windows[0].groups[1]"),
        (('groups = ["D", "A"]', 'groups = ["D", "D"]'), "$.windows[0].groups[1]"),
        (('department = "tax-1"', 'department = "police"'), "$.windows[0].department"),
        (("number = 2\n", "number = 1\n"), "$.windows[1]"),
        (('name = "社保"', 'name = ""'), "$.groups[0].name"),
        (("daily_quota = 100", "daily_quota = 0"), "$.groups[1].daily_quota"),
        (('role = "hall_manager"', 'role = "admin"'), "$.staff[0].role"),
        (('role = "hall_manager"', 'role = "hall_manager"\nwindow = 1'), "$.staff[1].window"),
        (("window = 1", "window = 7"), "$.staff[1].window"),
        (('staff_no = "H1W1"', 'staff_no = "H1M1"'), "$.staff[1]"),
        (('kind = "kiosk"', 'kind = "toaster"'), "$.devices[0].kind"),
        (('host = "自助服务终端"', 'host = "大厅综合屏"'), "$.devices[1].host"),
        (('kind = "kiosk"', 'kind = "hall_display"'), "$.devices[1].host"),
        (('host = "自助服务终端"', "window = 2"), "$.devices[1].window"),
        (('host = "自助服务终端"', 'host = "自助服务终端"\nwindow = 2'), "$.devices[1].window"),
        ((EVALUATOR, EVALUATOR.replace("window = 1", "window = 9")), "$.devices[2].window"),
        (
            (EVALUATOR, EVALUATOR.replace("window = 1", 'host = "自助服务终端"')),
            "$.devices[2].host",
        ),
        ((KIOSK, KIOSK.replace("\n\n", '\nhost = "自助服务终端"\n\n')), "$.devices[0].host"),
        ((KIOSK, KIOSK.replace("\n\n", "\nwindow = 1\n\n")), "$.devices[0].window"),
        (('closes = "17:30"', 'closes = "08:00"'), "$.hall.closes"),
        (('opens = "08:30"', 'opens = "25:00"'), "$.hall.opens"),
        (('opens = "08:30"', 'opens = "8:30"'), "$.hall.opens"),
        (('opens = "08:30"', 'timezone = "Mars/Olympus"'), "$.hall.timezone"),
        (("requeue_limit = 2", "requeue_limit = -1"), "$.hall.requeue_limit"),
        (('code = "h1"\n', ""), "$.hall"),
    ],
)
def test_a_broken_hall_file_is_refused_with_the_path_of_the_error(
    tmp_path: Path, change: tuple[str, str], field: str
) -> None:
    old, new = change
    assert old in SMALL
    with pytest.raises(hallfile.HallFileError) as refused:
        hallfile.load(_write(tmp_path, SMALL.replace(old, new, 1)))
    assert refused.value.field == field, str(refused.value)
    assert str(refused.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [("[hall\n", "is not valid TOML"), ("", "missing required field `hall`")],
)
def test_a_file_that_is_no_hall_file_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(hallfile.HallFileError, match=message):
        hallfile.load(_write(tmp_path, text))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(hallfile.HallFileError, match="cannot read"):
        hallfile.load(tmp_path / "nowhere.toml")


async def test_applying_creates_the_hall_with_everything_in_the_file(
    db: asyncpg.Pool, hub: Hub, region: int, tmp_path: Path
) -> None:
    applied = await _apply(hub, hallfile.load(_write(tmp_path, SMALL)), region)
    hall = await db.fetchrow("SELECT * FROM hall WHERE id = $1", applied.hall_id)
    assert (hall["code"], hall["name"], hall["timezone"]) == (
        "h1",
        "滨江区政务服务中心",
        "Asia/Shanghai",
    )
    assert (hall["opens_minute"], hall["closes_minute"], hall["requeue_limit"]) == (510, 1050, 2)
    groups = {
        r["prefix"]: (r["name"], r["daily_quota"])
        for r in await db.fetch("SELECT * FROM service_group WHERE hall_id = $1", applied.hall_id)
    }
    assert groups == {"A": ("社保", None), "D": ("税务", 100)}
    ranks = await db.fetch(
        """SELECT w.number, g.prefix, wg.rank, w.red_flag, d.code
           FROM window_group wg JOIN "window" w ON w.id = wg.window_id
           JOIN service_group g ON g.id = wg.group_id
           LEFT JOIN department d ON d.id = w.department_id ORDER BY w.number, wg.rank"""
    )
    assert [tuple(r) for r in ranks] == [
        (1, "D", 1, True, "tax-1"),
        (1, "A", 2, True, "tax-1"),
        (2, "A", 1, False, None),
    ]
    staff = await db.fetch(
        """SELECT s.staff_no, s.hall_id, s.star_staff, g.role, g.scope_kind, g.scope_id
           FROM staff s JOIN role_grant g ON g.staff_id = s.id ORDER BY s.staff_no"""
    )
    assert [tuple(r) for r in staff] == [
        ("H1M1", applied.hall_id, False, "hall_manager", "hall", applied.hall_id),
        ("H1W1", applied.hall_id, True, "window_staff", "hall", applied.hall_id),
    ]
    assert (await auth.sign_in(db, "H1W1", PASSWORD, 1)).name == "刘洋"
    kiosk, printer, evaluator = applied.devices
    for device in applied.devices:
        principal = await auth.device_by_token(db, device.token)
        assert principal is not None and principal.hall_id == applied.hall_id
    assert applied.device_ids == {
        "kiosk:自助服务终端": kiosk.device.id,
        "printer:自助服务终端打印机": printer.device.id,
        "evaluator:1号窗口评价器": evaluator.device.id,
    }
    bindings = await db.fetch("SELECT kind, host_id, window_id FROM device ORDER BY id")
    assert [tuple(r) for r in bindings] == [
        ("kiosk", None, None),
        ("printer", kiosk.device.id, None),
        ("evaluator", None, applied.windows[1]),
    ]
    assert applied.groups == {"A": applied.groups["A"], "D": applied.groups["D"]}
    assert sorted(applied.windows) == [1, 2] and sorted(applied.staff) == ["H1M1", "H1W1"]
    actions = await db.fetch(
        "SELECT action FROM audit_log WHERE actor_label = 'hallfile' ORDER BY id"
    )
    assert [r["action"] for r in actions] == [
        "hall.create", "hall.queue_settings", "department.create", "group.create",
        "group.create", "window.create", "window.create", "window.groups", "window.groups",
        "window.red_flag", "staff.create", "grant.create", "staff.create", "grant.create",
        "staff.star", "device.register", "device.register", "device.register",
        "device.update", "device.update",
    ]  # fmt: skip
    assert applied.created[-2:] == [
        "binding of device printer 自助服务终端打印机",
        "binding of device evaluator 1号窗口评价器",
    ]


async def test_applying_again_creates_nothing_and_changes_nothing(
    db: asyncpg.Pool, hub: Hub, region: int, tmp_path: Path
) -> None:
    """The second run finds every record by its key: same ids, no new rows, no audit rows,
    no device tokens."""
    f = hallfile.load(_write(tmp_path, SMALL))
    first = await _apply(hub, f, region)
    counts = await _counts(db)
    events = await db.fetchval("SELECT count(*) FROM topic_event")
    second = await _apply(hub, f, region)
    assert second.created == [] and second.devices == []
    assert msgspec.structs.replace(first, created=[], devices=[]) == second
    assert await _counts(db) == counts
    assert await db.fetchval("SELECT count(*) FROM topic_event") == events


async def test_applying_keeps_a_managers_changes_and_adds_what_is_new(
    db: asyncpg.Pool, hub: Hub, region: int, tmp_path: Path
) -> None:
    """Hours, honours and a window's groups changed since stay; a group and a window added
    to the file are created, the new window with its groups."""
    first = await _apply(hub, hallfile.load(_write(tmp_path, SMALL)), region)
    await db.execute("UPDATE hall SET opens_minute = 600 WHERE id = $1", first.hall_id)
    await db.execute('UPDATE "window" SET red_flag = false WHERE id = $1', first.windows[1])
    await db.execute("DELETE FROM window_group WHERE window_id = $1 AND rank = 2", first.windows[1])
    grown = SMALL + textwrap.dedent(
        """
        [[groups]]
        prefix = "E"
        name = "综合受理"

        [[windows]]
        number = 3
        name = "综合受理"
        groups = ["E", "A"]
        """
    )
    second = await _apply(hub, hallfile.load(_write(tmp_path, grown)), region)
    assert second.created == ["group E", "window 3", "groups of window 3"]
    assert await db.fetchval("SELECT opens_minute FROM hall WHERE id = $1", first.hall_id) == 600
    assert await db.fetchval(
        'SELECT red_flag FROM "window" WHERE id = $1', first.windows[1]
    ) is False  # fmt: skip
    ranks = await db.fetch(
        "SELECT window_id, group_id, rank FROM window_group ORDER BY window_id, rank"
    )
    assert [tuple(r) for r in ranks] == [
        (first.windows[1], first.groups["D"], 1),
        (first.windows[2], first.groups["A"], 1),
        (second.windows[3], second.groups["E"], 1),
        (second.windows[3], first.groups["A"], 2),
    ]


async def test_a_window_left_without_groups_gets_those_of_the_file(
    db: asyncpg.Pool, hub: Hub, region: int, tmp_path: Path
) -> None:
    """A window that serves nothing (e.g. made by an older demo) is given its groups."""
    f = hallfile.load(_write(tmp_path, SMALL))
    first = await _apply(hub, f, region)
    await db.execute("DELETE FROM window_group WHERE window_id = $1", first.windows[2])
    second = await _apply(hub, f, region)
    assert second.created == ["groups of window 2"]
    assert await db.fetchval(
        "SELECT group_id FROM window_group WHERE window_id = $1", first.windows[2]
    ) == first.groups["A"]  # fmt: skip


async def test_a_device_bound_since_keeps_its_binding_and_an_unbound_one_gets_the_files(
    db: asyncpg.Pool, hub: Hub, region: int, tmp_path: Path
) -> None:
    """A manager moved the evaluator to window 2: applying again leaves it there; the
    printer, unbound since (e.g. registered by an older file without bindings), is attached
    to its host again, announced like a binding from the device page."""
    f = hallfile.load(_write(tmp_path, SMALL))
    first = await _apply(hub, f, region)
    printer = first.device_ids["printer:自助服务终端打印机"]
    evaluator = first.device_ids["evaluator:1号窗口评价器"]
    await db.execute("UPDATE device SET host_id = NULL WHERE id = $1", printer)
    await db.execute("UPDATE device SET window_id = $2 WHERE id = $1", evaluator, first.windows[2])
    second = await _apply(hub, f, region)
    assert second.created == ["binding of device printer 自助服务终端打印机"]
    assert second.devices == [] and second.device_ids == first.device_ids
    assert (
        await db.fetchval("SELECT host_id FROM device WHERE id = $1", printer)
        == (first.device_ids["kiosk:自助服务终端"])
    )
    assert (
        await db.fetchval("SELECT window_id FROM device WHERE id = $1", evaluator)
        == (first.windows[2])
    )
    changed = await db.fetchval(
        "SELECT count(*) FROM topic_event WHERE topic = $1 AND type = 'device_changed'",
        f"device:{printer}",
    )
    assert changed == 2
