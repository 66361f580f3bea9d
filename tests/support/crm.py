"""Test helpers: a signed-in staff member without going through the auth API.

Inserts the auth user and its staff row with the sync engine (as an admin tool would) and mints an
access token with the server's own token service, so REST tests do not depend on /auth/v1.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert

from wexlot.auth.tables import auth_tables
from wexlot.auth.tokens import Tokens
from wexlot.crm.tables import staff
from wexlot.storage.engine import dialect_of, sync_engine


@dataclass(frozen=True)
class Login:
    user_id: str
    staff_id: str
    email: str
    role: str
    token: str


def make_login(url: str, tokens: Tokens, role: str, *, active: bool = True, name: str | None = None) -> Login:
    user_id, staff_id = str(uuid.uuid4()), str(uuid.uuid4())
    email = f"{role}-{user_id[:8]}@test.wexlot"
    now = dt.datetime.now(dt.UTC)
    users = auth_tables(dialect_of(url)).users
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(users).values(
                    id=user_id, email=email, role="authenticated", aud="authenticated", app_metadata={},
                    user_metadata={}, created_at=now, updated_at=now, email_confirmed_at=now,
                )
            )  # fmt: skip
            conn.execute(
                insert(staff).values(
                    id=staff_id, user_id=user_id, full_name=name or f"{role.title()} {user_id[:4]}", email=email,
                    role=role, is_active=active,
                )
            )  # fmt: skip
    finally:
        engine.dispose()
    session_id = str(uuid.uuid4())
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:  # a real session, as a sign-in creates: tokens of ended sessions are refused
            conn.execute(insert(auth_tables(dialect_of(url)).sessions).values(
                id=session_id, user_id=user_id, created_at=now, updated_at=now))  # fmt: skip
    finally:
        engine.dispose()
    token, _ = tokens.access_token({"id": user_id, "email": email}, session_id=session_id)
    return Login(user_id, staff_id, email, role, token)


OBJECT = "application/vnd.pgrst.object+json"


def seed(rest: Any) -> dict[str, Any]:
    """A small, fixed CRM: 2 companies, 5 contacts, 3 deals, 2 activities (inserted as service_role)."""
    owner = rest.login("rep", name="Rita Rep")
    acme, beta = rest.insert(
        "companies", [{"name": "Acme", "owner_id": owner.staff_id}, {"name": "Beta", "owner_id": owner.staff_id}]
    )
    rows = [
        {"first_name": "Ann", "last_name": "Smith", "email": "ann@acme.io", "company_id": acme["id"],
         "tags": ["vip", "west"], "status": "customer", "notes": None},
        {"first_name": "Bob", "last_name": "Smith", "email": "bob@acme.io", "company_id": acme["id"],
         "tags": [], "status": "lead", "notes": None},
        {"first_name": "Cid", "last_name": "Smith, Jr.", "email": None, "company_id": acme["id"],
         "tags": ["west"], "status": "lead", "notes": "The quick brown fox"},
        {"first_name": "Dan", "last_name": "Doe", "email": "dan@beta.io", "company_id": beta["id"],
         "tags": ["vip", "east"], "status": "lead", "notes": None},
        {"first_name": "Eve", "last_name": None, "email": None, "company_id": None,
         "tags": [], "status": "lead", "notes": None},
    ]  # fmt: skip
    contacts = {c["first_name"]: c for c in rest.insert("contacts", rows)}
    deals = rest.insert(
        "deals",
        [
            {"title": "Big", "amount": "125000.50", "stage": "proposal", "probability": 60,
             "contact_id": contacts["Ann"]["id"], "owner_id": owner.staff_id, "expected_close_date": None,
             "currency": "USD"},
            {"title": "Small", "amount": 999.99, "stage": "lead", "probability": 10, "contact_id": None,
             "owner_id": owner.staff_id, "expected_close_date": None, "currency": "USD"},
            {"title": "Won", "amount": 5000, "stage": "won", "probability": 100, "contact_id": None,
             "owner_id": owner.staff_id, "expected_close_date": "2026-12-31", "currency": "EUR"},
        ],
    )  # fmt: skip
    rest.insert("activities", [{"subject": "Done", "completed": True}, {"subject": "Open", "completed": False}])
    return {
        "owner": owner,
        "owner_name": "Rita Rep",
        "acme": acme["id"],
        "beta": beta["id"],
        "ann": contacts["Ann"]["id"],
        "contacts": contacts,
        "deals": {d["title"]: d for d in deals},
    }
