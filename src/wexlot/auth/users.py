"""Auth users, the staff rows that give them a CRM role, and GoTrue's user JSON.

A login (``auth.users`` / ``auth_users``) becomes a member of staff through the ``staff`` row whose
``user_id`` is the login's id; that row alone decides the CRM role and whether the person may do
anything at all (``is_active``). Deleting a login sets ``staff.user_id`` to NULL (foreign key) and
keeps the staff row for history.

Staff-row convention for admin ``createUser`` / ``updateUserById`` (``/auth/v1/admin/users``), which
the web app uses to invite colleagues (implemented in :mod:`wexlot.auth.staff_link`):

* the role is ``app_metadata.role``, else ``user_metadata.role``; it must be ``admin``, ``manager``
  or ``rep`` (anything else is 422 ``validation_failed``);
* the name is ``user_metadata.full_name``, else ``user_metadata.name``;
* if a staff row with the login's email (case-insensitive) exists and has no login yet, it is
  linked (and given the role/name when they were sent); one linked to another login is 422
  ``email_exists``;
* otherwise, when both a name and a role were sent, a new active staff row is created;
* otherwise the login has no staff row: it can sign in but the CRM shows it nothing.

On update the same keys, when sent, change the linked staff row's role and name; a login without a
staff row gets one (created or linked as above) when a role is sent, named from the request or the
stored ``user_metadata``. Changing a login's email changes its staff row's email too.

Self sign-up (``POST /auth/v1/signup``, only when ``WEXLOT_SIGNUP_ENABLED``) creates an active
``rep`` named from ``data.full_name``/``data.name`` (else the email's local part) and never links an
existing staff row, since nobody verified the email: a staff email that exists is refused.

The top-level GoTrue ``role`` attribute (the JWT role) is ignored: every user token says
``authenticated``. In the user JSON, ``app_metadata.role`` is always the linked staff row's role
(absent without one), whatever was stored. A user's own ``PUT /auth/v1/user`` never touches staff.

For the CLI and the demo loader (synchronous code)::

    with users.transaction(settings.db_url) as conn:
        account = users.create_staff_user(conn, "ann@example.com", "pw", "admin", "Ann Admin")
        users.list_accounts(conn)
        users.set_password(conn, "ann@example.com", "new password")

Every function takes a synchronous SQLAlchemy ``Connection``; async code calls them with
``await conn.run_sync(fn, ...)`` inside its own transaction. Password hashing happens outside these
functions on the server (it is slow), so the lower-level ones take ``password_hash``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from wexlot.auth import passwords, sessions, staff_link
from wexlot.auth.staff_link import StaffSpec, email_exists, invalid, name_in, staff_spec
from wexlot.auth.tables import AuthTables, auth_tables
from wexlot.crm.tables import ROLES, staff
from wexlot.errors import AuthError
from wexlot.storage.engine import sync_engine

AUD = "authenticated"
DERIVED_APP_METADATA = ("provider", "providers", "role")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
UNSET: Any = object()  # "argument not given" where None is a value


@dataclass(frozen=True)
class UserRow:
    id: str
    email: str
    encrypted_password: str | None = field(repr=False)
    app_metadata: dict[str, Any]
    user_metadata: dict[str, Any]
    email_confirmed_at: dt.datetime | None
    last_sign_in_at: dt.datetime | None
    banned_until: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class StaffLink:
    id: str
    full_name: str
    role: str
    is_active: bool


@dataclass(frozen=True)
class Account:
    """A login plus its staff row (None when it has none)."""

    user: UserRow
    staff: StaffLink | None

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def email(self) -> str:
        return self.user.email

    def banned(self, now: dt.datetime) -> bool:
        """An inactive staff member, or a login banned through the admin API, may do nothing."""
        if self.staff is not None and not self.staff.is_active:
            return True
        return self.user.banned_until is not None and self.user.banned_until > now


# --- errors --------------------------------------------------------------------------------------


def user_not_found() -> AuthError:
    return AuthError(404, "user_not_found", "User not found")


# --- pure helpers --------------------------------------------------------------------------------


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def normalize_email(value: Any) -> str:
    email = str(value or "").strip().lower()
    if not email or len(email) > 255 or not _EMAIL.match(email):
        raise AuthError(400, "email_address_invalid", "Unable to validate email address: invalid format")
    return email


def merge_metadata(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """GoTrue's update rule: each key is set, and a key sent as null is removed."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def stored_app_metadata(app_metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in app_metadata.items() if k not in DERIVED_APP_METADATA}


