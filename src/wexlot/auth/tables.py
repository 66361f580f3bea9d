"""Auth tables, kept apart from the CRM tables: schema ``auth`` on PostgreSQL, ``auth_*`` on SQLite.

Refresh tokens are stored only as SHA-256 hashes, so a database dump does not hand out sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Integer, MetaData, Table, Text
from sqlalchemy.dialects import postgresql

from wexlot.crm.types import Flag, Timestamp, UUIDText

_json = JSON().with_variant(postgresql.JSONB(), "postgresql")


@dataclass(frozen=True)
class AuthTables:
    users: Table
    sessions: Table
    refresh_tokens: Table


def _build(schema: str | None, prefix: str) -> AuthTables:
    md = MetaData(schema=schema)
    users = Table(
        f"{prefix}users",
        md,
        Column("id", UUIDText(), primary_key=True),
        Column("email", Text(), nullable=False, unique=True),
        Column("encrypted_password", Text()),
        Column("role", Text(), nullable=False),
        Column("aud", Text(), nullable=False),
        Column("app_metadata", _json, nullable=False),
        Column("user_metadata", _json, nullable=False),
        Column("email_confirmed_at", Timestamp()),
        Column("last_sign_in_at", Timestamp()),
        Column("banned_until", Timestamp()),
        Column("created_at", Timestamp(), nullable=False),
        Column("updated_at", Timestamp(), nullable=False),
    )
    sessions = Table(
        f"{prefix}sessions",
        md,
        Column("id", UUIDText(), primary_key=True),
        Column("user_id", UUIDText(), ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
        Column("created_at", Timestamp(), nullable=False),
        Column("updated_at", Timestamp(), nullable=False),
        Column("user_agent", Text()),
        Column("ip", Text()),
    )
    refresh_tokens = Table(
        f"{prefix}refresh_tokens",
        md,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
        Column("token_hash", Text(), nullable=False, unique=True),
        Column("user_id", UUIDText(), ForeignKey(users.c.id, ondelete="CASCADE"), nullable=False),
        Column("session_id", UUIDText(), ForeignKey(sessions.c.id, ondelete="CASCADE"), nullable=False),
        Column("parent_hash", Text()),
        Column("revoked", Flag(), nullable=False),
        Column("created_at", Timestamp(), nullable=False),
        Column("updated_at", Timestamp(), nullable=False),
    )
    return AuthTables(users, sessions, refresh_tokens)


_POSTGRES = _build("auth", "")
_SQLITE = _build(None, "auth_")


def auth_tables(dialect: str) -> AuthTables:
    return _POSTGRES if dialect == "postgresql" else _SQLITE
