"""Identity and access rules (H5): roles, scopes, principals, and who may act where.

Pure: no I/O, no asyncio. Services load the facts (a hall's region path, the departments that
have a window in it) into a :class:`Place`; the functions here decide.

Principals
    Every caller is a :class:`Principal`: a ``device`` (token issued at registration; bound to
    one hall and one device kind), a ``staff`` member (session token from sign-in; carries role
    grants), or ``public`` (no token: citizens' phones, public pages).

Roles and scopes
    A staff member holds any number of :class:`Grant` = (role, scope_kind, scope_id).
    Roles: ``admin``, ``hall_manager``, ``window_staff``, ``supervisor``.
    Scope kinds: ``region``, ``department``, ``hall``.

Coverage (which places a grant reaches)
    Regions form a tree with a materialised path of ids, e.g. ``/1/4/9/`` for county 9 in city
    4 in province 1. A :class:`Place` is where a target lives: its region path, its hall (if
    any) and the departments concerned (for a hall: those with a window in it).

    - region grant R covers a place whose region path contains the segment ``/R/``: R itself
      and everything below it. Since a path lists every ancestor, this equals "starts with R's
      own path" without needing R's path (a city supervisor sees every hall of the city, and
      nothing of another city).
    - hall grant H covers the place whose hall is H (and nothing above it: a hall manager does
      not manage the region).
    - department grant D covers a place whose departments include D: the department itself
      and every hall where D has a window.

Permissions
    :data:`PERMISSIONS` lists, per action, the roles that may perform it. A principal may act
    on a place when one of its grants has such a role and covers the place
    (:func:`covering_grant`). Granting roles has its own rule (:func:`may_grant`): an admin
    may grant any role within its coverage; a hall manager may grant ``window_staff`` on its
    own hall only. Devices and the public hold no grants, so they may do none of these actions.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

Role = Literal["admin", "hall_manager", "window_staff", "supervisor"]
ScopeKind = Literal["hall", "department", "region"]
PrincipalKind = Literal["device", "staff", "public"]
# Device kinds from GLOSSARY.md (D1-D5); a printer (D1) and a code reader (D5) belong to the
# kiosk or ticket machine whose page uses them (device.host_id, issue 5).
DeviceKind = Literal[
    "ticket_machine",
    "hall_display",
    "window_display",
    "evaluator",
    "kiosk",
    "info_terminal",
    "id_reader",
    "scanner",
    "printer",
    "code_reader",
]
Action = Literal[
    "org.read",
    "region.manage",
    "department.manage",
    "hall.manage",
    "window.manage",
    "staff.manage",
    "grant.read",
    "device.manage",
    "device.read",
    "audit.read",
    "presence.watch",
    "notice.post",
    "calendar.manage",
    "calendar.close",
    "queue.issue",
    "queue.operate",
    "queue.configure",
    "queue.kpi",
    "rating.read",
    "appointment.read",
    "appointment.manage",
]

ROLES: tuple[Role, ...] = get_args(Role)
SCOPE_KINDS: tuple[ScopeKind, ...] = get_args(ScopeKind)
DEVICE_KINDS: tuple[DeviceKind, ...] = get_args(DeviceKind)

_ALL: frozenset[Role] = frozenset(ROLES)
_MANAGERS: frozenset[Role] = frozenset({"admin", "hall_manager"})
_OVERSIGHT: frozenset[Role] = frozenset({"admin", "hall_manager", "supervisor"})

PERMISSIONS: dict[Action, frozenset[Role]] = {
    "org.read": _ALL,
    "region.manage": frozenset({"admin"}),
    "department.manage": frozenset({"admin"}),
    "hall.manage": frozenset({"admin"}),
    "window.manage": _MANAGERS,
    "staff.manage": _MANAGERS,
    "grant.read": _OVERSIGHT,
    "device.manage": _MANAGERS,
    "device.read": _OVERSIGHT,
    "audit.read": _OVERSIGHT,
    # H2: presence is for people who run or oversee a hall, not for devices or the public.
    "presence.watch": _OVERSIGHT,
    # Q5: hall notices are posted by the people who run the hall, as windows are managed.
    "notice.post": _MANAGERS,
    # O11: the national calendar (announced schedules) is kept by admins; hub/api/calendar.py
    # also requires the admin's region grant to cover a top-level region (a province).
    "calendar.manage": frozenset({"admin"}),
    # O11: a local closure of one hall, by the people who run the hall.
    "calendar.close": _MANAGERS,
    # Q1, Q2: window staff issue tickets at the counter and work their window; managers too.
    "queue.issue": frozenset({"admin", "hall_manager", "window_staff"}),
    "queue.operate": frozenset({"admin", "hall_manager", "window_staff"}),
    # Q1: service groups and which windows serve them are the hall's configuration.
    "queue.configure": _MANAGERS,
    # Q9: queue KPIs are for those who run or oversee the hall.
    "queue.kpi": _OVERSIGHT,
    # O9: a hall's ratings (好差评) are read by those who run or oversee it.
    "rating.read": _OVERSIGHT,
    # O2: appointments are listed, cancelled and checked in at the counter by the hall's staff.
    "appointment.read": frozenset({"admin", "hall_manager", "window_staff", "supervisor"}),
    "appointment.manage": frozenset({"admin", "hall_manager", "window_staff"}),
}


class Grant(msgspec.Struct, frozen=True):
    """One role held within one scope."""

    role: Role
    scope_kind: ScopeKind
    scope_id: int


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: a device, a signed-in staff member, or the public.

    ``id`` is ``"device:12"``, ``"staff:5"`` or ``"public"``; ``hall_id`` and ``device_kind``
    are set for devices, ``staff_id`` and ``grants`` for staff.
    """

    kind: PrincipalKind
    id: str
    label: str
    hall_id: int | None = None
    device_kind: str | None = None
    staff_id: int | None = None
    grants: tuple[Grant, ...] = ()


