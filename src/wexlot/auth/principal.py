"""From request credentials to a :class:`~wexlot.crm.access.Principal`.

The ``apikey`` header (or query parameter) must be one of our two API keys, as Supabase's gateway
requires; the ``Authorization`` bearer decides who the caller is. A signed-in user's role and
active flag come from their ``staff`` row, read fresh in the request's own transaction so a
deactivation takes effect on the very next request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from wexlot.auth.tables import auth_tables
from wexlot.auth.tokens import TokenError, Tokens
from wexlot.crm.access import ANON, SERVICE, Principal
from wexlot.crm.tables import staff
from wexlot.errors import ApiError


def api_key_role(tokens: Tokens, key: str | None) -> str | None:
    """``anon``/``service_role`` when ``key`` is one of our API keys, else None."""
    if not key:
        return None
    if key == tokens.anon_key:
        return "anon"
    if key == tokens.service_key:
        return "service_role"
    return None


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def principal_for(conn: AsyncConnection, claims: Mapping[str, Any]) -> Principal:
    role = claims.get("role")
    if role == "service_role":
        return SERVICE
    if role != "authenticated":
        return ANON
    user_id = str(claims.get("sub") or "")
    session_id = claims.get("session_id")
    row = None
    if user_id and session_id:
        # A token of a signed-out session is worth nothing (GoTrue refuses it too); checked in the same statement.
        sessions = sessions_of(conn)
        alive = exists(select(sessions.c.id).where(sessions.c.id == str(session_id))).label("alive")
        query = select(staff.c.id, staff.c.role, staff.c.is_active, alive).where(staff.c.user_id == user_id)
        row = (await conn.execute(query)).first()
        if row is not None and not row.alive:
            row = None
    return Principal(
        role="authenticated",
        user_id=user_id or None,
        staff_id=row.id if row else None,
        staff_role=row.role if row else None,
        active=bool(row and row.is_active),
        email=claims.get("email"),
        session_id=session_id,
    )


def sessions_of(conn: AsyncConnection) -> Any:
    return auth_tables(conn.dialect.name).sessions


async def live_sessions(conn: AsyncConnection, user_id: str) -> set[str]:
    """The ids of ``user_id``'s sessions that still exist."""
    table = sessions_of(conn)
    return {str(r.id) for r in await conn.execute(select(table.c.id).where(table.c.user_id == user_id))}


def credentials(tokens: Tokens, headers: Mapping[str, str], params: list[tuple[str, str]]) -> dict[str, Any]:
    """The gateway's apikey check, then the bearer token's claims (or the key's role).

    Errors are PostgREST-shaped (401 PGRST301/PGRST303), as REST and the realtime HTTP API answer.
    """
    key = headers.get("apikey") or next((v for k, v in params if k == "apikey"), None)
    if not key:
        raise ApiError(401, "PGRST301", "No API key found in request",
                       hint="No `apikey` request header or url param was found.")  # fmt: skip
    role = api_key_role(tokens, key)
    if role is None:
        raise ApiError(401, "PGRST301", "Invalid API key", hint="Double check your `anon` or `service_role` API key.")
    token = bearer(headers)
    if token is None:
        return {"role": role}
    try:
        return tokens.decode(token)
    except TokenError as exc:
        code = "PGRST303" if exc.reason == "expired" else "PGRST301"
        raise ApiError(
            401, code, exc.message,
            headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.message}"'},
        ) from None  # fmt: skip
