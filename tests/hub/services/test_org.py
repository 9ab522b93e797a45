"""Organisation service on real PostgreSQL: paths, audit rows, conflicts, scoped lists."""

from __future__ import annotations

import asyncpg
import pytest

from hub.domain.access import visibility
from hub.domain.errors import Conflict, InvalidInput, NotFound
from hub.services import audit, org
from hub.services import staff as staff_service
from tests.hub.conftest import SYSTEM, Org, principal_of


async def test_regions_get_materialised_paths_of_their_ancestors(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """A county's path lists the province, the city and itself."""
    o = organisation
    paths = {r.code: r.path for r in await org.list_regions(db, None)}
    assert paths["A1"] == f"/{o.province}/{o.city_a}/{o.county_a1}/"
    assert paths["B"] == f"/{o.province}/{o.city_b}/"


async def test_a_region_must_lie_below_its_parents_level(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """A city under a county is refused, naming the level field."""
    new = org.RegionNew(parent_id=organisation.county_a1, level="city", code="X", name="X")
    with pytest.raises(InvalidInput) as caught:
        await org.create_region(db, SYSTEM, new)
    assert caught.value.field == "body.level"


async def test_a_taken_code_is_a_conflict_on_the_code_field(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """Hall codes are unique; the second one names body.code and writes no audit row."""
    before = await db.fetchval("SELECT count(*) FROM audit_log")
    with pytest.raises(Conflict) as caught:
        await org.create_hall(
            db, SYSTEM, org.HallNew(region_id=organisation.city_a, code="a1", name="again")
        )
    assert caught.value.field == "body.code"
    assert await db.fetchval("SELECT count(*) FROM audit_log") == before


async def test_a_window_in_a_missing_hall_is_not_found(db: asyncpg.Pool) -> None:
    """Creating a window in a hall that does not exist raises NotFound."""
    with pytest.raises(NotFound):
        await org.create_window(db, SYSTEM, 999, org.WindowNew(number=1))


async def test_an_unknown_time_zone_is_refused(db: asyncpg.Pool, organisation: Org) -> None:
    """The hall's time zone must be an IANA name."""
    new = org.HallNew(region_id=organisation.city_a, code="tz", name="tz", timezone="Mars/Base")
    with pytest.raises(InvalidInput) as caught:
        await org.create_hall(db, SYSTEM, new)
    assert caught.value.field == "body.timezone"


async def test_every_change_writes_an_audit_row_with_before_and_after(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """Creating a window records who, the action, the target and the new record."""
    window = await org.create_window(
        db, SYSTEM, organisation.hall_a1, org.WindowNew(number=2, name="二号窗口")
    )
    [entry] = await audit.query(
        db, None, audit.AuditQuery(action="window.create", target_id=str(window.id))
    )
    assert entry.actor_label == "test"
    assert entry.role == "system"
    assert entry.target_kind == "window"
    assert entry.before is None
    assert entry.after == {
        "id": window.id,
        "hall_id": organisation.hall_a1,
        "number": 2,
        "name": "二号窗口",
        "department_id": None,
    }
    assert entry.hall_id == organisation.hall_a1


async def test_the_password_is_stored_as_an_argon2_hash(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """No staff row holds a plain password."""
    stored = await db.fetchval(
        "SELECT password_hash FROM staff WHERE id = $1", organisation.staff["clerk_a1"]
    )
    assert stored.startswith("$argon2id$")


async def test_a_city_supervisor_lists_the_halls_of_its_city_only(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """City A's supervisor sees halls a1 (county) and a (city), not b."""
    o = organisation
    principal = await principal_of(db, o.staff["supervisor_a"])
    halls = await org.list_halls(db, visibility(principal, "org.read"))
    assert [h.id for h in halls] == [o.hall_a1, o.hall_a]


async def test_a_department_supervisor_lists_halls_where_it_has_a_window(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """The tax supervisor sees hall a1 (tax window) only."""
    o = organisation
    principal = await principal_of(db, o.staff["supervisor_tax"])
    assert [h.id for h in await org.list_halls(db, visibility(principal, "org.read"))] == [
        o.hall_a1
    ]
    assert [d.id for d in await org.list_departments(db, visibility(principal, "org.read"))] == [
        o.tax
    ]


async def test_a_hall_manager_lists_the_staff_of_its_hall(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """Hall a1's manager sees itself and its clerk, and the tax supervisor (tax has a window
    there); nobody of hall b."""
    o = organisation
    principal = await principal_of(db, o.staff["manager_a1"])
    staff = await staff_service.list_staff(db, visibility(principal, "org.read"))
    assert {s.staff_no for s in staff} == {"manager_a1", "clerk_a1", "supervisor_tax"}


async def test_a_city_admin_lists_regions_of_its_subtree(
    db: asyncpg.Pool, organisation: Org
) -> None:
    """City A's admin sees A and A1, neither the province nor city B."""
    principal = await principal_of(db, organisation.staff["admin_a"])
    regions = await org.list_regions(db, visibility(principal, "org.read"))
    assert [r.code for r in regions] == ["A", "A1"]
