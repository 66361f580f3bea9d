"""Password sign-in: the session it returns, the failures that must look alike, bans and rate limits."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from auth_harness import AuthApi, running

from wexlot.auth.policy import AuthPolicy
from wexlot.config import Settings

pytestmark = pytest.mark.asyncio


async def test_sign_in_returns_a_gotrue_session(api: AuthApi) -> None:
    ann = api.person("Ann@Example.com", "admin")
    r = await api.sign_in("  ANN@example.com ", ann.password)
    assert r.status_code == 200, r.text
    assert r.headers["x-supabase-api-version"] == "2024-01-01"
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert abs(body["expires_at"] - (time.time() + 3600)) < 60
    assert isinstance(body["refresh_token"], str) and len(body["refresh_token"]) > 40
    user = body["user"]
    assert user["id"] == ann.user_id
    assert user["email"] == "ann@example.com"
    assert user["aud"] == user["role"] == "authenticated"
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"], "role": "admin"}
    assert user["user_metadata"] == {"full_name": "Ann"}
    assert user["identities"] == [] and user["is_anonymous"] is False
    for stamp in ("created_at", "updated_at", "last_sign_in_at", "email_confirmed_at", "confirmed_at"):
        assert user[stamp].endswith("Z"), (stamp, user[stamp])

    claims = jwt.decode(body["access_token"], api.settings.jwt_secret, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == ann.user_id
    assert claims["role"] == "authenticated" and claims["aud"] == "authenticated"
    assert claims["email"] == "ann@example.com"
    assert claims["exp"] - claims["iat"] == 3600 and claims["exp"] == body["expires_at"]
    assert uuid.UUID(claims["session_id"])
    assert claims["app_metadata"]["role"] == "admin"
    assert claims["user_metadata"] == {"full_name": "Ann"}


async def test_each_sign_in_is_its_own_session(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    first, second = await api.session(rep), await api.session(rep)
    sid = [jwt.decode(s["access_token"], options={"verify_signature": False})["session_id"] for s in (first, second)]
    assert sid[0] != sid[1]
    assert first["refresh_token"] != second["refresh_token"]


async def test_wrong_password_and_unknown_email_answer_alike(api: AuthApi) -> None:
    api.person("rep@example.com")
    wrong = await api.sign_in("rep@example.com", "not the password")
    unknown = await api.sign_in("nobody@example.com", "not the password")
    for r in (wrong, unknown):
        assert r.status_code == 400
        assert r.json() == {
            "code": "invalid_credentials",
            "error_code": "invalid_credentials",
            "msg": "Invalid login credentials",
            "message": "Invalid login credentials",
        }
        assert r.headers["x-sb-error-code"] == "invalid_credentials"
        assert r.headers["x-supabase-api-version"] == "2024-01-01"


async def test_missing_fields_and_grant_type(api: AuthApi) -> None:
    r = await api.request("POST", "token?grant_type=password", json={"password": "x"})
    assert (r.status_code, r.json()["code"]) == (400, "validation_failed")
    r = await api.request("POST", "token?grant_type=password", json={"email": "a@b.c"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_credentials")
    r = await api.request("POST", "token?grant_type=magic", json={})
    assert (r.status_code, r.json()["code"], r.json()["message"]) == (
        400,
        "invalid_credentials",
        "unsupported_grant_type",
    )
    r = await api.request("POST", "token?grant_type=password", content=b"{not json")
    assert (r.status_code, r.json()["code"]) == (400, "bad_json")


async def test_inactive_staff_is_banned_but_only_with_the_right_password(api: AuthApi) -> None:
    gone = api.person("gone@example.com", active=False)
    r = await api.sign_in(gone.email, gone.password)
    assert r.status_code == 400
    assert r.json()["code"] == "user_banned"
    assert r.headers["x-sb-error-code"] == "user_banned"
    # Without the password a ban is not revealed.
    r = await api.sign_in(gone.email, "wrong password")
    assert r.json()["code"] == "invalid_credentials"


async def test_a_login_without_staff_row_signs_in_without_a_role(api: AuthApi) -> None:
    r = await api.admin("POST", "users", api.service, json={"email": "solo@example.com", "password": "solo-pass-1"})
    assert r.status_code == 200, r.text
    session = (await api.sign_in("solo@example.com", "solo-pass-1")).json()
    assert session["user"]["app_metadata"] == {"provider": "email", "providers": ["email"]}


async def test_every_route_but_health_and_settings_needs_our_api_key(api: AuthApi) -> None:
    for path in ("health", "settings"):
        r = await api.http.get(f"/auth/v1/{path}")
        assert r.status_code == 200, path
    r = await api.http.post("/auth/v1/token?grant_type=password", json={"email": "a@b.c", "password": "x"})
    assert r.status_code == 401
    assert r.json()["message"] == "No API key found in request"
    assert r.json()["code"] == "no_api_key"
    r = await api.http.get("/auth/v1/user", headers={"apikey": "eyJ.not.ours"})
    assert (r.status_code, r.json()["message"], r.json()["code"]) == (401, "Invalid API key", "invalid_api_key")
    # Any header spelling (the Python client sends "apiKey"), or the query parameter.
    r = await api.http.get("/auth/v1/admin/users", headers={"APIKEY": api.anon})
    assert r.status_code == 401 and r.json()["code"] == "no_authorization"
    r = await api.http.get(f"/auth/v1/admin/users?apikey={api.anon}")
    assert r.json()["code"] == "no_authorization"
    r = await api.request("GET", "no/such/route")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


async def test_settings_and_health(api: AuthApi) -> None:
    settings = (await api.http.get("/auth/v1/settings")).json()
    assert settings["disable_signup"] is True
    assert settings["external"]["email"] is True
    assert (await api.http.get("/auth/v1/health")).json()["name"] == "GoTrue"


async def test_failures_per_account_are_limited(api: AuthApi) -> None:
    """Default policy: 10 failures per account per 5 minutes, then 429 even with the right password."""
    rep = api.person("rep@example.com")
    for _ in range(10):
        assert (await api.sign_in(rep.email, "wrong password")).status_code == 400
    blocked = await api.sign_in(rep.email, rep.password)
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "over_request_rate_limit"
    assert blocked.headers["x-sb-error-code"] == "over_request_rate_limit"
    assert 0 < int(blocked.headers["retry-after"]) <= 300
    # The account is blocked from everywhere; other accounts are not.
    async with api.from_address("10.9.9.9") as elsewhere:
        assert (await elsewhere.sign_in(rep.email, rep.password)).status_code == 429
    other = api.person("other@example.com")
    assert (await api.sign_in(other.email, other.password)).status_code == 200


async def test_success_resets_the_account_count(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    for _ in range(9):
        await api.sign_in(rep.email, "wrong password")
    assert (await api.sign_in(rep.email, rep.password)).status_code == 200
    for _ in range(9):
        assert (await api.sign_in(rep.email, "wrong password")).status_code == 400
    assert (await api.sign_in(rep.email, rep.password)).status_code == 200


async def test_failures_per_address_are_limited(settings: Settings) -> None:
    policy = AuthPolicy(failures_per_account=100, failures_per_address=5)
    async with running(settings, policy) as api:
        rep = api.person("rep@example.com")
        for n in range(5):  # unknown accounts count too: this is someone trying many emails
            assert (await api.sign_in(f"guess{n}@example.com", "pw-guess")).status_code == 400
        r = await api.sign_in(rep.email, rep.password)
        assert r.status_code == 429 and r.json()["code"] == "over_request_rate_limit"
        async with api.from_address("10.7.7.7") as elsewhere:
            assert (await elsewhere.sign_in(rep.email, rep.password)).status_code == 200
