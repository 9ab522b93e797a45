"""Queue configuration of a hall (Q1, Q2, Q6): service groups, the groups each window serves,
the hall's queue settings (issuing hours, limits, time zone) and the honour marks.

Every change is audited and announced on ``hall:<hall_id>`` as ``queue_configured`` with the
hall's new :class:`~hub.services.queue_views.QueueState`, so displays redraw without a reload.
:func:`queue_config` is the manager console's read model of all of it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import asyncpg
import msgspec
from msgspec import UNSET, UnsetType

from hub.domain.access import Place
from hub.domain.errors import InvalidInput, NotFound
from hub.domain.queue import zone
from hub.domain.queue_config import check_hours, check_prefix_change
from hub.services import audit
from hub.services.events import EventWriter, Tx
from hub.services.queue_views import queue_state
from hub.services.records import record, translated
from realtime.topics import topic

Prefix = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{1,2}$")]
GroupName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class GroupNew(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A service group: its ticket prefix, name, and limits (Q1, Q4)."""

    prefix: Prefix
    name: GroupName
    active: bool = True
    daily_quota: Annotated[int, msgspec.Meta(ge=1, le=9999)] | None = None
    id_daily_limit: Annotated[int, msgspec.Meta(ge=1, le=20)] = 1
    service_seconds: Annotated[int, msgspec.Meta(ge=30, le=7200)] = 300


class GroupRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    hall_id: int
    prefix: str
    name: str
    active: bool
    daily_quota: int | None
    id_daily_limit: int
    service_seconds: int


class GroupPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Changes to a service group; absent fields stay. ``daily_quota: null`` removes the cap;
    the prefix changes only while the group has issued no ticket (Q1)."""

    prefix: Prefix | UnsetType = UNSET
    name: GroupName | UnsetType = UNSET
    active: bool | UnsetType = UNSET
    daily_quota: Annotated[int, msgspec.Meta(ge=1, le=9999)] | UnsetType | None = UNSET
    id_daily_limit: Annotated[int, msgspec.Meta(ge=1, le=20)] | UnsetType = UNSET
    service_seconds: Annotated[int, msgspec.Meta(ge=30, le=7200)] | UnsetType = UNSET


class WindowGroup(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One group a window serves, with its rank (1 = the window's main group)."""

    group_id: Annotated[int, msgspec.Meta(ge=1)]
    rank: Annotated[int, msgspec.Meta(ge=1, le=9)] = 1


_GROUP_COLUMNS = "id, hall_id, prefix, name, active, daily_quota, id_daily_limit, service_seconds"


async def list_groups(db: asyncpg.Pool | asyncpg.Connection, hall_id: int) -> list[GroupRecord]:
    rows = await db.fetch(
        f"SELECT {_GROUP_COLUMNS} FROM service_group WHERE hall_id = $1 ORDER BY prefix", hall_id
    )
    return [record(GroupRecord, r) for r in rows]


async def create_group(
    events: EventWriter,
    clock: Callable[[], datetime],
    actor: audit.Actor,
    place: Place,
    new: GroupNew,
) -> GroupRecord:
    """Add a service group to the hall of ``place``.

    Raises:
        Conflict: the prefix is taken in this hall (field ``body.prefix``).
    """
    assert place.hall_id is not None
    async with events.transaction() as tx:
        with translated({"service_group_hall_id_prefix_key": "body.prefix"}):
            row = await tx.conn.fetchrow(
                f"""INSERT INTO service_group (hall_id, prefix, name, active, daily_quota,
                                               id_daily_limit, service_seconds)
                    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_GROUP_COLUMNS}""",
                place.hall_id,
                new.prefix,
                new.name,
                new.active,
                new.daily_quota,
                new.id_daily_limit,
                new.service_seconds,
            )
        group = record(GroupRecord, row)
        await audit.record(tx.conn, actor, "group.create", "service_group", group.id,
                           place=place, after=group)  # fmt: skip
        await announce_config(tx, place.hall_id, clock())
    return group


