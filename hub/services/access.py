"""Access decisions that need facts from the database, and the gateway's access service.

Place loaders
    ``region_place``, ``department_place``, ``hall_place``, ``staff_place``, ``scope_place``
    load a :class:`~hub.domain.access.Place` (region path, hall, departments) for a target;
    the rules in hub.domain.access decide on it. Each raises
    :class:`~hub.domain.errors.NotFound`, naming the field that addressed the missing target.

AccessService
    What the websocket gateway calls: ``authenticate`` a hello's token, ``authorize`` a
    subscription. Topic rules:

    ================  ===========================================================
    ``hall:<id>``     public queue state of a hall: anyone, the public included
    ``window:<id>``   public state of a window: anyone
    ``presence:<id>`` staff with admin, hall_manager or supervisor covering the hall
    ``staff:<id>``    that staff member only
    ``device:<id>``   that device only
    ``alerts:<id>``   device alerts of a hall: as ``presence:<id>``
    ================  ===========================================================
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeAlias, TypeVar

import asyncpg
import structlog

from hub.domain.access import PUBLIC, Place, Principal, ScopeKind, may
from hub.domain.errors import InvalidInput, NotFound
from realtime.errors import Forbidden, Unauthenticated, UnknownTopic
from realtime.topics import parse_topic

log = structlog.get_logger("hub.services.access")

# A connection (inside a transaction) or the pool.
Executor: TypeAlias = "asyncpg.Connection | asyncpg.Pool"
_K = TypeVar("_K")
_V = TypeVar("_V")


async def region_place(db: Executor, region_id: int, field: str = "region_id") -> Place:
    """The place of a region: its own path."""
    path = await db.fetchval("SELECT path FROM region WHERE id = $1", region_id)
    if path is None:
        raise NotFound(f"region {region_id} does not exist", field=field)
    return Place(region_path=path)


async def department_place(db: Executor, department_id: int, field: str = "department_id") -> Place:
    """The place of a department: its region's path and the department itself."""
    path = await db.fetchval(
        "SELECT r.path FROM department d JOIN region r ON r.id = d.region_id WHERE d.id = $1",
        department_id,
    )
    if path is None:
        raise NotFound(f"department {department_id} does not exist", field=field)
    return Place(region_path=path, department_ids=(department_id,))


async def hall_place(db: Executor, hall_id: int, field: str = "hall_id") -> Place:
    """The place of a hall: its region's path, the hall, the departments with a window there."""
    row = await db.fetchrow(
        """SELECT r.path,
                  ARRAY(SELECT DISTINCT w.department_id FROM "window" w
                        WHERE w.hall_id = h.id AND w.department_id IS NOT NULL
                        ORDER BY 1) AS departments
           FROM hall h JOIN region r ON r.id = h.region_id WHERE h.id = $1""",
        hall_id,
    )
    if row is None:
        raise NotFound(f"hall {hall_id} does not exist", field=field)
    return Place(region_path=row["path"], hall_id=hall_id, department_ids=tuple(row["departments"]))


async def window_hall(db: Executor, window_id: int, field: str = "window_id") -> int:
    """The hall a window belongs to."""
    hall_id: int | None = await db.fetchval('SELECT hall_id FROM "window" WHERE id = $1', window_id)
    if hall_id is None:
        raise NotFound(f"window {window_id} does not exist", field=field)
    return hall_id


async def staff_place(db: Executor, staff_id: int, field: str = "staff_id") -> Place:
    """The place of a staff member: their hall if they have one, else their department."""
    row = await db.fetchrow(
        "SELECT hall_id, department_id, region_id FROM staff WHERE id = $1", staff_id
    )
    if row is None:
        raise NotFound(f"staff {staff_id} does not exist", field=field)
    return await home_place(db, row["hall_id"], row["department_id"], row["region_id"])


async def home_place(
    db: Executor, hall_id: int | None, department_id: int | None, region_id: int | None
) -> Place:
    """The place of a (future) staff member: their hall, else department, else region.

    Raises:
        NotFound: none of the three is given, or one does not exist (field ``body.<name>``).
    """
    if hall_id is not None:
        place = await hall_place(db, hall_id, field="body.hall_id")
        if department_id is not None and department_id not in place.department_ids:
            await department_place(db, department_id, field="body.department_id")
            return Place(
                region_path=place.region_path,
                hall_id=hall_id,
                department_ids=(*place.department_ids, department_id),
            )
        return place
    if department_id is not None:
        return await department_place(db, department_id, field="body.department_id")
    if region_id is not None:
        return await region_place(db, region_id, field="body.region_id")
    raise InvalidInput("a staff member needs a hall, a department or a region", field="body")


