"""GoTrue-shaped HTTP responses: JSON bodies, the session object and error rendering.

Every ``/auth/v1`` response carries ``X-Supabase-Api-Version: 2024-01-01``; with it the clients read
an error's string ``code`` (reference §3.4). Errors also carry ``x-sb-error-code``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import StatementError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wexlot.auth.tokens import Tokens
from wexlot.auth.users import Account, account_json
from wexlot.errors import AuthError

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION = "2024-01-01"

Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status, headers={API_VERSION_HEADER: API_VERSION, **(headers or {})})


def no_content() -> Response:
    return Response(status_code=204, headers={API_VERSION_HEADER: API_VERSION})


def error_response(exc: AuthError) -> JSONResponse:
    headers = {"x-sb-error-code": exc.code, **getattr(exc, "headers", {})}
    return json_response(exc.body(), exc.status, headers)


def session_json(tokens: Tokens, account: Account, session_id: str, refresh_token: str) -> dict[str, Any]:
    """The password/refresh grant answer (reference §3.2)."""
    user = account_json(account)
    access_token, expires_at = tokens.access_token(user, session_id)
    return {
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": tokens.expiry,
        "expires_at": expires_at,
        "refresh_token": refresh_token,
        "user": user,
    }


class DatabaseFailure(RuntimeError):
    """A database error with SQLAlchemy's parameter list removed from its message."""


def handles_auth_errors(endpoint: Endpoint) -> Endpoint:
    """Render an :class:`AuthError` raised by ``endpoint``; anything else stays a 500.

    SQLAlchemy puts a failed statement's parameters (password and refresh-token hashes here) into
    its error message, which the 500's logged traceback would print: such errors are re-raised
    with the statement and the driver's error class only.
    """

    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except AuthError as exc:
            return error_response(exc)
        except StatementError as exc:
            cause = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
            raise DatabaseFailure(f"{cause} in: {exc.statement}") from None

    wrapped.__name__ = endpoint.__name__
    wrapped.__doc__ = endpoint.__doc__
    return wrapped
