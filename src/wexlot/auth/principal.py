"""From request credentials to a :class:`~wexlot.crm.access.Principal`.

The ``apikey`` header (or query parameter) must be one of our two API keys, as Supabase's gateway
requires; the ``Authorization`` bearer decides who the caller is. A signed-in user's role and
active flag come from their ``staff`` row, read fresh in the request's own transaction so a
deactivation takes effect on the very next request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from wexlot.auth.tokens import Tokens
from wexlot.crm.access import ANON, SERVICE, Principal
from wexlot.crm.tables import staff


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
    row = (
        (
            await conn.execute(select(staff.c.id, staff.c.role, staff.c.is_active).where(staff.c.user_id == user_id))
        ).first()
        if user_id
        else None
    )
    return Principal(
        role="authenticated",
        user_id=user_id or None,
        staff_id=row.id if row else None,
        staff_role=row.role if row else None,
        active=bool(row and row.is_active),
        email=claims.get("email"),
        session_id=claims.get("session_id"),
    )
