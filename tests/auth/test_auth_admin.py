"""The admin API: service key or an active admin's token; the staff-row convention; listing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import pytest_asyncio
from auth_harness import AuthApi
from sqlalchemy import insert, select

from wexlot.auth import users
from wexlot.crm.tables import staff

pytestmark = pytest.mark.asyncio


def staff_rows(api: AuthApi) -> dict[str, dict[str, Any]]:
    with users.transaction(api.settings.db_url) as conn:
        rows = conn.execute(select(staff)).mappings().all()
    return {r["email"]: dict(r) for r in rows}


async def admin_token(api: AuthApi) -> str:
    boss = api.person("boss@example.com", "admin")
    return str((await api.session(boss))["access_token"])


@pytest_asyncio.fixture(params=["service_key", "admin_token"])
async def bearer(request: pytest.FixtureRequest, api: AuthApi) -> str:
    return api.service if request.param == "service_key" else await admin_token(api)


async def test_create_with_name_and_role_creates_the_staff_row(api: AuthApi, bearer: str) -> None:
    body = {
        "email": "New@Example.com",
        "password": "welcome-123",
        "email_confirm": True,
        "user_metadata": {"full_name": "Nina New"},
        "app_metadata": {"role": "manager"},
    }
    r = await api.admin("POST", "users", bearer, json=body)
    assert r.status_code == 200, r.text
    user = r.json()
    assert user["email"] == "new@example.com"
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"], "role": "manager"}
    assert user["user_metadata"] == {"full_name": "Nina New"}
    row = staff_rows(api)["new@example.com"]
    assert (row["user_id"], row["full_name"], row["role"], row["is_active"]) == (
        user["id"],
        "Nina New",
        "manager",
        True,
    )
    session = (await api.sign_in("new@example.com", "welcome-123")).json()
    assert session["user"]["app_metadata"]["role"] == "manager"


async def test_create_role_may_come_from_user_metadata(api: AuthApi) -> None:
    body = {"email": "r@example.com", "password": "welcome-123", "user_metadata": {"name": "Ray", "role": "rep"}}
    r = await api.admin("POST", "users", api.service, json=body)
    assert r.json()["app_metadata"]["role"] == "rep"
    assert staff_rows(api)["r@example.com"]["full_name"] == "Ray"


async def test_create_links_an_existing_unlinked_staff_row(api: AuthApi) -> None:
    with users.transaction(api.settings.db_url) as conn:
        conn.execute(insert(staff).values(id=str(uuid.uuid4()), full_name="Old Timer", email="Old@Example.com",
                                          role="rep", is_active=True))  # fmt: skip
    r = await api.admin("POST", "users", api.service, json={"email": "old@example.com", "password": "welcome-123"})
    assert r.status_code == 200, r.text
    assert r.json()["app_metadata"]["role"] == "rep"
    assert staff_rows(api)["Old@Example.com"]["user_id"] == r.json()["id"]


async def test_create_without_staff_hints_makes_a_bare_login(api: AuthApi) -> None:
    r = await api.admin("POST", "users", api.service, json={"email": "bare@example.com", "password": "welcome-123"})
    assert r.status_code == 200
    assert "role" not in r.json()["app_metadata"]
    assert "bare@example.com" not in staff_rows(api)


async def test_create_refusals(api: AuthApi) -> None:
    api.person("taken@example.com")
    cases = [
        ({"email": "taken@example.com", "password": "welcome-123"}, 422, "email_exists"),
        ({"email": "TAKEN@example.com", "password": "welcome-123"}, 422, "email_exists"),
        ({"email": "x@example.com", "password": "welcome-123", "app_metadata": {"role": "owner"}}, 422,
         "validation_failed"),
        ({"email": "x@example.com", "password": "short"}, 422, "weak_password"),
        ({"email": "not-an-email", "password": "welcome-123"}, 400, "email_address_invalid"),
        ({"email": "x@example.com", "user_metadata": "nope"}, 400, "validation_failed"),
    ]  # fmt: skip
    for body, status, code in cases:
        r = await api.admin("POST", "users", api.service, json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), body


async def test_get_update_delete_by_id(api: AuthApi, bearer: str) -> None:
    rep = api.person("rep@example.com")
    rep_session = await api.session(rep)
    r = await api.admin("GET", f"users/{rep.user_id}", bearer)
    assert r.status_code == 200 and r.json()["email"] == "rep@example.com"

    r = await api.admin("PUT", f"users/{rep.user_id}", bearer,
                        json={"app_metadata": {"role": "manager", "team": "north"},
                              "user_metadata": {"full_name": "Rep Promoted"}})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["app_metadata"] == {"provider": "email", "providers": ["email"], "role": "manager", "team": "north"}
    row = staff_rows(api)["rep@example.com"]
    assert (row["role"], row["full_name"]) == ("manager", "Rep Promoted")

    # An admin-set password signs the user out everywhere.
    r = await api.admin("PUT", f"users/{rep.user_id}", bearer, json={"password": "reset-by-admin"})
    assert r.status_code == 200
    assert (await api.get_user(rep_session["access_token"])).json()["code"] == "session_not_found"
    assert (await api.sign_in(rep.email, "reset-by-admin")).status_code == 200

    r = await api.admin("PUT", f"users/{rep.user_id}", bearer, json={"email": "renamed@example.com"})
    assert r.json()["email"] == "renamed@example.com"
    assert staff_rows(api)["renamed@example.com"]["user_id"] == rep.user_id

    r = await api.admin("DELETE", f"users/{rep.user_id}", bearer, json={"should_soft_delete": False})
    assert (r.status_code, r.json()) == (200, {})
    assert (await api.admin("GET", f"users/{rep.user_id}", bearer)).json()["code"] == "user_not_found"
    kept = staff_rows(api)["renamed@example.com"]  # the staff row stays for history, unlinked
    assert kept["user_id"] is None
    assert (await api.admin("DELETE", f"users/{rep.user_id}", bearer)).status_code == 404
    assert (await api.admin("GET", "users/not-a-uuid", bearer)).status_code == 404


async def test_ban_duration(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    r = await api.admin("PUT", f"users/{rep.user_id}", api.service, json={"ban_duration": "24h"})
    assert r.status_code == 200 and r.json()["banned_until"].endswith("Z")
    assert (await api.sign_in(rep.email, rep.password)).json()["code"] == "user_banned"
    await api.admin("PUT", f"users/{rep.user_id}", api.service, json={"ban_duration": "none"})
    assert (await api.sign_in(rep.email, rep.password)).status_code == 200
    r = await api.admin("PUT", f"users/{rep.user_id}", api.service, json={"ban_duration": "forever"})
    assert (r.status_code, r.json()["code"]) == (400, "validation_failed")


async def test_list_users_pages(api: AuthApi) -> None:
    for n in range(5):
        r = await api.admin("POST", "users", api.service, json={"email": f"u{n}@example.com", "password": "pw-123456"})
        assert r.status_code == 200
    r = await api.admin("GET", "users?page=2&per_page=2", api.service)
    assert r.status_code == 200
    body = r.json()
    assert body["aud"] == "authenticated" and len(body["users"]) == 2
    assert r.headers["x-total-count"] == "5"
    assert 'page=3&per_page=2>; rel="next"' in r.headers["link"]
    assert 'page=3&per_page=2>; rel="last"' in r.headers["link"]
    everyone = (await api.admin("GET", "users?page=&per_page=", api.service)).json()["users"]
    assert sorted(u["email"] for u in everyone) == [f"u{n}@example.com" for n in range(5)]
    assert [u["email"] for u in everyone] == [f"u{n}@example.com" for n in reversed(range(5))]  # newest first
    filtered = (await api.admin("GET", "users?filter=U3", api.service)).json()["users"]
    assert [u["email"] for u in filtered] == ["u3@example.com"]


async def test_admin_routes_refuse_everyone_else(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    manager = api.person("manager@example.com", "manager")
    boss = api.person("boss@example.com", "admin")
    rep_token = (await api.session(rep))["access_token"]
    manager_token = (await api.session(manager))["access_token"]
    boss_session = await api.session(boss)
    calls = [("GET", "users"), ("POST", "users"), ("GET", f"users/{rep.user_id}"),
             ("PUT", f"users/{rep.user_id}"), ("DELETE", f"users/{rep.user_id}")]  # fmt: skip
    for token in (rep_token, manager_token, api.anon):
        for method, path in calls:
            r = await api.admin(method, path, token, json={"email": "x@example.com", "password": "welcome-123"})
            assert (r.status_code, r.json()["code"]) == (403, "not_admin"), (method, path)
            assert r.json()["message"] == "User not allowed"
    # An admin who was deactivated, or signed out, is refused too.
    api.set_active(boss, False)
    r = await api.admin("GET", "users", boss_session["access_token"])
    assert (r.status_code, r.json()["code"]) == (403, "not_admin")
    api.set_active(boss, True)
    assert (await api.admin("GET", "users", boss_session["access_token"])).status_code == 200
    await api.logout(boss_session["access_token"])
    r = await api.admin("GET", "users", boss_session["access_token"])
    assert (r.status_code, r.json()["code"]) == (403, "session_not_found")
    r = await api.http.get("/auth/v1/admin/users", headers={"apikey": api.service})
    assert (r.status_code, r.json()["code"]) == (401, "no_authorization")
    assert rep.user_id in [u["id"] for u in (await api.admin("GET", "users", api.service)).json()["users"]]


async def test_admin_writes_record_the_acting_admin(api: AuthApi) -> None:
    boss = api.person("boss@example.com", "admin")
    token = (await api.session(boss))["access_token"]
    body = {"email": "n@example.com", "password": "welcome-123", "user_metadata": {"full_name": "N"},
            "app_metadata": {"role": "rep"}}  # fmt: skip
    assert (await api.admin("POST", "users", token, json=body)).status_code == 200
    assert staff_rows(api)["n@example.com"]["updated_by"] == boss.staff_id
