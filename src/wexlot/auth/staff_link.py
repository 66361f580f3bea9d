"""Creating, linking and updating the ``staff`` row of a login, per the convention in :mod:`wexlot.auth.users`.

The server writes its own bookkeeping on SQLite (version, updated_at, updated_by) so that the staff
table's AFTER trigger stays quiet; PostgreSQL's BEFORE trigger sets the same values anyway.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError

from wexlot.crm.tables import ROLES, staff
from wexlot.errors import AuthError


@dataclass(frozen=True)
class StaffSpec:
    """What a request asks of the staff row: a name and/or a role (None = not sent)."""

    full_name: str | None = None
    role: str | None = None


def email_exists() -> AuthError:
    return AuthError(422, "email_exists", "A user with this email address has already been registered")


def invalid(message: str, status: int = 422) -> AuthError:
    return AuthError(status, "validation_failed", message)


def staff_spec(user_metadata: Mapping[str, Any] | None, app_metadata: Mapping[str, Any] | None) -> StaffSpec:
    """The staff request carried by admin metadata: role and name, validated (None = not sent)."""
    user_metadata = user_metadata or {}
    app_metadata = app_metadata or {}
    role = app_metadata.get("role") or user_metadata.get("role")
    if role is not None and role not in ROLES:
        raise invalid(f"role must be one of {', '.join(ROLES)}")
    return StaffSpec(full_name=name_in(user_metadata), role=role)


def name_in(user_metadata: Mapping[str, Any]) -> str | None:
    name = user_metadata.get("full_name") or user_metadata.get("name")
    if name is None:
        return None
    return str(name).strip() or None


def link(
    conn: Connection,
    user_id: str,
    email: str,
    spec: StaffSpec,
    actor: str | None,
    now: dt.datetime,
    claim_existing: bool = True,
) -> str | None:
    """Link the unlinked staff row with this email, or create one; returns its id (None: no row).

    ``claim_existing=False`` refuses (``email_exists``) instead of linking an existing row.
    """
    existing = conn.execute(
        select(staff.c.id, staff.c.user_id).where(func.lower(staff.c.email) == email.lower())
    ).first()
    if existing is not None:
        if not claim_existing or (existing.user_id is not None and existing.user_id != user_id):
            raise email_exists()
        changes: dict[str, Any] = {"user_id": user_id}
        changes.update({k: v for k, v in (("role", spec.role), ("full_name", spec.full_name)) if v})
        update(conn, existing.id, changes, actor, now)
        return str(existing.id)
    if not (spec.full_name and spec.role):
        return None
    staff_id = str(uuid.uuid4())
    try:
        conn.execute(
            insert(staff).values(
                id=staff_id,
                user_id=user_id,
                full_name=spec.full_name,
                email=email,
                role=spec.role,
                is_active=True,
                created_at=now,
                updated_at=now,
                version=1,
                updated_by=actor,
            )
        )
    except IntegrityError:  # a concurrent insert took the email
        raise email_exists() from None
    return staff_id


def update(conn: Connection, staff_id: str, changes: dict[str, Any], actor: str | None, now: dt.datetime) -> None:
    bookkeeping = {"version": staff.c.version + 1, "updated_at": now, "updated_by": actor}
    try:
        conn.execute(sql_update(staff).where(staff.c.id == staff_id).values(**changes, **bookkeeping))
    except IntegrityError:
        raise email_exists() from None
