"""RFC 9457 problem details for every error the HTTP API returns, mapped in one table.

A problem body is ``application/problem+json``::

    {"type": "urn:hallhub:problem:invalid_input", "title": "Invalid input", "status": 422,
     "detail": "...", "instance": "/api/halls", "code": "invalid_input",
     "errors": [{"field": "body.name", "message": "Expected `str`, got `int`"}]}

``code`` is stable (clients branch on it); ``type`` is derived from it (RFC 9457 §3.1.1 allows
a URN). ``errors`` lists offending fields as ``body.<path>``, ``query.<name>`` or
``path.<name>``. Domain errors map by class (:data:`DOMAIN_STATUS`), Litestar's own exceptions
by status; anything else is a logged 500 that reveals nothing.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from hub.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotAllowed,
    NotFound,
    NotSignedIn,
    RateLimited,
    SpeechUnavailable,
    TooLarge,
    UnsupportedType,
)

log = structlog.get_logger("hub.api")

MEDIA_TYPE = "application/problem+json"

# The one mapping table: domain error class → HTTP status. The most specific class wins.
DOMAIN_STATUS: dict[type[DomainError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    NotSignedIn: 401,
    NotAllowed: 403,
    RateLimited: 429,
    SpeechUnavailable: 503,
    TooLarge: 413,
    UnsupportedType: 415,
    DomainError: 400,
}

# Litestar's exceptions carry a status; their code is derived from it.
HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    """An RFC 9457 problem details body with hallhub's ``code`` and ``errors`` extensions."""

    type: str
    title: str
    status: int
    code: str
    detail: str = ""
    instance: str = ""
    errors: list[FieldError] = []


def problem_response(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    detail: str = "",
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    """A problem details response; ``title`` is the status phrase."""
    problem = Problem(
        type=f"urn:hallhub:problem:{code}",
        title=HTTPStatus(status).phrase,
        status=status,
        code=code,
        detail=detail,
        instance=request.url.path,
        errors=errors or [],
    )
    return Response(
        content=msgspec.json.encode(problem),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _domain_status(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 400


def domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, DomainError)
    errors = [FieldError(exc.field, exc.detail)] if exc.field else []
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return problem_response(request, _domain_status(exc), exc.code, exc.detail, errors, headers)


_OBJECT_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `([^`]+)`")


def _field_path(item: Any) -> FieldError:
    if not isinstance(item, dict):
        return FieldError("", str(item))
    key = str(item.get("key", ""))
    source = str(item.get("source", "body"))
    # Litestar names path/query sources by enum value ("path", "query", "header", "cookie").
    source = getattr(item.get("source"), "value", source)
    message = str(item.get("message", ""))
    if key == "data" and (named := _OBJECT_FIELD.search(message)):
        # msgspec reports a missing or unknown member at the object itself ("$"), which
        # Litestar names after the handler's body argument: name the member instead.
        key = named.group(1)
    return FieldError(f"{source}.{key}" if key else source, message)


def validation_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, ValidationException)
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [_field_path(item) for item in extra]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or str(exc.detail)
    return problem_response(request, 422, "invalid_input", detail, errors)


def http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status >= 500:
        log.error("http_error", path=request.url.path, status=status, detail=exc.detail)
    code = HTTP_CODES.get(status, "client_error" if status < 500 else "server_error")
    detail = exc.detail if status < 500 else ""
    if status == 400 and "JSON" in exc.detail:
        code = "malformed_body"
    return problem_response(request, status, code, detail, headers=exc.headers)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
    return problem_response(request, 500, "internal_error")


EXCEPTION_HANDLERS = {
    DomainError: domain_error_handler,
    ValidationException: validation_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
