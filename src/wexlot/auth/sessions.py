"""Sessions and their refresh tokens: start, rotate with a reuse window, end.

One ``sessions`` row per sign-in; its id is the access token's ``session_id`` claim. A refresh token
is ``<random>.<session id hex>``: the random part is what makes it a secret, the suffix only lets
us say ``session_not_found`` (rather than "unknown token") after the session was signed out, whose
token rows went with it. Only the token's SHA-256 is stored.

Rotation (GoTrue's, supabase/auth ``internal/api/token_refresh.go``): exchanging a token revokes it
and issues a child. Exchanging an already revoked token again within ``reuse_interval`` seconds of
its revocation issues another child of it (two tabs refreshing at once both stay signed in; the
child already issued cannot be handed out again because only its hash is kept). Later than that it
is treated as a stolen token being replayed: the whole session is deleted and the caller answers
``refresh_token_already_used``.

Functions take a synchronous SQLAlchemy ``Connection``; async callers use
``await conn.run_sync(fn, ...)`` inside their one request transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, delete, insert, select, update

from wexlot.auth.tables import AuthTables, auth_tables

TOKEN_BYTES = 32
Scope = Literal["global", "local", "others"]
SCOPES: tuple[Scope, ...] = ("global", "local", "others")


@dataclass(frozen=True)
class TokenRow:
    token_hash: str
    user_id: str
    session_id: str
    revoked: bool
    updated_at: dt.datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(session_id: str) -> str:
    return f"{secrets.token_urlsafe(TOKEN_BYTES)}.{uuid.UUID(session_id).hex}"


def session_of(token: str) -> str | None:
    """The session id a well-formed refresh token names (not proof that it belongs to it)."""
    _, dot, tail = token.rpartition(".")
    if not dot or len(tail) != 32:
        return None
    try:
        return str(uuid.UUID(hex=tail))
    except ValueError:
        return None


def _tables(conn: Connection) -> AuthTables:
    return auth_tables(conn.dialect.name)


def start(
    conn: Connection, user_id: str, now: dt.datetime, user_agent: str | None = None, ip: str | None = None
) -> tuple[str, str]:
    """Create a session for ``user_id``; returns ``(session_id, refresh_token)``."""
    t = _tables(conn)
    session_id = str(uuid.uuid4())
    conn.execute(
        insert(t.sessions).values(
            id=session_id, user_id=user_id, created_at=now, updated_at=now, user_agent=user_agent, ip=ip
        )
    )
    return session_id, issue(conn, user_id, session_id, None, now)


def issue(conn: Connection, user_id: str, session_id: str, parent_hash: str | None, now: dt.datetime) -> str:
    token = new_token(session_id)
    conn.execute(
        insert(_tables(conn).refresh_tokens).values(
            token_hash=token_hash(token),
            user_id=user_id,
            session_id=session_id,
            parent_hash=parent_hash,
            revoked=False,
            created_at=now,
            updated_at=now,
        )
    )
    return token


def lookup(conn: Connection, token: str) -> TokenRow | None:
    """The stored token, locked for this transaction (two refreshes of one token take turns)."""
    rt = _tables(conn).refresh_tokens
    row = conn.execute(
        select(rt.c.token_hash, rt.c.user_id, rt.c.session_id, rt.c.revoked, rt.c.updated_at)
        .where(rt.c.token_hash == token_hash(token))
        .with_for_update()
    ).first()
    return (
        None
        if row is None
        else TokenRow(row.token_hash, row.user_id, row.session_id, bool(row.revoked), row.updated_at)
    )


def rotate(conn: Connection, row: TokenRow, now: dt.datetime, reuse_interval: float) -> str | None:
    """Exchange ``row``'s token for a new one; None when it was replayed too late (session deleted)."""
    t = _tables(conn)
    if row.revoked:
        if (now - row.updated_at).total_seconds() > reuse_interval:
            conn.execute(delete(t.sessions).where(t.sessions.c.id == row.session_id))
            return None
    else:
        conn.execute(
            update(t.refresh_tokens)
            .where(t.refresh_tokens.c.token_hash == row.token_hash)
            .values(revoked=True, updated_at=now)
        )
    conn.execute(update(t.sessions).where(t.sessions.c.id == row.session_id).values(updated_at=now))
    return issue(conn, row.user_id, row.session_id, row.token_hash, now)


def exists(conn: Connection, session_id: str | None, user_id: str | None = None) -> bool:
    """Whether the session exists (and, when ``user_id`` is given, belongs to that user)."""
    if not session_id:
        return False
    try:
        uuid.UUID(str(session_id))
    except ValueError:
        return False
    s = _tables(conn).sessions
    query = select(s.c.id).where(s.c.id == str(session_id))
    if user_id is not None:
        query = query.where(s.c.user_id == user_id)
    return conn.execute(query).first() is not None


def end(conn: Connection, user_id: str, session_id: str | None, scope: Scope) -> int:
    """Delete sessions (their tokens follow by cascade): all, this one, or all but this one."""
    s = _tables(conn).sessions
    stmt = delete(s).where(s.c.user_id == user_id)
    if scope == "local":
        stmt = stmt.where(s.c.id == session_id)
    elif scope == "others" and session_id:
        stmt = stmt.where(s.c.id != session_id)
    return conn.execute(stmt).rowcount
