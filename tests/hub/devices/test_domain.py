"""The pure device rules: alerts from a printer's status, e-ticket mode, bindings, settings,
scan types (hub/domain/devices.py)."""

from __future__ import annotations

import pytest

from hub.domain.devices import (
    DeviceState,
    LinkState,
    PrinterStatus,
    alert_message,
    can_print,
    check_binding,
    check_settings,
    configured_timeout,
    printer_alerts,
    scan_type,
)
from hub.domain.errors import InvalidInput

OK = PrinterStatus(online=True, paper="ok", cover_open=False, error=False)


def _state(status: PrinterStatus, **links: str) -> DeviceState:
    return DeviceState(
        online=status.online,
        paper=status.paper,
        cover_open=status.cover_open,
        error=status.error,
        links={part: LinkState(state=s) for part, s in links.items()},  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("status", "codes"),
    [
        (OK, set()),
        (PrinterStatus(online=True, paper="low", cover_open=False, error=False), {"paper_low"}),
        # Paper end and an open cover take an Epson printer offline: that is not an error.
        (PrinterStatus(online=False, paper="out", cover_open=False, error=False), {"paper_out"}),
        (
            PrinterStatus(online=False, paper="ok", cover_open=True, error=False),
            {"cover_open"},
        ),
        (PrinterStatus(online=False, paper="ok", cover_open=False, error=False), {"printer_error"}),
        (
            PrinterStatus(online=True, paper="low", cover_open=False, error=True),
            {"paper_low", "printer_error"},
        ),
    ],
)
def test_a_printer_status_calls_for_the_alerts_of_its_faults(
    status: PrinterStatus, codes: set[str]
) -> None:
    """Low and out paper, an open cover and an error (or offline without a cause) each alert."""
    assert printer_alerts(status) == codes


def test_a_printer_prints_only_when_connected_online_with_paper_and_reachable() -> None:
    """Low paper still prints; no status yet, paper out, cover open, error, a lost link or an
    absent peer do not."""
    assert can_print(_state(OK), present=True)
    low = PrinterStatus(online=True, paper="low", cover_open=False, error=False)
    assert can_print(_state(low), present=True)
    assert not can_print(_state(OK), present=False)
    assert not can_print(DeviceState(), present=True)
    for bad in (
        PrinterStatus(online=False, paper="out", cover_open=False, error=False),
        PrinterStatus(online=True, paper="ok", cover_open=True, error=False),
        PrinterStatus(online=True, paper="ok", cover_open=False, error=True),
    ):
        assert not can_print(_state(bad), present=True)
    assert not can_print(_state(OK, printer="offline"), present=True)
    assert can_print(_state(OK, printer="online"), present=True)


def test_an_alert_names_the_machine_people_see() -> None:
    """A message is the name and the zh-CN text; a lost link names the part when known."""
    assert alert_message("paper_low", "3号取号机") == "3号取号机打印纸将尽"
    assert alert_message("device_offline", "1号读卡器") == "1号读卡器已离线"
    assert alert_message("device_unreachable", "1号自助机", "printer") == "1号自助机无法连接打印机"
    assert alert_message("device_unreachable", "1号自助机", "x9") == "1号自助机无法连接设备硬件"


def test_printers_and_readers_belong_to_kiosks_and_machines_and_pads_to_windows() -> None:
    """Hosted kinds take a host of a host kind; window kinds a window; an ID reader not both."""
    check_binding("printer", host_kind="kiosk", host_is_self=False, has_window=False)
    check_binding("code_reader", host_kind="ticket_machine", host_is_self=False, has_window=False)
    check_binding("id_reader", host_kind=None, host_is_self=False, has_window=True)
    check_binding("evaluator", host_kind=None, host_is_self=False, has_window=True)
    check_binding("kiosk", host_kind=None, host_is_self=False, has_window=False)
    refused = [
        ("evaluator", "kiosk", False, "body.host_id"),
        ("printer", "printer", False, "body.host_id"),
        ("printer", "hall_display", False, "body.host_id"),
        ("printer", None, True, "body.window_id"),
        ("id_reader", "kiosk", True, "body.window_id"),
    ]
    for kind, host, window, field in refused:
        with pytest.raises(InvalidInput) as exc:
            check_binding(kind, host_kind=host, host_is_self=False, has_window=window)
        assert exc.value.field == field, (kind, host, window)


def test_known_settings_are_checked_and_others_pass() -> None:
    """poll_seconds, timeout_s, header and footer have bounds; unknown keys are kept as is."""
    check_settings({"poll_seconds": 2, "timeout_s": 30, "header": "欢迎", "x": [1]}, 60)
    check_settings({"footer": ["一", "二"]}, 30)
    for settings, field in (
        ({"poll_seconds": 0.1}, "body.settings.poll_seconds"),
        ({"timeout_s": True}, "body.settings.timeout_s"),
        ({"timeout_s": "30"}, "body.settings.timeout_s"),
        ({"header": "x" * 201}, "body.settings.header"),
        ({"footer": ["a"] * 6}, "body.settings.footer"),
        ({"footer": "a"}, "body.settings.footer"),
    ):
        with pytest.raises(InvalidInput) as exc:
            check_settings(settings, 10)
        assert exc.value.field == field
    with pytest.raises(InvalidInput):
        check_settings({}, 16 * 1024 + 1)


def test_a_timeout_is_checked_and_used_within_the_bounds_of_its_kind() -> None:
    """timeout_s is refused outside the bounds it is used with (an evaluator 5-600 s, an ID
    reader 3-120 s); a stored value is clamped to them, and none gives the kind's default."""
    check_settings({"timeout_s": 5}, 10, "evaluator")
    check_settings({"timeout_s": 120}, 10, "id_reader")
    check_settings({"timeout_s": 600}, 10, "printer")
    for settings, kind in (({"timeout_s": 4}, "evaluator"), ({"timeout_s": 121}, "id_reader")):
        with pytest.raises(InvalidInput) as exc:
            check_settings(settings, 10, kind)
        assert exc.value.field == "body.settings.timeout_s"
    assert [configured_timeout("evaluator", v) for v in (None, "9", True, 2, 45.7, 9999)] == [
        30,
        30,
        30,
        5,
        45,
        600,
    ]
    assert [configured_timeout("id_reader", v) for v in (None, 1, 200)] == [20, 3, 120]


def test_a_scan_is_the_declared_type_when_its_first_bytes_agree() -> None:
    """JPEG, PNG and PDF by magic bytes and Content-Type; parameters and case are ignored."""
    assert scan_type("image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF") == "image/jpeg"
    assert scan_type("Image/PNG", b"\x89PNG\r\n\x1a\n\x00") == "image/png"
    assert scan_type("application/pdf; charset=binary", b"%PDF-1.7\n") == "application/pdf"
    assert scan_type("image/png", b"\xff\xd8\xff\xe0") is None  # a JPEG declared PNG
    assert scan_type("image/gif", b"GIF89a") is None
    assert scan_type("", b"%PDF-1.7") is None
