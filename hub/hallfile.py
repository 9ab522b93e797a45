"""A hall described in a TOML file (Q1, Q2, Q6): load it, check it, apply it idempotently.

The demo hall is one (hub/demo_hall.toml); a real hall may be set up the same way. Layout::

    [hall]                     code, name, timezone, opens = "08:30", closes = "17:30",
                               id_daily_limit, requeue_limit
    [[departments]]            code, name                (the agencies with windows here)
    [[groups]]                 prefix, name, active, daily_quota, id_daily_limit,
                               service_seconds           (as POST …/groups takes them)
    [[windows]]                number, name, department (a code), groups = ["A", "E"]
                               (in order of preference: rank 1, 2, …), red_flag
    [[staff]]                  staff_no, name, role (window_staff | hall_manager |
                               supervisor, on this hall), window (a number), star
    [[devices]]                kind, name, host (the name of a kiosk, ticket machine or
                               touch terminal of the file: a printer's, ID reader's or code
                               reader's), window (a number: an evaluator's, window display's,
                               ID reader's or scanner's)

:func:`load` checks the types (msgspec) and the references between sections (a window's
groups and department, a staff member's window) and reports the first error with its path
(``$.windows[2].groups[1]``), and where each device may be bound
(:func:`hub.domain.devices.check_binding`). :func:`apply` creates what is missing and changes
nothing that exists: a hall's settings and the honours are set when the hall, the window or
the staff member is created, a window's groups when it serves none, a device's binding when it
has none (hub/services/device_admin.py), so a manager's later changes survive the next run.
Everything goes through the services, audited (actor ``hallfile`` unless given).

Passwords are not kept in the file: new staff accounts get the password the caller gives.
Device tokens are shown once: :func:`apply` returns those of the devices it registered.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import asyncpg
import msgspec
import structlog

from hub.domain.access import DeviceKind, Role
from hub.domain.devices import HOST_KINDS, check_binding
from hub.domain.errors import InvalidInput
from hub.domain.queue import zone
from hub.domain.queue_config import check_hours, minute_of_day
from hub.services import audit, auth, device_admin, honours, org, queue_config
from hub.services import staff as staff_service
from hub.services.access import hall_place
from hub.services.events import EventWriter
from hub.services.records import Code, Name

log = structlog.get_logger("hub.hallfile")

HallRole = Literal["window_staff", "hall_manager", "supervisor"]
Clock = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{2}:[0-9]{2}$")]
WindowNumber = Annotated[int, msgspec.Meta(ge=1, le=9999)]


class HallFileError(InvalidInput):
    """The hall file cannot be read, or breaks a rule; ``field`` is the path in the file."""

    code = "invalid_hall_file"

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail


class HallEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Code
    name: Name
    timezone: str = "Asia/Shanghai"
    opens: Clock = "09:00"
    closes: Clock = "17:00"
    id_daily_limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 3
    requeue_limit: Annotated[int, msgspec.Meta(ge=0, le=9)] = 1


class DepartmentEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Code
    name: Name


class WindowEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    number: WindowNumber
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    department: Code | None = None
    groups: list[queue_config.Prefix] = []
    red_flag: bool = False


class StaffEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    staff_no: Code
    name: Name
    role: HallRole = "window_staff"
    window: WindowNumber | None = None  # the window they work (the demo opens it for them)
    star: bool = False


class DeviceEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: DeviceKind
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    """The name of the kiosk, ticket machine or touch terminal (in this file) whose page
    uses the device: a printer's, an ID reader's or a code reader's."""
    window: WindowNumber | None = None
    """The window it stands at: an evaluator's, a window display's, an ID reader's or a
    scanner's."""


class HallFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    hall: HallEntry
    departments: list[DepartmentEntry] = []
    groups: list[queue_config.GroupNew] = []
    windows: list[WindowEntry] = []
    staff: list[StaffEntry] = []
    devices: list[DeviceEntry] = []

    @property
    def opens_minute(self) -> int:
        return minute_of_day(self.hall.opens, "$.hall.opens")

    @property
    def closes_minute(self) -> int:
        return minute_of_day(self.hall.closes, "$.hall.closes")


