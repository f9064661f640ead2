"""The service's errors: each carries its HTTP status, and one handler turns it into JSON.

Every error body has the same shape, `{"error": {"status", "code", "message"}}`, with a
message that says what was wrong and what to do.
"""

from __future__ import annotations

import sqlite3

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .storage_errors import storage_problem

# A write the server's disk would not take: the client can say so and try again later.
NOT_SAVED = "Nothing of this request was saved: try again once the server's disk has room"


class ApiError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        # A specific code (e.g. "empty_query") lets a client say it in its own language.
        if code:
            self.code = code


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unauthorized(ApiError):
    """No token, or one nobody was given: the request changes the store."""

    status = 401
    code = "token_required"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class TooLarge(ApiError):
    status = 413
    code = "too_large"


class BadGateway(ApiError):
    """Another server, one an item's picture comes from, failed to answer."""

    status = 502
    code = "bad_gateway"


def error_body(status: int, code: str, message: str) -> dict:
    return {"error": {"status": status, "code": code, "message": message}}


def _describe_problem(problem: dict) -> str:
    where = ".".join(str(p) for p in problem.get("loc", ()) if p not in ("query", "path"))
    said = problem.get("msg", "invalid")
    given = problem.get("input")
    # The value as sent ("k: ... integer (got 'abc')"): one look shows what to change.
    if isinstance(given, str):
        said += f" (got {given[:50]!r})"
    return f"{where}: {said}" if where else said


def _describe_validation(error: RequestValidationError) -> str:
    return "invalid request: " + "; ".join(map(_describe_problem, error.errors()))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        # A 401 names the scheme its token goes in (RFC 9110): Authorization: Bearer TOKEN.
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(
            error_body(error.status, error.code, error.message), error.status, headers=headers
        )

    @app.exception_handler(sqlite3.Error)
    @app.exception_handler(OSError)
    async def storage_error(_: Request, error: Exception) -> JSONResponse:
        problem = storage_problem(error, None, then=NOT_SAVED)
        if problem is None:
            raise error  # not the disk: a 500, as any other fault
        return JSONResponse(error_body(507, "storage_full", problem), 507)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(422, "invalid_request", _describe_validation(error)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = str(error.detail)
        if error.status_code == 404:
            path = request.url.path
            message = f"no such page: {path} (the API lives under /api, described at /openapi.json)"
        return JSONResponse(error_body(error.status_code, "http_error", message), error.status_code)