async def scope_place(
    db: Executor, scope_kind: ScopeKind, scope_id: int, field: str = "scope_id"
) -> Place:
    """The place of a grant's scope."""
    if scope_kind == "region":
        return await region_place(db, scope_id, field=field)
    if scope_kind == "hall":
        return await hall_place(db, scope_id, field=field)
    return await department_place(db, scope_id, field=field)


class AccessService:
    """Authentication and topic authorization for the websocket gateway.

    Hall places are cached in memory (a bounded LRU of ``cache_size`` halls) because a
    reconnect storm authorizes the same few topics thousands of times; :meth:`forget_hall`
    drops an entry after a change of the hall's region or windows.

    Args:
        pool: the hub's asyncpg pool.
        cache_size: how many halls (and windows) to remember.
    """

    def __init__(self, pool: asyncpg.Pool, cache_size: int = 4096) -> None:
        self._pool = pool
        self._cache_size = cache_size
        self._halls: OrderedDict[int, Place] = OrderedDict()
        self._windows: OrderedDict[int, int] = OrderedDict()

    async def authenticate(self, token: str | None, kind: str) -> Principal:
        """The principal of a hello's token.

        Args:
            token: a device token, a staff session token, or None for a public peer.
            kind: the peer kind the hello declares; a device's must equal its registered kind.
                Staff and public peers may declare any kind (console, display page...).

        Raises:
            Unauthenticated: an unknown, revoked or expired token, or a device kind mismatch.
        """
        # Imported here: auth imports this module for its place loaders.
        from hub.services.auth import device_by_token, session_principal

        if token is None:
            return PUBLIC
        device = await device_by_token(self._pool, token)
        if device is not None:
            if device.device_kind != kind:
                raise Unauthenticated(f"token belongs to a {device.device_kind}, not a {kind[:40]}")
            return device
        staff = await session_principal(self._pool, token)
        if staff is not None:
            return staff
        raise Unauthenticated("unknown, revoked or expired token")

    async def authorize(self, principal: Principal, topic: str) -> None:
        """Allow ``principal`` to subscribe to ``topic``, or raise.

        Raises:
            UnknownTopic: a malformed name, an unknown kind, or a hall/window that does not
                exist.
            Forbidden: the topic exists but is outside the principal's role and scope.
        """
        name = parse_topic(topic)
        if not name.key.isdigit():
            raise UnknownTopic(f"{name.kind} topics are keyed by a number, not {name.key!r}")
        key = int(name.key)
        if name.kind == "hall":
            await self.hall(key)
        elif name.kind == "window":
            await self._window_hall(key)
        elif name.kind in ("presence", "alerts"):
            place = await self.hall(key)
            if not may(principal, "presence.watch", place):
                raise Forbidden(f"{name.kind} of hall {key} is for its managers and supervisors")
        elif name.kind == "staff":
            if principal.kind != "staff" or principal.staff_id != key:
                raise Forbidden(f"{topic} is for staff member {key} only")
        elif name.kind == "device":
            if principal.id != f"device:{key}":
                raise Forbidden(f"{topic} is for device {key} only")
        else:
            raise UnknownTopic(f"no topic kind {name.kind!r}")

    async def hall(self, hall_id: int) -> Place:
        """The place of a hall, from the cache or the database.

        Raises:
            UnknownTopic: the hall does not exist.
        """
        place = self._halls.get(hall_id)
        if place is not None:
            self._halls.move_to_end(hall_id)
            return place
        try:
            place = await hall_place(self._pool, hall_id)
        except NotFound as exc:
            raise UnknownTopic(exc.detail) from exc
        self._remember(self._halls, hall_id, place)
        return place

    async def _window_hall(self, window_id: int) -> int:
        hall_id = self._windows.get(window_id)
        if hall_id is not None:
            return hall_id
        try:
            hall_id = await window_hall(self._pool, window_id)
        except NotFound as exc:
            raise UnknownTopic(exc.detail) from exc
        self._remember(self._windows, window_id, hall_id)
        return hall_id

    def _remember(self, cache: OrderedDict[_K, _V], key: _K, value: _V) -> None:
        cache[key] = value
        if len(cache) > self._cache_size:
            cache.popitem(last=False)

    def forget_hall(self, hall_id: int) -> None:
        """Drop a cached hall place (after its region or its windows' departments changed)."""
        self._halls.pop(hall_id, None)
