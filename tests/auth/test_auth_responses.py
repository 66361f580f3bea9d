"""Rendering: GoTrue error shape and headers, and database errors that must not log parameters."""

from __future__ import annotations

import traceback

import pytest
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response

from wexlot.auth.ratelimit import RateLimited
from wexlot.auth.responses import DatabaseFailure, error_response, handles_auth_errors
from wexlot.errors import AuthError


def test_error_response_shape_and_headers() -> None:
    r = error_response(AuthError(400, "invalid_credentials", "Invalid login credentials"))
    assert r.status_code == 400
    assert r.headers["x-supabase-api-version"] == "2024-01-01"
    assert r.headers["x-sb-error-code"] == "invalid_credentials"
    assert r.body == (
        b'{"code":"invalid_credentials","error_code":"invalid_credentials",'
        b'"msg":"Invalid login credentials","message":"Invalid login credentials"}'
    )
    assert error_response(RateLimited(12.2)).headers["retry-after"] == "13"


@pytest.mark.asyncio
async def test_database_errors_lose_their_parameters() -> None:
    secret = "$argon2id$v=19$m=65536,t=3,p=4$c2VjcmV0$hash"

    async def failing(request: Request) -> Response:
        raise IntegrityError("INSERT INTO auth_users (encrypted_password) VALUES (?)", (secret,), ValueError("boom"))

    with pytest.raises(DatabaseFailure) as caught:
        await handles_auth_errors(failing)(Request({"type": "http", "method": "POST", "headers": []}))
    logged = "".join(traceback.format_exception(caught.value))
    assert "INSERT INTO auth_users" in logged and "ValueError" in logged
    assert secret not in logged
