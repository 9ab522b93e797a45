"""structlog set-up: JSON lines when stdout is not a terminal, key=value otherwise (item 11).

Context (hall, window, device, case, peer) is bound with ``structlog.contextvars`` or
``log.bind`` at the edges; every line carries it.
"""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(level: str = "info", json: bool | None = None, *, cache: bool = True) -> None:
    """Configure structlog and the stdlib root logger once per process.

    Args:
        level: debug, info, warning or error.
        json: force JSON (True) or key=value (False); None picks by ``sys.stderr.isatty()``.
        cache: cache loggers on first use (off in tests, so ``capture_logs`` sees them).
    """
    as_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=cache,
    )
    # Libraries that log through the stdlib (uvicorn, asyncpg, websockets) go to the same
    # stream at warning and above, so a key=value or JSON reader is not interrupted.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")