def iso(stamp: dt.datetime | None) -> str | None:
    if stamp is None:
        return None
    return stamp.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def account_json(account: Account) -> dict[str, Any]:
    """GoTrue's user object (reference §3.2): what /user, admin calls and sessions return."""
    user = account.user
    app_metadata: dict[str, Any] = {"provider": "email", "providers": ["email"]}
    app_metadata.update(stored_app_metadata(user.app_metadata))
    if account.staff is not None:
        app_metadata["role"] = account.staff.role
    body: dict[str, Any] = {
        "id": user.id,
        "aud": AUD,
        "role": "authenticated",
        "email": user.email,
        "email_confirmed_at": iso(user.email_confirmed_at),
        "phone": "",
        "confirmed_at": iso(user.email_confirmed_at),
        "last_sign_in_at": iso(user.last_sign_in_at),
        "app_metadata": app_metadata,
        "user_metadata": dict(user.user_metadata),
        "identities": [],
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
        "is_anonymous": False,
    }
    if user.banned_until is not None:
        body["banned_until"] = iso(user.banned_until)
    return body


# --- reads ---------------------------------------------------------------------------------------


def _tables(conn: Connection) -> AuthTables:
    return auth_tables(conn.dialect.name)


def _account_query(t: AuthTables) -> Select[Any]:
    u = t.users
    return select(
        u,
        staff.c.id.label("staff_id"),
        staff.c.full_name.label("staff_full_name"),
        staff.c.role.label("staff_role"),
        staff.c.is_active.label("staff_is_active"),
    ).select_from(u.outerjoin(staff, staff.c.user_id == u.c.id))