class AppliedHall(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`apply` found or made: ids by the file's keys, what it created (a line
    each), and the devices it registered with their tokens (shown this once)."""

    hall_id: int
    hall_name: str
    groups: dict[str, int]
    windows: dict[int, int]
    staff: dict[str, int]
    created: list[str]
    devices: list[auth.DeviceCreated]
    device_ids: dict[str, int] = {}
    """Every device of the file, by ``<kind>:<name>``."""


def load(path: str | Path) -> HallFile:
    """Read and check a hall file.

    Raises:
        HallFileError: unreadable, not TOML, a wrong type or value, or a broken reference
            (the message names the path in the file).
    """
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise HallFileError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise HallFileError(f"{path} is not valid TOML: {exc}") from exc
    return parse(data)


def parse(data: dict[str, object]) -> HallFile:
    """Check a hall file already read from TOML (see :func:`load`)."""
    try:
        hall_file = msgspec.convert(data, HallFile)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).rpartition(" - at `")
        if not message:
            raise HallFileError(str(exc), field="$") from exc
        raise HallFileError(message, field=where.rstrip("`")) from exc
    try:
        _check(hall_file)
    except HallFileError:
        raise
    except InvalidInput as exc:
        raise HallFileError(exc.detail, field=exc.field) from exc
    return hall_file


def _unique(values: list[object], path: str, what: str) -> None:
    seen: set[object] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise HallFileError(f"{what} {value!r} is listed twice", field=f"{path}[{i}]")
        seen.add(value)


def _check(f: HallFile) -> None:
    try:
        zone(f.hall.timezone)
    except InvalidInput as exc:
        raise HallFileError(exc.detail, field="$.hall.timezone") from exc
    check_hours(f.opens_minute, f.closes_minute, field="$.hall.closes")
    _unique([d.code for d in f.departments], "$.departments", "department")
    _unique([g.prefix for g in f.groups], "$.groups", "prefix")
    _unique([w.number for w in f.windows], "$.windows", "window")
    _unique([s.staff_no for s in f.staff], "$.staff", "staff number")
    _unique([(d.kind, d.name) for d in f.devices], "$.devices", "device")
    departments = {d.code for d in f.departments}
    prefixes = {g.prefix for g in f.groups}
    for i, window in enumerate(f.windows):
        if window.department is not None and window.department not in departments:
            raise HallFileError(
                f"no department {window.department!r} in [[departments]]",
                field=f"$.windows[{i}].department",
            )
        _unique(list(window.groups), f"$.windows[{i}].groups", "group")
        for j, prefix in enumerate(window.groups):
            if prefix not in prefixes:
                raise HallFileError(
                    f"no group {prefix!r} in [[groups]]", field=f"$.windows[{i}].groups[{j}]"
                )
    numbers = {w.number for w in f.windows}
    worked: set[int] = set()
    for i, member in enumerate(f.staff):
        if member.window is None:
            continue
        if member.window not in numbers:
            raise HallFileError(
                f"no window {member.window} in [[windows]]", field=f"$.staff[{i}].window"
            )
        if member.window in worked:
            raise HallFileError(
                f"window {member.window} has another staff member already",
                field=f"$.staff[{i}].window",
            )
        worked.add(member.window)
    _check_devices(f, numbers)


def _check_devices(f: HallFile, windows: set[int]) -> None:
    """Each binding names a host of the file (of a host kind) or one of its windows, and one
    the device's kind takes (hub.domain.devices.check_binding)."""
    hosts: dict[str, list[str]] = {}
    for entry in f.devices:
        if entry.kind in HOST_KINDS:
            hosts.setdefault(entry.name, []).append(entry.kind)
    for i, entry in enumerate(f.devices):
        host_kind = None
        if entry.host is not None:
            kinds = hosts.get(entry.host, [])
            if not kinds:
                raise HallFileError(
                    f"no kiosk, ticket machine or touch terminal {entry.host!r} in [[devices]]",
                    field=f"$.devices[{i}].host",
                )
            if len(kinds) > 1:
                raise HallFileError(
                    f"several hosts are named {entry.host!r}", field=f"$.devices[{i}].host"
                )
            host_kind = kinds[0]
        if entry.window is not None and entry.window not in windows:
            raise HallFileError(
                f"no window {entry.window} in [[windows]]", field=f"$.devices[{i}].window"
            )
        try:
            check_binding(
                entry.kind,
                host_kind=host_kind,
                host_is_self=entry.host == entry.name and entry.kind == host_kind,
                has_window=entry.window is not None,
            )
        except InvalidInput as exc:
            where = "host" if exc.field == "body.host_id" else "window"
            raise HallFileError(exc.detail, field=f"$.devices[{i}].{where}") from exc


