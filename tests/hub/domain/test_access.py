"""Scope rules of hub.domain.access: who covers which place."""

from __future__ import annotations

from hub.domain.access import (
    PUBLIC,
    Grant,
    Place,
    Visibility,
    covering_grant,
    device_principal,
    grant_covers,
    may,
    may_grant,
    path_ids,
    region_path,
    staff_principal,
    visibility,
)

# Province 1 → city 4 → county 9; city 5 is another city of the province.
COUNTY_9_HALL = Place(region_path="/1/4/9/", hall_id=30, department_ids=(7,))
CITY_4_HALL = Place(region_path="/1/4/", hall_id=31)
CITY_5_HALL = Place(region_path="/1/5/", hall_id=32, department_ids=(8,))
CITY_4 = Place(region_path="/1/4/")


def test_region_path_appends_the_region_id_to_its_parents_path() -> None:
    """A root gets /id/, a child its parent's path plus id/."""
    assert region_path(None, 1) == "/1/"
    assert region_path("/1/4/", 9) == "/1/4/9/"
    assert path_ids("/1/4/9/") == (1, 4, 9)


def test_a_region_grant_covers_its_own_and_every_lower_region() -> None:
    """A city grant reaches the city's halls and its counties' halls, not another city."""
    city = Grant("supervisor", "region", 4)
    assert grant_covers(city, COUNTY_9_HALL)
    assert grant_covers(city, CITY_4_HALL)
    assert grant_covers(city, CITY_4)
    assert not grant_covers(city, CITY_5_HALL)


def test_a_region_grant_matches_whole_path_segments_only() -> None:
    """Region 4 does not cover region 14 or 41 although the digits appear in their paths."""
    city = Grant("admin", "region", 4)
    assert not grant_covers(city, Place(region_path="/1/14/"))
    assert not grant_covers(city, Place(region_path="/1/41/"))


def test_a_lower_region_grant_does_not_cover_the_region_above() -> None:
    """A county admin does not reach the city's own hall."""
    assert not grant_covers(Grant("admin", "region", 9), CITY_4_HALL)


def test_a_hall_grant_covers_that_hall_only() -> None:
    """A hall grant covers its hall and neither other halls nor the region."""
    hall = Grant("hall_manager", "hall", 30)
    assert grant_covers(hall, COUNTY_9_HALL)
    assert not grant_covers(hall, CITY_4_HALL)
    assert not grant_covers(hall, Place(region_path="/1/4/9/"))


def test_a_department_grant_covers_halls_where_the_department_has_a_window() -> None:
    """Department 7 has a window in hall 30 only."""
    department = Grant("supervisor", "department", 7)
    assert grant_covers(department, COUNTY_9_HALL)
    assert not grant_covers(department, CITY_4_HALL)
    assert not grant_covers(department, CITY_5_HALL)


def test_an_action_needs_a_permitted_role_and_a_covering_scope() -> None:
    """A window clerk cannot manage windows; its hall's manager can; another hall's cannot."""
    clerk = staff_principal(1, "clerk", (Grant("window_staff", "hall", 30),))
    manager = staff_principal(2, "manager", (Grant("hall_manager", "hall", 30),))
    other = staff_principal(3, "other", (Grant("hall_manager", "hall", 32),))
    assert not may(clerk, "window.manage", COUNTY_9_HALL)
    assert may(clerk, "org.read", COUNTY_9_HALL)
    assert may(manager, "window.manage", COUNTY_9_HALL)
    assert not may(other, "window.manage", COUNTY_9_HALL)


def test_the_covering_grant_is_the_first_that_permits_the_action() -> None:
    """Of a principal's grants, the one that permits the action is reported for the audit."""
    both = staff_principal(1, "x", (Grant("window_staff", "hall", 30), Grant("admin", "region", 4)))
    assert covering_grant(both, "hall.manage", COUNTY_9_HALL) == Grant("admin", "region", 4)


def test_devices_and_the_public_may_do_no_staff_action() -> None:
    """Principals without grants are refused every action, presence included."""
    device = device_principal(12, 30, "ticket_machine", "tm-1")
    for principal in (PUBLIC, device):
        assert not may(principal, "presence.watch", COUNTY_9_HALL)
        assert not may(principal, "org.read", COUNTY_9_HALL)
    assert device.id == "device:12"
    assert device.hall_id == 30


def test_an_admin_may_grant_any_role_within_its_coverage() -> None:
    """A city admin may make a county admin, not an admin of another city."""
    admin = staff_principal(1, "a", (Grant("admin", "region", 4),))
    assert may_grant(admin, Grant("admin", "region", 9), Place(region_path="/1/4/9/"))
    assert may_grant(admin, Grant("admin", "region", 5), Place(region_path="/1/5/")) is None


def test_a_hall_manager_may_grant_window_staff_on_its_hall_only() -> None:
    """A hall manager cannot hand out manager or supervisor roles, nor roles elsewhere."""
    manager = staff_principal(2, "m", (Grant("hall_manager", "hall", 30),))
    assert may_grant(manager, Grant("window_staff", "hall", 30), COUNTY_9_HALL)
    assert may_grant(manager, Grant("hall_manager", "hall", 30), COUNTY_9_HALL) is None
    assert may_grant(manager, Grant("window_staff", "hall", 32), CITY_5_HALL) is None


def test_visibility_collects_the_scopes_of_grants_that_permit_the_action() -> None:
    """Only grants whose role permits the action contribute to list filters."""
    principal = staff_principal(
        1,
        "x",
        (
            Grant("window_staff", "hall", 30),
            Grant("supervisor", "region", 4),
            Grant("supervisor", "department", 7),
        ),
    )
    assert visibility(principal, "audit.read") == Visibility(region_ids=(4,), department_ids=(7,))
    assert visibility(principal, "org.read") == Visibility(
        region_ids=(4,), hall_ids=(30,), department_ids=(7,)
    )
    assert visibility(PUBLIC, "org.read").empty