PUBLIC = Principal(kind="public", id="public", label="public")


def device_principal(device_id: int, hall_id: int, device_kind: str, name: str) -> Principal:
    """The principal of a registered device."""
    return Principal(
        kind="device",
        id=f"device:{device_id}",
        label=name,
        hall_id=hall_id,
        device_kind=device_kind,
    )


def staff_principal(staff_id: int, label: str, grants: tuple[Grant, ...]) -> Principal:
    """The principal of a signed-in staff member."""
    return Principal(
        kind="staff", id=f"staff:{staff_id}", label=label, staff_id=staff_id, grants=grants
    )


class Place(msgspec.Struct, frozen=True, kw_only=True):
    """Where a target lives, as far as scopes are concerned.

    ``region_path`` is the materialised path of its region (``/1/4/9/``), ``hall_id`` its
    hall if it belongs to one, ``department_ids`` the departments concerned.
    """

    region_path: str
    hall_id: int | None = None
    department_ids: tuple[int, ...] = ()


class Visibility(msgspec.Struct, frozen=True, kw_only=True):
    """The scopes through which a principal may see records, for list filters in SQL."""

    region_ids: tuple[int, ...] = ()
    hall_ids: tuple[int, ...] = ()
    department_ids: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.region_ids or self.hall_ids or self.department_ids)


def region_path(parent_path: str | None, region_id: int) -> str:
    """The materialised path of a region: its parent's path plus its own id."""
    return f"{parent_path or '/'}{region_id}/"


def path_ids(path: str) -> tuple[int, ...]:
    """The region ids of a materialised path, root first (``/1/4/`` → ``(1, 4)``)."""
    return tuple(int(part) for part in path.strip("/").split("/") if part)


def grant_covers(grant: Grant, place: Place) -> bool:
    """Whether ``grant``'s scope reaches ``place`` (rules in the module docstring)."""
    if grant.scope_kind == "region":
        return f"/{grant.scope_id}/" in place.region_path
    if grant.scope_kind == "hall":
        return place.hall_id == grant.scope_id
    return grant.scope_id in place.department_ids


def covering_grant(principal: Principal, action: Action, place: Place) -> Grant | None:
    """The first of ``principal``'s grants that permits ``action`` at ``place``, else None.

    The grant found is what an audit row records as the actor's role and scope.
    """
    roles = PERMISSIONS[action]
    for grant in principal.grants:
        if grant.role in roles and grant_covers(grant, place):
            return grant
    return None


def may(principal: Principal, action: Action, place: Place) -> bool:
    """Whether ``principal`` may perform ``action`` at ``place``."""
    return covering_grant(principal, action, place) is not None


def may_grant(principal: Principal, new: Grant, scope_place: Place) -> Grant | None:
    """The grant that lets ``principal`` hand out ``new``, whose scope lives at ``scope_place``.

    An admin covering the scope may grant any role there (including admin of a sub-region);
    a hall manager may grant ``window_staff`` on a hall it covers, nothing else.
    """
    for grant in principal.grants:
        if not grant_covers(grant, scope_place):
            continue
        if grant.role == "admin":
            return grant
        if grant.role == "hall_manager" and new.role == "window_staff" and new.scope_kind == "hall":
            return grant
    return None


def visibility(principal: Principal, action: Action) -> Visibility:
    """The scopes of the grants that permit ``action``, for filtering lists."""
    roles = PERMISSIONS[action]
    by_kind: dict[ScopeKind, set[int]] = {"region": set(), "hall": set(), "department": set()}
    for grant in principal.grants:
        if grant.role in roles:
            by_kind[grant.scope_kind].add(grant.scope_id)
    return Visibility(
        region_ids=tuple(sorted(by_kind["region"])),
        hall_ids=tuple(sorted(by_kind["hall"])),
        department_ids=tuple(sorted(by_kind["department"])),
    )