async def apply(
    events: EventWriter,
    clock: Callable[[], datetime],
    hall_file: HallFile,
    *,
    region_id: int,
    password: str,
    actor: audit.Actor | None = None,
) -> AppliedHall:
    """Create the hall of ``hall_file`` in ``region_id`` and whatever of it is missing.

    Records are matched by their keys: the hall and departments by code, groups by prefix,
    windows by number, staff by staff number, devices by kind and name (unrevoked).
    Existing records are left as they are (module docstring).

    Args:
        events: the hub's event writer (configuration changes are announced).
        clock: the hub's clock (the service day of the announcements).
        region_id: the region of a new hall and new departments.
        password: the password of new staff accounts (at least 8 characters).
        actor: the audit actor; ``hallfile`` (a system actor) by default.
    """
    who = actor or audit.Actor.system("hallfile")
    pool = events.pool
    created: list[str] = []
    hall_id = await pool.fetchval("SELECT id FROM hall WHERE code = $1", hall_file.hall.code)
    if hall_id is None:
        hall = await org.create_hall(
            pool,
            who,
            org.HallNew(
                region_id=region_id,
                code=hall_file.hall.code,
                name=hall_file.hall.name,
                timezone=hall_file.hall.timezone,
            ),
        )
        hall_id = hall.id
        settings = queue_config.QueueSettingsPatch(
            opens_minute=hall_file.opens_minute,
            closes_minute=hall_file.closes_minute,
            id_daily_limit=hall_file.hall.id_daily_limit,
            requeue_limit=hall_file.hall.requeue_limit,
        )
        await queue_config.update_settings(
            events, clock, who, await hall_place(pool, hall_id), settings
        )
        created.append(f"hall {hall_file.hall.code}")
    departments = await _departments(pool, who, hall_file, region_id, created)
    groups = await _groups(events, clock, who, hall_id, hall_file, created)
    windows = await _windows(events, clock, who, hall_id, hall_file, departments, groups, created)
    staff = await _staff(events, clock, who, hall_id, hall_file, password, created)
    devices, device_ids = await _devices(pool, who, hall_id, hall_file, created)
    await _bind_devices(events, who, hall_id, hall_file, windows, device_ids, created)
    name = await pool.fetchval("SELECT name FROM hall WHERE id = $1", hall_id)
    log.info("hall_file_applied", hall=hall_id, created=len(created))
    return AppliedHall(
        hall_id=hall_id,
        hall_name=name,
        groups=groups,
        windows=windows,
        staff=staff,
        created=created,
        devices=devices,
        device_ids=device_ids,
    )


async def _departments(
    pool: asyncpg.Pool, who: audit.Actor, f: HallFile, region_id: int, created: list[str]
) -> dict[str, int]:
    ids: dict[str, int] = {}
    for entry in f.departments:
        found = await pool.fetchval("SELECT id FROM department WHERE code = $1", entry.code)
        if found is None:
            new = org.DepartmentNew(region_id=region_id, code=entry.code, name=entry.name)
            found = (await org.create_department(pool, who, new)).id
            created.append(f"department {entry.code}")
        ids[entry.code] = found
    return ids


async def _groups(
    events: EventWriter,
    clock: Callable[[], datetime],
    who: audit.Actor,
    hall_id: int,
    f: HallFile,
    created: list[str],
) -> dict[str, int]:
    ids = {g.prefix: g.id for g in await queue_config.list_groups(events.pool, hall_id)}
    missing = [g for g in f.groups if g.prefix not in ids]
    if missing:
        place = await hall_place(events.pool, hall_id)
        for entry in missing:
            ids[entry.prefix] = (
                await queue_config.create_group(events, clock, who, place, entry)
            ).id
            created.append(f"group {entry.prefix}")
    return ids


