"""The signed-in user: GET/PUT /user, sign-out scopes, and the bearer tokens that must be refused."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
from auth_harness import AuthApi

from wexlot.auth.tokens import Tokens

pytestmark = pytest.mark.asyncio


async def test_get_user_returns_the_bare_user(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    session = await api.session(rep)
    r = await api.get_user(session["access_token"])
    assert r.status_code == 200
    assert r.headers["x-supabase-api-version"] == "2024-01-01"
    assert r.json() == session["user"]


async def test_update_user_metadata_merges(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    session = await api.session(rep)
    r = await api.update_user(session["access_token"], {"data": {"theme": "dark", "lang": "de"}})
    assert r.status_code == 200, r.text
    assert r.json()["user_metadata"] == {"full_name": "Rep", "theme": "dark", "lang": "de"}
    r = await api.update_user(session["access_token"], {"data": {"lang": None, "theme": "light"}})
    assert r.json()["user_metadata"] == {"full_name": "Rep", "theme": "light"}
    assert (await api.get_user(session["access_token"])).json()["user_metadata"]["theme"] == "light"


async def test_user_metadata_cannot_raise_the_staff_role(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    session = await api.session(rep)
    r = await api.update_user(session["access_token"], {"data": {"role": "admin", "full_name": "Boss"}})
    assert r.status_code == 200
    assert r.json()["app_metadata"]["role"] == "rep"
    r = await api.admin("GET", "users", session["access_token"])
    assert r.json()["code"] == "not_admin"


async def test_update_password_signs_out_the_other_devices(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    laptop, phone = await api.session(rep), await api.session(rep)
    r = await api.update_user(laptop["access_token"], {"password": "a new password 2"})
    assert r.status_code == 200, r.text
    assert (await api.get_user(laptop["access_token"])).status_code == 200
    assert (await api.get_user(phone["access_token"])).json()["code"] == "session_not_found"
    assert (await api.sign_in(rep.email, rep.password)).json()["code"] == "invalid_credentials"
    assert (await api.sign_in(rep.email, "a new password 2")).status_code == 200


async def test_update_password_rules(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    session = await api.session(rep)
    r = await api.update_user(session["access_token"], {"password": "abc"})
    assert (r.status_code, r.json()["code"]) == (422, "weak_password")
    assert r.json()["weak_password"] == {"reasons": ["length"]}
    r = await api.update_user(session["access_token"], {"password": rep.password})
    assert (r.status_code, r.json()["code"]) == (422, "same_password")
    r = await api.update_user(session["access_token"], {"password": "new password 3", "current_password": "nope"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_credentials")
    r = await api.update_user(session["access_token"], {"password": "new password 3", "current_password": rep.password})
    assert r.status_code == 200
    r = await api.update_user(session["access_token"], {"email": "other@example.com"})
    assert (r.status_code, r.json()["code"]) == (422, "validation_failed")


@pytest.mark.parametrize(
    ("scope", "survivors"),
    [("local", {"phone", "tablet"}), ("global", set()), ("others", {"laptop"}), (None, set())],
)
async def test_logout_scopes(api: AuthApi, scope: str | None, survivors: set[str]) -> None:
    rep = api.person("rep@example.com")
    devices = {name: await api.session(rep) for name in ("laptop", "phone", "tablet")}
    r = await api.logout(devices["laptop"]["access_token"], scope)
    assert r.status_code == 204 and r.content == b""
    assert r.headers["x-supabase-api-version"] == "2024-01-01"
    alive = {name for name, s in devices.items() if (await api.get_user(s["access_token"])).status_code == 200}
    assert alive == survivors
    for name, s in devices.items():
        if name not in survivors:
            r = await api.get_user(s["access_token"])
            assert (r.status_code, r.json()["code"]) == (403, "session_not_found")
            assert (await api.logout(s["access_token"])).json()["code"] == "session_not_found"


async def test_logout_refuses_an_unknown_scope(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    session = await api.session(rep)
    r = await api.logout(session["access_token"], "everything")
    assert (r.status_code, r.json()["code"]) == (400, "validation_failed")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_bad_bearer_tokens_are_bad_jwt(api: AuthApi) -> None:
    rep = api.person("rep@example.com")
    session = await api.session(rep)
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    user = session["user"]
    expired, _ = api.tokens.access_token(user, claims["session_id"], now=int(time.time()) - 7200)
    forged, _ = Tokens("another-secret-that-is-long-enough-1234", "x", 3600).access_token(user, claims["session_id"])
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    tampered_claims = {**claims, "sub": str(uuid.uuid4())}
    header, _, signature = session["access_token"].split(".")
    tampered = f"{header}.{_b64(tampered_claims)}.{signature}"
    for name, token in [("expired", expired), ("forged", forged), ("none", alg_none), ("tampered", tampered),
                        ("garbage", "not-a-jwt")]:  # fmt: skip
        for method in ("GET", "PUT"):
            r = await api.request(method, "user", token, json={})
            assert (r.status_code, r.json()["code"]) == (403, "bad_jwt"), (name, method, r.text)
        assert (await api.logout(token)).json()["code"] == "bad_jwt", name
    # A key is not a user.
    for key in (api.anon, api.service):
        r = await api.get_user(key)
        assert (r.status_code, r.json()["code"]) == (403, "bad_jwt")


async def test_no_bearer_is_no_authorization(api: AuthApi) -> None:
    r = await api.http.get("/auth/v1/user", headers={"apikey": api.anon})
    assert (r.status_code, r.json()["code"]) == (401, "no_authorization")
