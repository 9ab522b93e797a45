"""The window display's reducer (devices/agent/board.py): the same rules as
frontend/lib/queue-state.js, seen from one window."""

from __future__ import annotations

from devices.agent.board import PanelContent, WindowBoard


def window(window_id: int, number: int, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "window_id": window_id,
        "number": number,
        "name": f"{number}号窗口",
        "department": None,
        "status": "open",
        "staff_name": None,
        "staff_no": None,
        "star_staff": False,
        "red_flag": False,
        "current": None,
        "group_ids": [1, 2],
    }
    base.update(fields)
    return base


SNAPSHOT = {
    "hall_id": 1,
    "name": "大厅",
    "timezone": "Asia/Shanghai",
    "windows": [],
    "notices": [],
    "queue": {
        "service_day": "2026-11-26",
        "windows": [window(11, 1), window(12, 2, group_ids=[2], status="closed")],
        "groups": [
            {"group_id": 1, "prefix": "A", "name": "社保", "active": True, "waiting": 4,
             "open_windows": 1, "service_seconds": 300},
            {"group_id": 2, "prefix": "B", "name": "医保", "active": True, "waiting": 2,
             "open_windows": 1, "service_seconds": 300},
        ],
        "calls": [],
    },
}  # fmt: skip


def test_the_snapshot_gives_the_windows_waiting_count_over_its_groups() -> None:
    """Window 11 serves groups 1 and 2: 4 + 2 waiting; nobody called yet."""
    board = WindowBoard(11)
    board.on_snapshot(SNAPSHOT)
    assert board.content() == PanelContent(
        window_number=1,
        window_name="1号窗口",
        serving=None,
        staff_name=None,
        staff_no=None,
        waiting=6,
        open=True,
    )


def test_a_call_replaces_the_window_and_sets_the_waiting_counts() -> None:
    """ticket_called carries the window's new view and every group's count."""
    board = WindowBoard(11)
    board.on_snapshot(SNAPSHOT)
    event = {
        "action": "called",
        "at": "2026-11-26T09:31:00+08:00",
        "ticket": "A005",
        "window": window(11, 1, current="A005", staff_name="张三", staff_no="1024"),
        "waiting": [[1, 3], [2, 2]],
    }
    assert board.on_event("ticket_called", event)
    content = board.content()
    assert content is not None
    assert (content.serving, content.staff_name, content.waiting) == ("A005", "张三", 5)


def test_other_windows_and_other_events_leave_the_content_alone() -> None:
    """An event for window 12 and a notice change nothing for window 11's panel."""
    board = WindowBoard(11)
    board.on_snapshot(SNAPSHOT)
    before = board.content()
    assert board.on_event("window_changed", {"action": "x", "at": "2026-11-26T09:00:00Z",
                                             "window": window(12, 2, status="open")})  # fmt: skip
    assert not board.on_event("notice_posted", {"id": 1})
    assert board.content() == before


def test_a_closed_window_is_not_open_and_an_unknown_one_has_no_content() -> None:
    """Window 12 is closed (its panel is cleared); window 99 is not in the hall."""
    board = WindowBoard(12)
    board.on_snapshot(SNAPSHOT)
    content = board.content()
    assert content is not None and not content.open
    assert WindowBoard(99).content() is None


def test_queue_configured_replaces_the_whole_state() -> None:
    """A new configuration drops the old windows and groups."""
    board = WindowBoard(11)
    board.on_snapshot(SNAPSHOT)
    queue = {"service_day": "2026-11-26", "windows": [window(11, 1, group_ids=[3])],
             "groups": [{"group_id": 3, "waiting": 9}], "calls": []}  # fmt: skip
    assert board.on_event("queue_configured", queue)
    content = board.content()
    assert content is not None and content.waiting == 9
