"""The one shape of every error answer, ``{status_code, detail, errors: [{field, reason}], request_id}``, and the
exception handlers that render ``ApiError``, Litestar's ``HTTPException`` and any bug into it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

if TYPE_CHECKING:
    from election_api.asgi import ElectionApi

log = logging.getLogger("election_api.app")


class FieldError(msgspec.Struct):
    field: str
    reason: str


class ErrorBody(msgspec.Struct, omit_defaults=True):
    status_code: int
    detail: str
    errors: list[FieldError] = []
    request_id: str | None = None


@dataclass
class ApiError(Exception):
    """A client or availability error rendered as ``ErrorBody``."""

    status_code: int
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] | None = None

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"


def _request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def _error_response(request: Request, status: int, detail: str, errors: list[FieldError], headers=None) -> Response:
    return Response(
        content=ErrorBody(status, detail, errors, _request_id(request)),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _api_error_handler(request: Request, error: ApiError) -> Response:
    return _error_response(request, error.status_code, error.detail, error.errors, error.headers)


def _error_for_status(request: Request[Any, Any, Any], status: int, detail: str) -> FieldError:
    if status == 413:
        app: ElectionApi = request.app  # type: ignore[assignment]
        limit = app.settings.max_body_bytes
        return FieldError("$", f"request body is larger than {limit} bytes (ELECTION_API_MAX_BODY_BYTES)")
    if status == 404:
        return FieldError("path", f"no route {request.scope.get('path', '')!r}; the routes are listed at /")
    if status == 405:
        return FieldError("method", f"{request.method} is not allowed on {request.scope.get('path', '')!r}")
    return FieldError("$", detail)


def _http_exception_handler(request: Request, error: HTTPException) -> Response:
    errors: list[FieldError] = []
    if isinstance(error, ValidationException) and isinstance(error.extra, list):
        for item in error.extra:
            if isinstance(item, dict):
                errors.append(FieldError(str(item.get("key", "$")), str(item.get("message", error.detail))))
    status = error.status_code
    if not errors:  # every error body names what was wrong and why, not only the status
        errors.append(_error_for_status(request, status, str(error.detail)))
    if status >= 500:
        log.error("server error", extra={"event": "server_error", "request_id": _request_id(request)})
    headers = dict(error.headers) if error.headers else None
    return _error_response(request, status, str(error.detail), errors, headers)


def _unexpected_error_handler(request: Request, error: Exception) -> Response:
    # A bug, not bad input (every bad input is an ApiError or HTTPException): logged with its traceback.
    log.exception(
        "unhandled error", exc_info=error, extra={"event": "unhandled_error", "request_id": _request_id(request)}
    )
    return _error_response(request, 500, "internal server error; see the server log for this request id", [])


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    ApiError: _api_error_handler,
    HTTPException: _http_exception_handler,
    Exception: _unexpected_error_handler,
}