def _changes(patch: msgspec.Struct) -> dict[str, object]:
    """The fields a PATCH body sets (UNSET ones are left out)."""
    return {
        name: value
        for name in patch.__struct_fields__
        if (value := getattr(patch, name)) is not UNSET
    }


async def update_group(
    events: EventWriter,
    clock: Callable[[], datetime],
    actor: audit.Actor,
    place: Place,
    group_id: int,
    patch: GroupPatch,
) -> GroupRecord:
    """Change a service group of the hall of ``place``.

    Raises:
        NotFound: the group is not the hall's (``path.group_id``).
        PrefixInUse: a new prefix for a group that issued tickets (``body.prefix``).
        Conflict: the new prefix is another group's (``body.prefix``).
    """
    assert place.hall_id is not None
    async with events.transaction() as tx:
        # The row lock also holds back the first ticket of the group (its counter's foreign
        # key) until the new prefix is committed.
        row = await tx.conn.fetchrow(
            f"SELECT {_GROUP_COLUMNS} FROM service_group WHERE id = $1 AND hall_id = $2 FOR UPDATE",
            group_id,
            place.hall_id,
        )
        if row is None:
            raise NotFound(f"no service group {group_id} in this hall", field="path.group_id")
        before = record(GroupRecord, row)
        changes = _changes(patch)
        if "prefix" in changes:
            # A counter row exists from the group's first ticket on, whatever became of
            # the ticket later (a transfer moves it to another group, its number stays).
            issued = await tx.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM ticket_counter WHERE group_id = $1)", group_id
            )
            check_prefix_change(before.prefix, str(changes["prefix"]), issued)
        after = msgspec.structs.replace(before, **changes)
        if after == before:
            return before
        with translated({"service_group_hall_id_prefix_key": "body.prefix"}):
            await tx.conn.execute(
                """UPDATE service_group SET prefix = $2, name = $3, active = $4, daily_quota = $5,
                          id_daily_limit = $6, service_seconds = $7
                   WHERE id = $1""",
                group_id,
                after.prefix,
                after.name,
                after.active,
                after.daily_quota,
                after.id_daily_limit,
                after.service_seconds,
            )
        await audit.record(tx.conn, actor, "group.update", "service_group", group_id,
                           place=place, before=before, after=after)  # fmt: skip
        await announce_config(tx, place.hall_id, clock())
    return after


async def set_window_groups(
    events: EventWriter,
    clock: Callable[[], datetime],
    actor: audit.Actor,
    place: Place,
    window_id: int,
    groups: list[WindowGroup],
) -> list[WindowGroup]:
    """Replace the groups ``window_id`` serves.

    Raises:
        NotFound: the window or a group is not in the hall (``path.window_id``,
            ``body[i].group_id``).
        InvalidInput: a group listed twice.
    """
    assert place.hall_id is not None
    ids = [g.group_id for g in groups]
    if len(set(ids)) != len(ids):
        raise InvalidInput("a group is listed twice", field="body")
    async with events.transaction() as tx:
        hall = await tx.conn.fetchval('SELECT hall_id FROM "window" WHERE id = $1', window_id)
        if hall != place.hall_id:
            raise NotFound(f"window {window_id} is not in this hall", field="path.window_id")
        known = {
            r["id"]
            for r in await tx.conn.fetch(
                "SELECT id FROM service_group WHERE hall_id = $1 AND id = ANY($2::bigint[])",
                place.hall_id,
                ids,
            )
        }
        for i, group_id in enumerate(ids):
            if group_id not in known:
                raise NotFound(f"no service group {group_id} here", field=f"body[{i}].group_id")
        before = await tx.conn.fetch(
            "SELECT group_id, rank FROM window_group WHERE window_id = $1 ORDER BY rank", window_id
        )
        await tx.conn.execute("DELETE FROM window_group WHERE window_id = $1", window_id)
        await tx.conn.executemany(
            "INSERT INTO window_group (window_id, group_id, rank) VALUES ($1, $2, $3)",
            [(window_id, g.group_id, g.rank) for g in groups],
        )
        await audit.record(
            tx.conn,
            actor,
            "window.groups",
            "window",
            window_id,
            place=place,
            before=[dict(r) for r in before],
            after=groups,
        )
        await announce_config(tx, place.hall_id, clock())
    return groups


