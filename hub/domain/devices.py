"""Hall devices (issue 5, D1-D6): bindings, what a device reports, alerts, e-ticket mode.

Pure: no I/O, no asyncio. docs/devices/hub.md describes the whole flow.

Bindings
    A printer, ID reader or code reader belongs to a *host* (:data:`HOST_KINDS`: the kiosk,
    ticket machine or touch terminal whose page uses it); an evaluator, window display, ID
    reader or scanner stands at a window. An ID reader has one or the other, not both.

Reported state (``device.state``)
    ``printer_status`` sets ``online``, ``paper``, ``cover_open`` and ``error``;
    ``device_state`` sets ``links[part]`` (the agent's link to each piece of hardware);
    ``device_info`` sets ``parts``. A printer *can print* when its peer is connected, it
    reported itself online with paper (``low`` still prints), its cover closed, no error,
    and every link of its agent to it is up. A host with no printer that can print shows
    e-tickets (the QR code on its screen) instead of printing.

Alerts (``alerts:<hall>``)
    ======================  ========  ==============================================
    code                    level     raised while
    ======================  ========  ==============================================
    ``paper_low``           warning   the printer reports its paper near its end
    ``paper_out``           critical  the printer reports no paper
    ``cover_open``          critical  the printer's cover is open
    ``printer_error``       critical  the printer reports an error, or offline for
                                      another reason than paper or cover
    ``device_unreachable``  critical  the agent cannot reach the hardware (a link down)
    ``device_offline``      critical  the device's peer left the hub
    ======================  ========  ==============================================
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, get_args

import msgspec

from hub.domain.errors import InvalidInput

# Kinds whose page uses attached devices, and the kinds that can be attached to one.
HOST_KINDS: frozenset[str] = frozenset({"kiosk", "ticket_machine", "info_terminal"})
HOSTED_KINDS: frozenset[str] = frozenset({"printer", "id_reader", "code_reader"})
WINDOW_KINDS: frozenset[str] = frozenset({"evaluator", "window_display", "id_reader", "scanner"})

Paper = Literal["ok", "low", "out"]
AlertCode = Literal[
    "paper_low",
    "paper_out",
    "cover_open",
    "printer_error",
    "device_unreachable",
    "device_offline",
]
AlertLevel = Literal["warning", "critical"]
ALERT_CODES: tuple[AlertCode, ...] = get_args(AlertCode)
# The codes that follow a printer's own status (printer_status), as opposed to its links.
PRINTER_CODES: frozenset[AlertCode] = frozenset(
    {"paper_low", "paper_out", "cover_open", "printer_error"}
)

ALERT_LEVELS: dict[AlertCode, AlertLevel] = {
    "paper_low": "warning",
    "paper_out": "critical",
    "cover_open": "critical",
    "printer_error": "critical",
    "device_unreachable": "critical",
    "device_offline": "critical",
}
# zh-CN texts put after the device's name: "3号取号机" + "打印纸将尽".
ALERT_TEXTS: dict[AlertCode, str] = {
    "paper_low": "打印纸将尽",
    "paper_out": "打印纸已用完",
    "cover_open": "打印机上盖打开",
    "printer_error": "打印机故障",
    "device_unreachable": "无法连接设备硬件",
    "device_offline": "已离线",
}

# The parts an agent names in ``device_state``, as the alert says them; others: ALERT_TEXTS.
PART_TEXTS: dict[str, str] = {
    "printer": "打印机",
    "id_reader": "读卡器",
    "reader": "读卡器",
    "code_reader": "扫码器",
    "evaluator": "评价器",
    "pad": "评价器",
    "window_display": "显示屏",
    "panel": "显示屏",
    "scanner": "高拍仪",
    "folder": "高拍仪文件夹",
    "serial": "串口",
    "ble": "蓝牙设备",
}


class PrinterStatus(msgspec.Struct, frozen=True, kw_only=True):
    """``printer_status`` as the agent reports it (docs/devices/printer.md, section 6)."""

    online: bool
    paper: Paper
    cover_open: bool
    error: bool


class LinkState(msgspec.Struct, frozen=True, kw_only=True):
    """The agent's link to one piece of hardware (``device_state``)."""

    state: Literal["online", "offline"]
    reason: str = ""