async def _windows(
    events: EventWriter,
    clock: Callable[[], datetime],
    who: audit.Actor,
    hall_id: int,
    f: HallFile,
    departments: dict[str, int],
    groups: dict[str, int],
    created: list[str],
) -> dict[int, int]:
    pool = events.pool
    ids = {w.number: w.id for w in await org.list_windows(pool, hall_id)}
    new = [w for w in f.windows if w.number not in ids]
    for entry in new:
        department = departments[entry.department] if entry.department else None
        window = await org.create_window(
            pool,
            who,
            hall_id,
            org.WindowNew(number=entry.number, name=entry.name, department_id=department),
        )
        ids[entry.number] = window.id
        created.append(f"window {entry.number}")
    serving = {
        r["window_id"]
        for r in await pool.fetch(
            "SELECT DISTINCT window_id FROM window_group WHERE window_id = ANY($1::bigint[])",
            list(ids.values()),
        )
    }
    idle = [w for w in f.windows if w.groups and ids[w.number] not in serving]
    if new or idle:
        # Read after the windows were made: the hall's departments are part of its place.
        place = await hall_place(pool, hall_id)
        for entry in idle:
            ranked = [
                queue_config.WindowGroup(group_id=groups[prefix], rank=rank)
                for rank, prefix in enumerate(entry.groups, start=1)
            ]
            await queue_config.set_window_groups(
                events, clock, who, place, ids[entry.number], ranked
            )
            created.append(f"groups of window {entry.number}")
        for entry in new:
            if entry.red_flag:
                await honours.set_red_flag(events, clock, who, place, ids[entry.number], True)
    return ids


async def _staff(
    events: EventWriter,
    clock: Callable[[], datetime],
    who: audit.Actor,
    hall_id: int,
    f: HallFile,
    password: str,
    created: list[str],
) -> dict[str, int]:
    pool = events.pool
    ids: dict[str, int] = {}
    for entry in f.staff:
        found = await pool.fetchval("SELECT id FROM staff WHERE staff_no = $1", entry.staff_no)
        if found is None:
            member = await staff_service.create_staff(
                pool,
                who,
                staff_service.StaffNew(
                    staff_no=entry.staff_no, name=entry.name, password=password, hall_id=hall_id
                ),
            )
            role: Role = entry.role
            await staff_service.create_grant(
                pool,
                who,
                staff_service.GrantNew(
                    staff_id=member.id, role=role, scope_kind="hall", scope_id=hall_id
                ),
            )
            if entry.star:
                place = await hall_place(pool, hall_id)
                await honours.set_star_staff(events, clock, who, place, member.id, True)
            found = member.id
            created.append(f"staff {entry.staff_no}")
        ids[entry.staff_no] = found
    return ids


async def _devices(
    pool: asyncpg.Pool, who: audit.Actor, hall_id: int, f: HallFile, created: list[str]
) -> tuple[list[auth.DeviceCreated], dict[str, int]]:
    rows = await pool.fetch(
        """SELECT kind, name, min(id) AS id FROM device
           WHERE hall_id = $1 AND revoked_at IS NULL GROUP BY kind, name""",
        hall_id,
    )
    ids = {f"{r['kind']}:{r['name']}": r["id"] for r in rows}
    registered = []
    for entry in f.devices:
        key = f"{entry.kind}:{entry.name}"
        if key in ids:
            continue
        new = await auth.register_device(pool, who, hall_id, entry.kind, entry.name)
        registered.append(new)
        ids[key] = new.device.id
        created.append(f"device {entry.kind} {entry.name}")
    return registered, {f"{d.kind}:{d.name}": ids[f"{d.kind}:{d.name}"] for d in f.devices}


async def _bind_devices(
    events: EventWriter,
    who: audit.Actor,
    hall_id: int,
    f: HallFile,
    windows: dict[int, int],
    ids: dict[str, int],
    created: list[str],
) -> None:
    """Bind each device of the file that has a binding there and none in the hall yet (a
    manager may have moved it since: that stays)."""
    wanted = [d for d in f.devices if d.host is not None or d.window is not None]
    if not wanted:
        return
    hosts = {d.name: ids[f"{d.kind}:{d.name}"] for d in f.devices if d.kind in HOST_KINDS}
    unbound = {
        r["id"]
        for r in await events.pool.fetch(
            """SELECT id FROM device WHERE id = ANY($1::bigint[])
               AND host_id IS NULL AND window_id IS NULL""",
            [ids[f"{d.kind}:{d.name}"] for d in wanted],
        )
    }
    place = await hall_place(events.pool, hall_id)
    for entry in wanted:
        device_id = ids[f"{entry.kind}:{entry.name}"]
        if device_id not in unbound:
            continue
        change = device_admin.DeviceChange(
            host_id=None if entry.host is None else hosts[entry.host],
            window_id=None if entry.window is None else windows[entry.window],
        )
        await device_admin.update(events, who, place, device_id, change)
        created.append(f"binding of device {entry.kind} {entry.name}")
