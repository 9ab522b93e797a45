"""A small organisation on the real test database, built through the services.

Province P ─┬─ city A ─── county A1      hall "a1" (window 1: tax), hall "a" in city A itself
            └─ city B                    hall "b" (window 1: police)
Staff (password ``PASSWORD``): root admin (P), admins of A and of B, supervisor of A, manager
and clerk of hall a1, manager of hall b, supervisor of the tax department.
"""

from __future__ import annotations

from dataclasses import dataclass

import argon2
import asyncpg
import pytest

from hub.domain.access import Principal, Role, ScopeKind, staff_principal
from hub.services import audit, auth, org
from hub.services import staff as staff_service

# Sign-in is exercised hundreds of times; the production cost would only slow the suite.
auth.set_password_parameters(argon2.profiles.CHEAPEST)

PASSWORD = "correct horse battery"
SYSTEM = audit.Actor.system("test")


@dataclass(frozen=True)
class Org:
    province: int
    city_a: int
    county_a1: int
    city_b: int
    tax: int
    police: int
    hall_a1: int
    hall_a: int
    hall_b: int
    window_a1: int
    window_b: int
    staff: dict[str, int]


async def _region(pool: asyncpg.Pool, parent: int | None, level: str, code: str) -> int:
    new = org.RegionNew(parent_id=parent, level=level, code=code, name=code)  # type: ignore[arg-type]
    return (await org.create_region(pool, SYSTEM, new)).id


async def _staff(
    pool: asyncpg.Pool,
    staff_no: str,
    role: Role,
    scope_kind: ScopeKind,
    scope_id: int,
    *,
    hall_id: int | None = None,
    department_id: int | None = None,
    region_id: int | None = None,
) -> int:
    new = staff_service.StaffNew(
        staff_no=staff_no,
        name=staff_no,
        password=PASSWORD,
        hall_id=hall_id,
        department_id=department_id,
        region_id=region_id,
    )
    staff = await staff_service.create_staff(pool, SYSTEM, new)
    grant = staff_service.GrantNew(
        staff_id=staff.id, role=role, scope_kind=scope_kind, scope_id=scope_id
    )
    await staff_service.create_grant(pool, SYSTEM, grant)
    return staff.id


async def build_org(pool: asyncpg.Pool) -> Org:
    """Create the organisation of the module docstring."""
    province = await _region(pool, None, "province", "P")
    city_a = await _region(pool, province, "city", "A")
    county_a1 = await _region(pool, city_a, "county", "A1")
    city_b = await _region(pool, province, "city", "B")
    tax = (
        await org.create_department(
            pool, SYSTEM, org.DepartmentNew(region_id=city_a, code="tax", name="Tax")
        )
    ).id
    police = (
        await org.create_department(
            pool, SYSTEM, org.DepartmentNew(region_id=city_b, code="police", name="Police")
        )
    ).id
    halls = {}
    for code, region in (("a1", county_a1), ("a", city_a), ("b", city_b)):
        new = org.HallNew(region_id=region, code=code, name=f"Hall {code}")
        halls[code] = (await org.create_hall(pool, SYSTEM, new)).id
    window_a1 = await org.create_window(
        pool, SYSTEM, halls["a1"], org.WindowNew(number=1, department_id=tax)
    )
    window_b = await org.create_window(
        pool, SYSTEM, halls["b"], org.WindowNew(number=1, department_id=police)
    )
    staff = {
        "root_admin": await _staff(
            pool, "root_admin", "admin", "region", province, region_id=province
        ),
        "admin_a": await _staff(pool, "admin_a", "admin", "region", city_a, region_id=city_a),
        "admin_b": await _staff(pool, "admin_b", "admin", "region", city_b, region_id=city_b),
        "supervisor_a": await _staff(
            pool, "supervisor_a", "supervisor", "region", city_a, region_id=city_a
        ),
        "manager_a1": await _staff(
            pool, "manager_a1", "hall_manager", "hall", halls["a1"], hall_id=halls["a1"]
        ),
        "clerk_a1": await _staff(
            pool, "clerk_a1", "window_staff", "hall", halls["a1"], hall_id=halls["a1"]
        ),
        "manager_b": await _staff(
            pool, "manager_b", "hall_manager", "hall", halls["b"], hall_id=halls["b"]
        ),
        "supervisor_tax": await _staff(
            pool, "supervisor_tax", "supervisor", "department", tax, department_id=tax
        ),
    }
    return Org(
        province=province,
        city_a=city_a,
        county_a1=county_a1,
        city_b=city_b,
        tax=tax,
        police=police,
        hall_a1=halls["a1"],
        hall_a=halls["a"],
        hall_b=halls["b"],
        window_a1=window_a1.id,
        window_b=window_b.id,
        staff=staff,
    )


@pytest.fixture
async def organisation(db: asyncpg.Pool) -> Org:
    """The organisation of the module docstring on an emptied database."""
    return await build_org(db)


async def principal_of(pool: asyncpg.Pool, staff_id: int) -> Principal:
    """The principal a session of this staff member would carry."""
    return staff_principal(staff_id, f"staff {staff_id}", await auth.load_grants(pool, staff_id))
