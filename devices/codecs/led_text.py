"""Text for LED window panels (D5): GB2312 as the panels' font ROMs hold it, widths in cells,
and the lines a window's state becomes. Pure; used by :mod:`devices.codecs.led_panel`, which
re-exports the public names.

A cell is 8 px: printable ASCII takes 1 cell (one byte), a GB2312 character 2 cells (two bytes),
so a line's width in cells is its length in GB2312 bytes (docs/devices/led-panel.md §2).
"""

from __future__ import annotations

from typing import Final

from devices.codecs.wire import check_int
from devices.errors import EncodeError, FrameError

__all__ = [
    "decode_gb2312",
    "display_width",
    "encode_gb2312",
    "gb2312_safe",
    "render_window_lines",
]

_MISSING: Final = "□"  # A1 F5 in GB2312: what a panel shows for a character it has no glyph for


# --- GB2312 -------------------------------------------------------------------------------------


def _glyph_bytes(ch: str) -> bytes | None:
    """The GB2312 bytes of ``ch``, or None when the panels' GB2312 font has no glyph for it."""
    if " " <= ch <= "~":
        return ch.encode("ascii")
    try:
        data = ch.encode("gb18030")
        # GB18030's two-byte codes agree with GB2312 where GB2312 assigns them; the gb2312
        # codec says whether it does (and GB18030 gives the right Unicode, e.g. A1A4 = U+00B7).
        if len(data) == 2:
            data.decode("gb2312")
            return data
    except UnicodeError:
        pass
    return None


def encode_gb2312(text: str, field: str = "text") -> bytes:
    """``text`` in GB2312 bytes: printable ASCII and assigned GB2312 characters only.

    Raises:
        EncodeError: a character the panels cannot show (outside GB2312, or a control char).
    """
    out = bytearray()
    for ch in text:
        data = _glyph_bytes(ch)
        if data is None:
            raise EncodeError(f"{field}: {ch!r} (U+{ord(ch):04X}) is not in GB2312")
        out += data
    return bytes(out)


def gb2312_safe(text: str) -> str:
    """``text`` with every character the panels cannot show replaced by ``□``."""
    return "".join(ch if _glyph_bytes(ch) is not None else _MISSING for ch in text)


def display_width(text: str) -> int:
    """Cells ``text`` takes on a panel (ASCII 1, hanzi 2); unshowable characters count 2 (□)."""
    return sum(1 if " " <= ch <= "~" else 2 for ch in text)


def decode_gb2312(data: bytes, field: str = "text") -> str:
    """The text of GB2312 bytes (Unicode as GB18030 maps them, e.g. ``A1 A4`` → ``·``).

    Raises:
        FrameError: a byte pair GB2312 does not assign, or a control character.
    """
    try:
        data.decode("gb2312")  # every pair assigned in GB2312 (raises otherwise)
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise FrameError(f"{field} is not GB2312") from exc
    if any(ch < " " or ch == "\x7f" for ch in text):
        raise FrameError(f"{field} holds control characters")
    return text


# --- window state → panel lines ---------------------------------------------------------------


def _fit(variants: list[str], width: int) -> str:
    """The first variant that fits ``width`` cells, else the last one cut at ``width``."""
    safe = [gb2312_safe(v) for v in variants]
    for text in safe:
        if display_width(text) <= width:
            return text
    out: list[str] = []
    used = 0
    for ch in safe[-1]:
        used += display_width(ch)
        if used > width:
            break
        out.append(ch)
    return "".join(out)


def render_window_lines(
    window_number: int,
    window_name: str,
    serving_number: str | None,
    staff_name: str | None,
    staff_number: str | None,
    waiting: int,
    width: int,
) -> tuple[str, ...]:
    """The four lines of a window panel for a window's state, each at most ``width`` cells.

    Lines: header (``3号窗口 综合受理``), serving (``正在办理 A012``, or ``等待叫号`` when nobody
    is called), staff (``张三 工号1024``; empty without staff), waiting (``等候 5 人``). Each
    line falls back to shorter forms when too wide (doc §6), then is cut at a character
    boundary. Characters outside GB2312 become ``□``. The first line is what ``SET_HEADER``
    draws; a panel with a header row gets ``lines[1:]``.

    Raises:
        EncodeError: ``width`` under 2 (not even one hanzi fits) or ``waiting`` negative.
    """
    check_int(width, 2, 255, "width")
    check_int(waiting, 0, 1_000_000, "waiting")
    header = f"{window_number}号窗口"
    name = window_name.strip()
    headers = [f"{header} {name}", header] if name else [header]
    if serving_number:
        serving = [f"正在办理 {serving_number}", f"办理 {serving_number}", serving_number]
    else:
        serving = ["等待叫号"]
    staff = [""]
    if staff_name and staff_number:
        staff = [f"{staff_name} 工号{staff_number}", f"{staff_name} {staff_number}", staff_name]
    elif staff_name or staff_number:
        staff = [staff_name or f"工号{staff_number}"]
    count = [f"等候 {waiting} 人", f"等候{waiting}人", str(waiting)]
    return tuple(_fit(v, width) for v in (headers, serving, staff, count))