def _account(row: Row[Any]) -> Account:
    user = UserRow(
        id=row.id,
        email=row.email,
        encrypted_password=row.encrypted_password,
        app_metadata=dict(row.app_metadata or {}),
        user_metadata=dict(row.user_metadata or {}),
        email_confirmed_at=row.email_confirmed_at,
        last_sign_in_at=row.last_sign_in_at,
        banned_until=row.banned_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
    link = None
    if row.staff_id is not None:
        link = StaffLink(row.staff_id, row.staff_full_name, row.staff_role, bool(row.staff_is_active))
    return Account(user, link)


def get(conn: Connection, user_id: str) -> Account | None:
    try:
        user_id = str(uuid.UUID(str(user_id)))
    except ValueError:
        return None
    t = _tables(conn)
    row = conn.execute(_account_query(t).where(t.users.c.id == user_id)).first()
    return None if row is None else _account(row)


def by_email(conn: Connection, email: str) -> Account | None:
    t = _tables(conn)
    row = conn.execute(_account_query(t).where(t.users.c.email == email.strip().lower())).first()
    return None if row is None else _account(row)


def page(conn: Connection, number: int, per_page: int, email_filter: str = "") -> tuple[list[Account], int]:
    """One page (1-based) of users, newest first, and the total count (GoTrue's order)."""
    t = _tables(conn)
    query = _account_query(t)
    count = select(func.count()).select_from(t.users)
    if email_filter:
        match = func.lower(t.users.c.email).contains(email_filter.lower(), autoescape=True)
        query, count = query.where(match), count.where(match)
    total = conn.execute(count).scalar_one()
    rows = conn.execute(
        query.order_by(t.users.c.created_at.desc(), t.users.c.id).limit(per_page).offset((number - 1) * per_page)
    ).all()
    return [_account(r) for r in rows], int(total)


# --- writes --------------------------------------------------------------------------------------


def create(
    conn: Connection,
    email: str,
    password_hash: str | None,
    *,
    user_metadata: Mapping[str, Any] | None = None,
    app_metadata: Mapping[str, Any] | None = None,
    spec: StaffSpec | None = None,
    link_existing_staff: bool = True,
    actor: str | None = None,
    banned_until: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Account:
    """Insert a login (email auto-confirmed) and create or link its staff row per ``spec``.

    ``link_existing_staff=False`` (self sign-up, whose email nobody has verified) never attaches
    the login to an existing staff row: a clash with a staff email is ``email_exists`` instead.
    """
    now = now or now_utc()
    email = normalize_email(email)
    t = _tables(conn)
    if conn.execute(select(t.users.c.id).where(t.users.c.email == email)).first() is not None:
        raise email_exists()
    user_id = str(uuid.uuid4())
    try:
        conn.execute(
            insert(t.users).values(
                id=user_id,
                email=email,
                encrypted_password=password_hash,
                role="authenticated",
                aud=AUD,
                app_metadata=stored_app_metadata(app_metadata or {}),
                user_metadata=dict(user_metadata or {}),
                email_confirmed_at=now,
                banned_until=banned_until,
                created_at=now,
                updated_at=now,
            )
        )
    except IntegrityError:  # a concurrent request took the email between the check and the insert
        raise email_exists() from None
    staff_link.link(conn, user_id, email, spec or StaffSpec(), actor, now, link_existing_staff)
    account = get(conn, user_id)
    assert account is not None
    return account


def update_user(
    conn: Connection,
    account: Account,
    *,
    email: str | None = None,
    password_hash: str | None = None,
    user_metadata: Mapping[str, Any] | None = None,
    app_metadata: Mapping[str, Any] | None = None,
    banned_until: dt.datetime | None = UNSET,
    spec: StaffSpec | None = None,
    actor: str | None = None,
    now: dt.datetime | None = None,
) -> Account:
    """Apply the given changes (metadata merged as GoTrue does) and, when ``spec`` asks, the staff row."""
    now = now or now_utc()
    t = _tables(conn)
    values: dict[str, Any] = {"updated_at": now}
    if email is not None:
        email = normalize_email(email)
        if email != account.email:
            taken = conn.execute(select(t.users.c.id).where(t.users.c.email == email)).first()
            if taken is not None:
                raise email_exists()
            values["email"] = email
    if password_hash is not None:
        values["encrypted_password"] = password_hash
    if user_metadata is not None:
        values["user_metadata"] = merge_metadata(account.user.user_metadata, user_metadata)
    if app_metadata is not None:
        values["app_metadata"] = stored_app_metadata(merge_metadata(account.user.app_metadata, app_metadata))
    if banned_until is not UNSET:
        values["banned_until"] = banned_until
    try:
        conn.execute(update(t.users).where(t.users.c.id == account.id).values(**values))
    except IntegrityError:
        raise email_exists() from None
    if "email" in values and account.staff is not None:
        staff_link.update(conn, account.staff.id, {"email": values["email"]}, actor, now)
    if spec is not None and account.staff is not None:
        changes = {k: v for k, v in (("role", spec.role), ("full_name", spec.full_name)) if v}
        if changes:
            staff_link.update(conn, account.staff.id, changes, actor, now)
    elif spec is not None and spec.role:
        name = spec.full_name or name_in(values.get("user_metadata", account.user.user_metadata))
        email_now = values.get("email", account.email)
        if staff_link.link(conn, account.id, email_now, StaffSpec(name, spec.role), actor, now) is None:
            raise invalid("A staff role needs user_metadata.full_name (or name) to create the staff row")
    updated = get(conn, account.id)
    assert updated is not None
    return updated


def delete_user(conn: Connection, user_id: str) -> bool:
    """Delete a login; its sessions go with it and its staff row stays, unlinked."""
    t = _tables(conn)
    return conn.execute(delete(t.users).where(t.users.c.id == user_id)).rowcount > 0


def record_sign_in(conn: Connection, user_id: str, now: dt.datetime, new_hash: str | None = None) -> None:
    t = _tables(conn)
    values: dict[str, Any] = {"last_sign_in_at": now, "updated_at": now}
    if new_hash is not None:
        values["encrypted_password"] = new_hash
    conn.execute(update(t.users).where(t.users.c.id == user_id).values(**values))


# --- conveniences for the CLI and the demo loader ----------------------------------------------------


@contextmanager
def transaction(url: str) -> Iterator[Connection]:
    """A synchronous connection in one transaction (committed on normal exit) to ``url``."""
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def create_staff_user(
    conn: Connection, email: str, password: str, role: str, full_name: str, *, actor: str | None = None
) -> Account:
    """A login plus its active staff row (or the existing unlinked staff row with that email)."""
    if role not in ROLES:
        raise invalid(f"role must be one of {', '.join(ROLES)}")
    if not full_name.strip():
        raise invalid("the full name must not be empty")
    passwords.check_strength(password)
    account = create(
        conn,
        email,
        passwords.hash_password(password),
        user_metadata={"full_name": full_name.strip()},
        spec=StaffSpec(full_name.strip(), role),
        actor=actor,
    )
    if account.staff is None:  # pragma: no cover - the spec above always yields a row
        raise invalid("no staff row was created")
    return account


def list_accounts(conn: Connection) -> list[Account]:
    """Every login with its staff role and active flag, by email."""
    t = _tables(conn)
    return [_account(r) for r in conn.execute(_account_query(t).order_by(t.users.c.email)).all()]


def set_password(conn: Connection, email: str, password: str) -> int:
    """Give the login ``email`` a new password and sign it out everywhere; returns the sessions ended."""
    account = by_email(conn, email)
    if account is None:
        raise user_not_found()
    passwords.check_strength(password)
    update_user(conn, account, password_hash=passwords.hash_password(password))
    return sessions.end(conn, account.id, None, "global")


__all__ = [
    "Account",
    "StaffLink",
    "StaffSpec",
    "UserRow",
    "account_json",
    "by_email",
    "create",
    "create_staff_user",
    "delete_user",
    "email_exists",
    "get",
    "invalid",
    "list_accounts",
    "name_in",
    "page",
    "set_password",
    "staff_spec",
    "transaction",
    "update_user",
    "user_not_found",
]
