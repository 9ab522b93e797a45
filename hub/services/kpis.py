"""Queue KPIs (Q9): waiting time, service time and no-shows per window, staff, group and hour.

Computed in SQL over a range of service days of one hall. Waiting time is issue to first
call (``called_at - issued_at``; a re-queued or transferred ticket keeps its last call),
service time is call to finish of served tickets. Hours are the hall-local hour of issue.
The xlsx download is built in the worker pool (:func:`render_xlsx` runs in a worker
process), never on the event loop.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Literal

import asyncpg
import msgspec

from hub.domain.errors import InvalidInput

Dimension = Literal["window", "staff", "group", "hour"]
DIMENSIONS: tuple[Dimension, ...] = ("window", "staff", "group", "hour")
MAX_DAYS = 366

# Key and label of each dimension (the label of a staff member is name and staff number).
_KEYS: dict[Dimension, tuple[str, str, str]] = {
    "window": (
        "t.window_id",
        "(SELECT w.number || '号窗口' FROM \"window\" w WHERE w.id = t.window_id)",
        "t.window_id IS NOT NULL",
    ),
    "staff": (
        "t.staff_id",
        "(SELECT s.name || '（' || s.staff_no || '）' FROM staff s WHERE s.id = t.staff_id)",
        "t.staff_id IS NOT NULL",
    ),
    "group": (
        "t.group_id",
        "(SELECT g.prefix || ' ' || g.name FROM service_group g WHERE g.id = t.group_id)",
        "true",
    ),
    "hour": (
        "extract(hour FROM t.issued_at AT TIME ZONE h.timezone)::bigint",
        "lpad(extract(hour FROM t.issued_at AT TIME ZONE h.timezone)::text, 2, '0') || ':00'",
        "true",
    ),
}


class KpiRow(msgspec.Struct, frozen=True, kw_only=True):
    """The figures of one key of a dimension (a window, a staff member, a group, an hour)."""

    key: int
    label: str
    issued: int
    served: int
    no_shows: int
    waiting: int
    avg_wait_seconds: float | None
    p90_wait_seconds: float | None
    avg_service_seconds: float | None


class KpiReport(msgspec.Struct, frozen=True, kw_only=True):
    hall_id: int
    start: date
    end: date
    by: Dimension
    rows: list[KpiRow]


def check_range(start: date, end: date) -> None:
    if end < start:
        raise InvalidInput("the range ends before it starts", field="query.to")
    if (end - start).days >= MAX_DAYS:
        raise InvalidInput(f"at most {MAX_DAYS} days at a time", field="query.to")


async def report(
    db: asyncpg.Pool | asyncpg.Connection, hall_id: int, start: date, end: date, by: Dimension
) -> KpiReport:
    """The KPIs of ``hall_id`` over the service days ``start``..``end`` (inclusive)."""
    check_range(start, end)
    key, label, present = _KEYS[by]
    rows = await db.fetch(
        f"""SELECT {key} AS key, min({label}) AS label,
                   count(*) AS issued,
                   count(*) FILTER (WHERE t.status = 'done') AS served,
                   count(*) FILTER (WHERE t.status = 'no_show') AS no_shows,
                   count(*) FILTER (WHERE t.status = 'waiting') AS waiting,
                   avg(extract(epoch FROM t.called_at - t.issued_at))::float8 AS avg_wait_seconds,
                   percentile_cont(0.9) WITHIN GROUP (
                       ORDER BY extract(epoch FROM t.called_at - t.issued_at))::float8
                       AS p90_wait_seconds,
                   avg(extract(epoch FROM t.finished_at - t.called_at))
                       FILTER (WHERE t.status = 'done')::float8 AS avg_service_seconds
            FROM ticket t JOIN hall h ON h.id = t.hall_id
            WHERE t.hall_id = $1 AND t.service_day BETWEEN $2 AND $3 AND {present}
            GROUP BY 1 ORDER BY 1""",
        hall_id,
        start,
        end,
    )
    return KpiReport(
        hall_id=hall_id,
        start=start,
        end=end,
        by=by,
        rows=[msgspec.convert({**dict(r), "label": r["label"] or str(r["key"])}, KpiRow)
              for r in rows],
    )  # fmt: skip


_SHEETS: dict[str, str] = {
    "window": "按窗口",
    "staff": "按人员",
    "group": "按业务",
    "hour": "按时段",
}
_HEADERS = [
    "对象",
    "取号数",
    "办结数",
    "过号数",
    "等候中",
    "平均等候(分)",
    "90%等候(分)",
    "平均办理(分)",
]


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def render_xlsx(encoded_reports: bytes, title: str) -> bytes:
    """An xlsx workbook, one sheet per report. Runs in a worker process (module-level, with
    picklable arguments: the reports as msgspec-encoded bytes)."""
    import xlsxwriter

    reports = msgspec.msgpack.decode(encoded_reports, type=list[KpiReport])
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    for rep in reports:
        sheet = book.add_worksheet(_SHEETS[rep.by])
        sheet.write(0, 0, f"{title}　{rep.start.isoformat()} 至 {rep.end.isoformat()}")
        sheet.write_row(2, 0, _HEADERS, bold)
        for i, row in enumerate(rep.rows, start=3):
            sheet.write_row(i, 0, [row.label, row.issued, row.served, row.no_shows, row.waiting,
                                   _minutes(row.avg_wait_seconds), _minutes(row.p90_wait_seconds),
                                   _minutes(row.avg_service_seconds)])  # fmt: skip
        sheet.set_column(0, 0, 22)
        sheet.set_column(1, len(_HEADERS) - 1, 12)
    book.close()
    return out.getvalue()