async def announce_config(tx: Tx, hall_id: int, now: datetime) -> None:
    """``queue_configured`` with the hall's whole queue state, read under the topic lock."""
    slot = await tx.claim(topic("hall", hall_id))
    await tx.emit_claimed(slot, "queue_configured", await queue_state(tx.conn, hall_id, now))


# --- hall queue settings -----------------------------------------------------------------


class QueueSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A hall's queue settings: issuing hours (hall-local minutes of the day, Q1), the
    per-document ticket limit per day (Q4), re-queues of a skipped ticket (Q2), time zone."""

    hall_id: int
    timezone: str
    opens_minute: int
    closes_minute: int
    id_daily_limit: int
    requeue_limit: int


class QueueSettingsPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Changes to a hall's queue settings; absent fields stay. The hours are checked
    together: the hall opens before it closes."""

    opens_minute: Annotated[int, msgspec.Meta(ge=0, le=1439)] | UnsetType = UNSET
    closes_minute: Annotated[int, msgspec.Meta(ge=1, le=1440)] | UnsetType = UNSET
    id_daily_limit: Annotated[int, msgspec.Meta(ge=1, le=50)] | UnsetType = UNSET
    requeue_limit: Annotated[int, msgspec.Meta(ge=0, le=9)] | UnsetType = UNSET
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | UnsetType = UNSET


_SETTINGS_COLUMNS = (
    "id AS hall_id, timezone, opens_minute, closes_minute, id_daily_limit, requeue_limit"
)


async def queue_settings(db: asyncpg.Pool | asyncpg.Connection, hall_id: int) -> QueueSettings:
    """Raises NotFound (``path.hall_id``)."""
    row = await db.fetchrow(f"SELECT {_SETTINGS_COLUMNS} FROM hall WHERE id = $1", hall_id)
    if row is None:
        raise NotFound(f"hall {hall_id} does not exist", field="path.hall_id")
    return record(QueueSettings, row)


async def update_settings(
    events: EventWriter,
    clock: Callable[[], datetime],
    actor: audit.Actor,
    place: Place,
    patch: QueueSettingsPatch,
) -> QueueSettings:
    """Change the queue settings of the hall of ``place``. A new time zone moves the hall's
    service day (and so its daily numbering) to the new zone's midnight.

    Raises:
        InvalidInput: closing not after opening (the field the patch sets, ``closes_minute``
            first), an unknown time zone (``body.timezone``).
    """
    assert place.hall_id is not None
    changes = _changes(patch)
    if "timezone" in changes:
        zone(str(changes["timezone"]))
    async with events.transaction() as tx:
        # NO KEY UPDATE: ticket inserts hold KEY SHARE locks on the hall row; they go on.
        row = await tx.conn.fetchrow(
            f"SELECT {_SETTINGS_COLUMNS} FROM hall WHERE id = $1 FOR NO KEY UPDATE", place.hall_id
        )
        before = record(QueueSettings, row)
        after = msgspec.structs.replace(before, **changes)
        field = "body.opens_minute" if "closes_minute" not in changes else "body.closes_minute"
        check_hours(after.opens_minute, after.closes_minute, field=field)
        if after == before:
            return before
        await tx.conn.execute(
            """UPDATE hall SET timezone = $2, opens_minute = $3, closes_minute = $4,
                      id_daily_limit = $5, requeue_limit = $6
               WHERE id = $1""",
            place.hall_id,
            after.timezone,
            after.opens_minute,
            after.closes_minute,
            after.id_daily_limit,
            after.requeue_limit,
        )
        await audit.record(tx.conn, actor, "hall.queue_settings", "hall", place.hall_id,
                           place=place, before=before, after=after)  # fmt: skip
        await announce_config(tx, place.hall_id, clock())
    return after


