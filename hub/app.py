"""The Litestar application: HTTP API, probes, metrics and the static pages.

``create_app(settings)`` builds the app around one :class:`~hub.runtime.Hub`; the app's
lifespan starts the hub (storage, migrations, bus, gateway, jobs) and stops it. Every error
is an RFC 9457 problem (hub/api/problems.py). The OpenAPI page is at ``/schema``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi.config import OpenAPIConfig
from litestar.static_files import create_static_files_router

from hub.api import appointments as appointments_api
from hub.api import (
    audit,
    auth,
    devices,
    health,
    kpis,
    metrics,
    notices,
    org,
    queue,
    queue_admin,
    realtime_info,
    staff,
)
from hub.api import calendar as calendar_api
from hub.api import ratings as ratings_api
from hub.api import speech as speech_api
from hub.api import ticket_qr as ticket_qr_api
from hub.api.deps import DEPENDENCIES
from hub.api.problems import EXCEPTION_HANDLERS
from hub.api.ratelimit import PublicRateLimit
from hub.config import Settings
from hub.runtime import Hub

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


def create_app(settings: Settings, hub: Hub | None = None) -> Litestar:
    """Build the HTTP application of one hub process.

    Args:
        settings: the process's settings.
        hub: an existing Hub (tests, the CLI); a new ``Hub(settings)`` when None.

    Returns:
        A Litestar app whose ``state.hub`` is the Hub.
    """
    the_hub = hub if hub is not None else Hub(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await the_hub.start()
        try:
            yield
        finally:
            await the_hub.stop()

    FRONTEND_DIR.mkdir(exist_ok=True)
    return Litestar(
        route_handlers=[
            health.health,
            health.ready,
            metrics.metrics,
            realtime_info.realtime_info,
            auth.AuthController,
            org.OrgController,
            staff.StaffController,
            devices.DeviceController,
            devices.hall_devices,
            audit.query_audit,
            notices.NoticeController,
            calendar_api.CalendarController,
            calendar_api.HallClosureController,
            queue.TicketController,
            queue.GroupController,
            queue.WindowController,
            queue_admin.QueueAdminController,
            queue_admin.StaffHonourController,
            kpis.kpi_report,
            kpis.kpi_xlsx,
            speech_api.call_audio,
            ticket_qr_api.ticket_qr,
            ratings_api.RatingController,
            appointments_api.AppointmentController,
            # Last: the pages are served from "/" and every other path is a route above.
            create_static_files_router("/", directories=[FRONTEND_DIR], html_mode=True),
        ],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=[lifespan],
        state=State(
            {"hub": the_hub, "rate_limit": PublicRateLimit(settings.public_rate_per_minute)}
        ),
        openapi_config=OpenAPIConfig(title="hallhub", version="0.1.0", path="/schema"),
        logging_config=None,
    )
