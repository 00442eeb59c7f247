"""Turning errors into JSON responses: `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

from starlette.responses import JSONResponse

from server.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthenticated,
)

_STATUS: dict[type[DomainError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Forbidden: 403,
    Unauthenticated: 401,
    Conflict: 409,
    RateLimited: 429,
}


class HttpError(DomainError):
    """A transport-level failure with its own status (bad JSON: 400, body
    too large: 413, wrong content type: 415)."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.status = status
        self.code = code


def error_response(exc: DomainError) -> JSONResponse:
    status = exc.status if isinstance(exc, HttpError) else _STATUS.get(type(exc), 400)
    body = {"error": {"code": exc.code, "message": exc.message, "field": exc.field}}
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return JSONResponse(body, status_code=status, headers=headers)


def json_error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return error_response(HttpError(status, code, message, field=field))
