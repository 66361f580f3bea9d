"""Refresh-token rotation: one use each, a short reuse window for racing tabs, replay detection."""

from __future__ import annotations

import asyncio

import jwt
import pytest
from auth_harness import AuthApi, running
from sqlalchemy import func, select

from wexlot.auth import users
from wexlot.auth.policy import AuthPolicy
from wexlot.auth.tables import auth_tables
from wexlot.config import Settings

pytestmark = pytest.mark.asyncio


def session_id(session: dict[str, str]) -> str:
    return str(jwt.decode(session["access_token"], options={"verify_signature": False})["session_id"])


def stored_token_hashes(api: AuthApi) -> list[str]:
    with users.transaction(api.settings.db_url) as conn:
        rt = auth_tables(conn.dialect.name).refresh_tokens
        return list(conn.execute(select(rt.c.token_hash)).scalars())


async def test_refresh_rotates_within_the_same_session(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    first = await api.session(rep)
    r = await api.refresh(first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert session_id(second) == session_id(first)
    assert second["user"]["id"] == rep.user_id and second["expires_in"] == 3600
    third = await api.refresh(second["refresh_token"])
    assert third.status_code == 200
    assert (await api.get_user(third.json()["access_token"])).status_code == 200
    # Only hashes are stored.
    hashes = stored_token_hashes(api)
    assert len(hashes) == 3
    for token in (first["refresh_token"], second["refresh_token"], third.json()["refresh_token"]):
        assert token not in hashes


async def test_reuse_inside_the_window_keeps_the_session(api: AuthApi) -> None:
    """Two tabs refresh with the same token: both get a working session (GoTrue's reuse interval)."""
    rep = api.person("rep@example.com")
    first = await api.session(rep)
    a = await api.refresh(first["refresh_token"])
    b = await api.refresh(first["refresh_token"])
    assert a.status_code == b.status_code == 200, b.text
    assert a.json()["refresh_token"] != b.json()["refresh_token"]
    assert session_id(a.json()) == session_id(b.json()) == session_id(first)
    for tab in (a, b):
        assert (await api.refresh(tab.json()["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_of_one_token_both_succeed(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    first = await api.session(rep)
    results = await asyncio.gather(*(api.refresh(first["refresh_token"]) for _ in range(3)))
    assert [r.status_code for r in results] == [200, 200, 200], [r.text for r in results]
    assert len({r.json()["refresh_token"] for r in results}) == 3


async def test_reuse_after_the_window_revokes_the_whole_session(settings: Settings) -> None:
    async with running(settings, AuthPolicy(refresh_reuse_interval=0.2)) as api:
        rep = api.person("rep@example.com")
        first = await api.session(rep)
        other_device = await api.session(rep)
        second = (await api.refresh(first["refresh_token"])).json()
        await asyncio.sleep(0.5)
        replay = await api.refresh(first["refresh_token"])
        assert replay.status_code == 400
        assert replay.json()["code"] == "refresh_token_already_used"
        assert replay.headers["x-sb-error-code"] == "refresh_token_already_used"
        # Everything of that session is gone: the legitimate child and its access tokens too ...
        r = await api.refresh(second["refresh_token"])
        assert (r.status_code, r.json()["code"]) == (400, "session_not_found")
        r = await api.get_user(second["access_token"])
        assert (r.status_code, r.json()["code"]) == (403, "session_not_found")
        # ... while the user's other sessions are untouched.
        assert (await api.refresh(other_device["refresh_token"])).status_code == 200


async def test_unknown_and_missing_refresh_tokens(api: AuthApi) -> None:
    r = await api.refresh("definitely-not-a-token")
    assert (r.status_code, r.json()["code"]) == (400, "refresh_token_not_found")
    r = await api.request("POST", "token?grant_type=refresh_token", json={})
    assert (r.status_code, r.json()["code"]) == (400, "validation_failed")
    rep = api.person("rep@example.com")
    session = await api.session(rep)
    random_part, _, sid = session["refresh_token"].rpartition(".")
    r = await api.refresh(("x" * len(random_part)) + "." + sid)  # forged token naming a live session
    assert (r.status_code, r.json()["code"]) == (400, "refresh_token_not_found")


async def test_refresh_after_sign_out_is_session_not_found(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    session = await api.session(rep)
    assert (await api.logout(session["access_token"], "local")).status_code == 204
    r = await api.refresh(session["refresh_token"])
    assert (r.status_code, r.json()["code"]) == (400, "session_not_found")


async def test_deactivated_staff_cannot_refresh(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    session = await api.session(rep)
    api.set_active(rep, False)
    r = await api.refresh(session["refresh_token"])
    assert (r.status_code, r.json()["code"]) == (400, "user_banned")
    r = await api.get_user(session["access_token"])
    assert (r.status_code, r.json()["code"]) == (403, "user_banned")
    api.set_active(rep, True)  # the token was not consumed by the refused refresh
    assert (await api.refresh(session["refresh_token"])).status_code == 200


async def test_deleted_user_cannot_refresh(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    session = await api.session(rep)
    assert (await api.admin("DELETE", f"users/{rep.user_id}", api.service)).status_code == 200
    r = await api.refresh(session["refresh_token"])
    assert (r.status_code, r.json()["code"]) == (400, "session_not_found")
    with users.transaction(api.settings.db_url) as conn:
        rt = auth_tables(conn.dialect.name).refresh_tokens
        assert conn.execute(select(func.count()).select_from(rt)).scalar_one() == 0
