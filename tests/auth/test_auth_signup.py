"""Self sign-up: off by default (admins invite), and when switched on a new login becomes a rep."""

from __future__ import annotations

import uuid

import pytest
from auth_harness import AuthApi, running, with_settings
from sqlalchemy import insert

from wexlot.auth import users
from wexlot.config import Settings
from wexlot.crm.tables import staff

pytestmark = pytest.mark.asyncio

BODY = {"email": "Joiner@Example.com", "password": "joining-123", "data": {"full_name": "Jo Iner"},
        "gotrue_meta_security": {}, "code_challenge": None, "code_challenge_method": None}  # fmt: skip


async def test_signup_is_disabled_by_default(api: AuthApi) -> None:
    r = await api.request("POST", "signup", json=BODY)
    assert (r.status_code, r.json()["code"]) == (422, "signup_disabled")
    assert r.headers["x-sb-error-code"] == "signup_disabled"
    assert (await api.sign_in("joiner@example.com", "joining-123")).json()["code"] == "invalid_credentials"


async def test_enabled_signup_returns_a_session_for_a_new_rep(settings: Settings) -> None:
    async with running(with_settings(settings, signup_enabled=True)) as api:
        assert (await api.http.get("/auth/v1/settings")).json()["disable_signup"] is False
        api.passwords.add(BODY["password"])  # type: ignore[arg-type]
        r = await api.request("POST", "signup", json=BODY)
        assert r.status_code == 200, r.text
        session = r.json()
        assert session["user"]["email"] == "joiner@example.com"
        assert session["user"]["app_metadata"]["role"] == "rep"
        assert session["user"]["user_metadata"] == {"full_name": "Jo Iner"}
        assert (await api.get_user(session["access_token"])).status_code == 200
        assert (await api.sign_in("joiner@example.com", "joining-123")).status_code == 200

        again = await api.request("POST", "signup", json=BODY)
        assert (again.status_code, again.json()["code"]) == (422, "user_already_exists")
        weak = await api.request("POST", "signup", json={**BODY, "email": "w@example.com", "password": "abc"})
        assert (weak.status_code, weak.json()["code"]) == (422, "weak_password")


async def test_signup_never_claims_an_existing_staff_row(settings: Settings) -> None:
    """The email is unverified, so signing up as an existing (unlinked) staff email must not link it."""
    async with running(with_settings(settings, signup_enabled=True)) as api:
        with users.transaction(settings.db_url) as conn:
            conn.execute(insert(staff).values(id=str(uuid.uuid4()), full_name="The Boss", email="boss@example.com",
                                              role="admin", is_active=True))  # fmt: skip
        api.passwords.add("joining-123")
        r = await api.request("POST", "signup", json={**BODY, "email": "boss@example.com"})
        assert (r.status_code, r.json()["code"]) == (422, "user_already_exists")
