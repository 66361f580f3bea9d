"""Who is calling ``/auth/v1``: the ``apikey`` gate, the bearer token, the signed-in account, admins.

The ``apikey`` (header in any case, or query parameter) must be our anon or service_role key, as
Supabase's gateway requires; the ``Authorization`` bearer decides identity. A user token is only
good while its session exists (GoTrue rejects tokens of signed-out sessions with 403
``session_not_found``). Admin routes take the service_role key or the token of an active ``admin``
staff member, so the web app's staff page never needs the service key.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request

from wexlot.auth import sessions, users
from wexlot.auth.principal import api_key_role, bearer
from wexlot.auth.tokens import TokenError, Tokens
from wexlot.auth.users import Account
from wexlot.errors import AuthError

Claims = dict[str, Any]


def require_api_key(request: Request, tokens: Tokens) -> str:
    """The key's role (``anon``/``service_role``); 401 when the key is missing or not ours."""
    key = request.headers.get("apikey") or request.query_params.get("apikey")
    if not key:
        raise AuthError(
            401,
            "no_api_key",
            "No API key found in request",
            {"hint": "No `apikey` request header or url param was found."},
        )
    role = api_key_role(tokens, key)
    if role is None:
        raise AuthError(
            401, "invalid_api_key", "Invalid API key", {"hint": "Double check your `anon` or `service_role` API key."}
        )
    return role


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}``."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise AuthError(400, "bad_json", "Could not parse request body as JSON") from None
    if not isinstance(body, dict):
        raise AuthError(400, "bad_json", "Request body must be a JSON object")
    return body


def bearer_claims(request: Request, tokens: Tokens) -> Claims:
    token = bearer(request.headers)
    if token is None:
        raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    try:
        return tokens.decode(token)
    except TokenError as exc:
        raise bad_jwt(exc.message) from None


def bad_jwt(reason: str) -> AuthError:
    return AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {reason}")


def user_banned() -> AuthError:
    return AuthError(400, "user_banned", "User is banned")


def signed_in(conn: Connection, claims: Claims) -> Account:
    """The account behind a user token whose session still exists (run inside the request's transaction)."""
    subject = claims.get("sub")
    if claims.get("role") != "authenticated" or not subject:
        raise bad_jwt("invalid claim: missing sub claim")
    try:
        subject = str(uuid.UUID(str(subject)))
    except ValueError:
        raise bad_jwt("invalid claim: sub claim must be a UUID") from None
    if not sessions.exists(conn, claims.get("session_id"), subject):
        raise AuthError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
    account = users.get(conn, subject)
    if account is None:
        raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
    return account


def admin_actor(conn: Connection, claims: Claims) -> str | None:
    """None for the service key, the staff id of an active admin; else 403 ``not_admin``."""
    role = claims.get("role")
    if role == "service_role":
        return None
    if role == "authenticated":
        account = signed_in(conn, claims)
        link = account.staff
        if link is not None and link.role == "admin" and not account.banned(users.now_utc()):
            return link.id
    raise AuthError(403, "not_admin", "User not allowed")


def client_address(request: Request) -> str:
    # uvicorn has already applied X-Forwarded-For from trusted proxies (WEXLOT_TRUSTED_PROXIES).
    return request.client.host if request.client else "unknown"