class DeviceState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """``device.state``: the last report of each kind; None/empty until one came."""

    online: bool | None = None
    paper: Paper | None = None
    cover_open: bool | None = None
    error: bool | None = None
    links: dict[str, LinkState] = {}
    parts: list[str] = []

    @property
    def reachable(self) -> bool:
        """Every link of the agent to the hardware is up (or none was reported)."""
        return all(link.state == "online" for link in self.links.values())

    def printer_status(self) -> PrinterStatus | None:
        """The printer status in it, if the device ever reported one."""
        if self.online is None or self.paper is None:
            return None
        return PrinterStatus(
            online=self.online,
            paper=self.paper,
            cover_open=bool(self.cover_open),
            error=bool(self.error),
        )


def printer_alerts(status: PrinterStatus) -> frozenset[AlertCode]:
    """The printer alerts that ``status`` calls for (table of the module docstring)."""
    codes: set[AlertCode] = set()
    if status.paper == "low":
        codes.add("paper_low")
    elif status.paper == "out":
        codes.add("paper_out")
    if status.cover_open:
        codes.add("cover_open")
    # A printer goes offline on paper end and open cover too (Epson DLE EOT 2): only an
    # offline without either of those is a fault of its own.
    if status.error or (not status.online and status.paper != "out" and not status.cover_open):
        codes.add("printer_error")
    return frozenset(codes)


def can_print(state: DeviceState, present: bool) -> bool:
    """Whether a printer can print a ticket now (module docstring, "Reported state").

    Args:
        state: what the printer last reported.
        present: its peer is connected to the hub.
    """
    status = state.printer_status()
    return (
        present
        and status is not None
        and status.online
        and status.paper != "out"
        and not status.cover_open
        and not status.error
        and state.reachable
    )


def alert_message(code: AlertCode, name: str, part: str = "") -> str:
    """The alert's sentence for the hall's managers: ``3号取号机打印纸将尽``.

    Args:
        name: the device, or for a printer's own alerts its host (the machine people see).
        part: for ``device_unreachable``, the hardware the agent cannot reach.
    """
    text = ALERT_TEXTS[code]
    if code == "device_unreachable" and part in PART_TEXTS:
        text = f"无法连接{PART_TEXTS[part]}"
    return f"{name}{text}"


def check_binding(
    kind: str,
    *,
    host_kind: str | None,
    host_is_self: bool,
    has_window: bool,
) -> None:
    """Check where a device may be bound (module docstring, "Bindings").

    Args:
        kind: the device's kind.
        host_kind: the kind of its new host (None: no host).
        host_is_self: the host is the device itself.
        has_window: it is to stand at a window.

    Raises:
        InvalidInput: a host for a kind that has none, a host that is not a kiosk, ticket
            machine or touch terminal, a window for a kind that stands at none, or both.
    """
    if host_kind is not None:
        if kind not in HOSTED_KINDS:
            raise InvalidInput(f"a {kind} is attached to no host", field="body.host_id")
        if host_is_self:
            raise InvalidInput("a device is not its own host", field="body.host_id")
        if host_kind not in HOST_KINDS:
            raise InvalidInput(
                f"a host is a kiosk, ticket machine or touch terminal, not a {host_kind}",
                field="body.host_id",
            )
    if has_window and kind not in WINDOW_KINDS:
        raise InvalidInput(f"a {kind} does not stand at a window", field="body.window_id")
    if host_kind is not None and has_window:
        raise InvalidInput(
            "a device belongs to a host or stands at a window, not both", field="body.window_id"
        )


# --- remote settings (D6) -----------------------------------------------------------------

