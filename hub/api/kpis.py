"""Queue KPIs (Q9): ``GET /api/halls/{hall_id}/kpis`` and the xlsx download.

Both need ``queue.kpi`` (admin, hall_manager, supervisor) covering the hall. The xlsx file
is built in the worker pool; its download is audited (``kpi.export``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import asyncpg
import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from hub.api.deps import require
from hub.domain.access import Principal
from hub.runtime import Hub
from hub.services import audit, kpis
from hub.services.access import hall_place

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@get("/api/halls/{hall_id:int}/kpis", tags=["queue"])
async def kpi_report(
    hall_id: FromPath[int],
    start: Annotated[date, QueryParameter(name="from")],
    end: Annotated[date, QueryParameter(name="to")],
    principal: NamedDependency[Principal],
    pool: NamedDependency[asyncpg.Pool],
    by: Annotated[kpis.Dimension, QueryParameter()] = "window",
) -> kpis.KpiReport:
    """Issued, served, no-shows, waiting and service times per window, staff, group or hour
    over the service days ``from``..``to`` (at most a year)."""
    require(principal, "queue.kpi", await hall_place(pool, hall_id, field="path.hall_id"))
    return await kpis.report(pool, hall_id, start, end, by)


@get("/api/halls/{hall_id:int}/kpis.xlsx", tags=["queue"])
async def kpi_xlsx(
    hall_id: FromPath[int],
    start: Annotated[date, QueryParameter(name="from")],
    end: Annotated[date, QueryParameter(name="to")],
    principal: NamedDependency[Principal],
    pool: NamedDependency[asyncpg.Pool],
    hub: NamedDependency[Hub],
) -> Response[bytes]:
    """The four KPI tables as one workbook (built in the worker pool)."""
    place = await hall_place(pool, hall_id, field="path.hall_id")
    actor = require(principal, "queue.kpi", place)
    kpis.check_range(start, end)
    reports = [await kpis.report(pool, hall_id, start, end, by) for by in kpis.DIMENSIONS]
    name = await pool.fetchval("SELECT name FROM hall WHERE id = $1", hall_id)
    if hub.workers is None:
        raise RuntimeError("Hub.start() has not run")
    content = await hub.workers.run(
        kpis.render_xlsx, msgspec.msgpack.encode(reports), f"{name} 排队叫号统计", timeout=60
    )
    async with pool.acquire() as conn:
        await audit.record(
            conn, actor, "kpi.export", "hall", hall_id, place=place,
            after={"from": start.isoformat(), "to": end.isoformat()},
        )  # fmt: skip
    filename = f"queue-kpis-{hall_id}-{start.isoformat()}-{end.isoformat()}.xlsx"
    return Response(
        content,
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