# --- the manager console's read model ----------------------------------------------------


class HallStaff(msgspec.Struct, frozen=True, kw_only=True):
    """A staff member of a hall as its manager sees them: honour, roles held on the hall,
    and the window they work now (if any)."""

    staff_id: int
    staff_no: str
    name: str
    hall_id: int | None
    active: bool
    star_staff: bool
    roles: list[str]
    window_id: int | None


async def hall_staff(
    db: asyncpg.Pool | asyncpg.Connection, hall_id: int | None, staff_id: int | None = None
) -> list[HallStaff]:
    """Staff who belong to the hall or hold a role on it, by staff number; with
    ``staff_id``, that staff member only (``roles``: those on ``hall_id``)."""
    where = (
        "s.id = $2"
        if staff_id is not None
        else """s.hall_id = $1 OR EXISTS (SELECT 1 FROM role_grant g WHERE g.staff_id = s.id
                                          AND g.scope_kind = 'hall' AND g.scope_id = $1)"""
    )
    rows = await db.fetch(
        f"""SELECT s.id AS staff_id, s.staff_no, s.name, s.hall_id, s.active, s.star_staff,
                   ARRAY(SELECT DISTINCT g.role FROM role_grant g
                         WHERE g.staff_id = s.id AND g.scope_kind = 'hall' AND g.scope_id = $1
                         ORDER BY 1) AS roles,
                   (SELECT ws.window_id FROM window_state ws WHERE ws.staff_id = s.id)
                       AS window_id
            FROM staff s WHERE {where} ORDER BY s.staff_no""",
        hall_id,
        *([] if staff_id is None else [staff_id]),
    )
    return [record(HallStaff, r) for r in rows]


class WindowConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A window with its department, honour and the groups it serves by rank."""

    window_id: int
    number: int
    name: str
    department_id: int | None
    department: str | None
    red_flag: bool
    groups: list[WindowGroup]


class QueueConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the hall manager configures for the queue, in one read."""

    hall_id: int
    code: str
    name: str
    settings: QueueSettings
    groups: list[GroupRecord]
    windows: list[WindowConfig]
    staff: list[HallStaff]


async def queue_config(db: asyncpg.Pool, hall_id: int) -> QueueConfig:
    """The hall's queue configuration, read in one transaction.

    Raises:
        NotFound: no such hall (``path.hall_id``).
    """
    async with db.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        hall = await conn.fetchrow("SELECT code, name FROM hall WHERE id = $1", hall_id)
        if hall is None:
            raise NotFound(f"hall {hall_id} does not exist", field="path.hall_id")
        ranks: dict[int, list[WindowGroup]] = {}
        for r in await conn.fetch(
            """SELECT wg.window_id, wg.group_id, wg.rank FROM window_group wg
               JOIN "window" w ON w.id = wg.window_id WHERE w.hall_id = $1
               ORDER BY wg.rank, wg.group_id""",
            hall_id,
        ):
            ranks.setdefault(r["window_id"], []).append(
                WindowGroup(group_id=r["group_id"], rank=r["rank"])
            )
        windows = [
            WindowConfig(
                window_id=r["id"],
                number=r["number"],
                name=r["name"],
                department_id=r["department_id"],
                department=r["department"],
                red_flag=r["red_flag"],
                groups=ranks.get(r["id"], []),
            )
            for r in await conn.fetch(
                """SELECT w.id, w.number, w.name, w.department_id, d.name AS department,
                          w.red_flag
                   FROM "window" w LEFT JOIN department d ON d.id = w.department_id
                   WHERE w.hall_id = $1 ORDER BY w.number""",
                hall_id,
            )
        ]
        return QueueConfig(
            hall_id=hall_id,
            code=hall["code"],
            name=hall["name"],
            settings=await queue_settings(conn, hall_id),
            groups=await list_groups(conn, hall_id),
            windows=windows,
            staff=await hall_staff(conn, hall_id),
        )