SETTINGS_MAX_BYTES = 16 * 1024
# The settings the hub and the agent read, with their bounds; other keys pass as they are.
_NUMBERS: dict[str, tuple[float, float]] = {"poll_seconds": (0.5, 60.0), "timeout_s": (3, 600)}
# ``timeout_s`` of the kinds that wait for a citizen, as (default, low, high) seconds: an
# evaluator for a grade (O9), an ID reader for a card (D2). Within the bounds above.
TIMEOUTS: dict[str, tuple[int, int, int]] = {"evaluator": (30, 5, 600), "id_reader": (20, 3, 120)}


def configured_timeout(kind: str, value: object) -> int:
    """A device's ``timeout_s`` setting in whole seconds within its kind's bounds; the kind's
    default when none (or no number) is configured."""
    default, low, high = TIMEOUTS[kind]
    if not isinstance(value, int | float | Decimal) or isinstance(value, bool):
        return default
    return max(low, min(high, int(value)))


_TEXT_MAX = 200
_FOOTER_LINES = 5


def check_settings(settings: dict[str, object], encoded_size: int, kind: str | None = None) -> None:
    """Check a device's remote settings: at most :data:`SETTINGS_MAX_BYTES` as JSON;
    ``poll_seconds`` 0.5-60 and ``timeout_s`` 3-600 (numbers; for a ``kind`` of
    :data:`TIMEOUTS`, that kind's bounds, the ones its timeout is used with), ``header`` a
    text of at most 200 characters, ``footer`` at most 5 such texts (a printer's ticket, D1).

    Raises:
        InvalidInput: naming the setting (``body.settings.<key>``).
    """
    if encoded_size > SETTINGS_MAX_BYTES:
        raise InvalidInput(
            f"settings take at most {SETTINGS_MAX_BYTES} bytes as JSON", field="body.settings"
        )
    numbers = dict(_NUMBERS)
    if kind in TIMEOUTS:
        numbers["timeout_s"] = TIMEOUTS[kind][1:]
    for key, (low, high) in numbers.items():
        value = settings.get(key)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise InvalidInput(
                f"{key} is a number from {low:g} to {high:g}", field=f"body.settings.{key}"
            )
    header = settings.get("header")
    if header is not None and (not isinstance(header, str) or len(header) > _TEXT_MAX):
        raise InvalidInput(
            f"header is a text of at most {_TEXT_MAX} characters", field="body.settings.header"
        )
    footer = settings.get("footer")
    if footer is not None and (
        not isinstance(footer, list)
        or len(footer) > _FOOTER_LINES
        or not all(isinstance(line, str) and len(line) <= _TEXT_MAX for line in footer)
    ):
        raise InvalidInput(
            f"footer is a list of at most {_FOOTER_LINES} texts of at most {_TEXT_MAX} characters",
            field="body.settings.footer",
        )


# --- scanner uploads (D3) ----------------------------------------------------------------

ScanType = Literal["image/jpeg", "image/png", "application/pdf"]
SCAN_TYPES: tuple[ScanType, ...] = get_args(ScanType)
# The first bytes of each type: JPEG SOI + marker (ITU T.81 B.1.1.3), the PNG signature
# (RFC 2083 3.1), the PDF header (ISO 32000-1 7.5.2).
_MAGIC: dict[ScanType, bytes] = {
    "image/jpeg": b"\xff\xd8\xff",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "application/pdf": b"%PDF-",
}
MAGIC_BYTES = max(len(m) for m in _MAGIC.values())


def scan_type(content_type: str, head: bytes) -> ScanType | None:
    """The scan's type if the declared ``content_type`` (parameters ignored) is one we take
    and ``head``, the first bytes, starts as that type does; else None. No decoding."""
    declared = content_type.split(";", 1)[0].strip().lower()
    for known, magic in _MAGIC.items():
        if declared == known:
            return known if head.startswith(magic) else None
    return None
