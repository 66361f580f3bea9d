"""Bad input gets PostgREST's error shape and code, nothing is partially written, the server keeps serving."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest


def error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"code", "message", "details", "hint"} and body["code"] == code, body
    return body


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("nope?select=*", 404, "PGRST205"),
        ("contacts?select=nope", 400, "42703"),
        ("contacts?nope=eq.1", 400, "42703"),
        ("contacts?order=nope.asc", 400, "42703"),
        ("contacts?first_name=bogus.1", 400, "PGRST100"),
        ("contacts?first_name=eq", 400, "PGRST100"),
        ("contacts?or=(first_name.eq.a", 400, "PGRST100"),
        ("contacts?or=first_name.eq.a", 400, "PGRST100"),
        ("contacts?select=first_name,(", 400, "PGRST100"),
        ("contacts?order=first_name.sideways", 400, "PGRST100"),
        ("contacts?limit=ten", 400, "PGRST100"),
        ("contacts?email=is.maybe", 400, "PGRST100"),
        ("contacts?id=eq.not-a-uuid", 400, "22P02"),
        ("deals?amount=gt.lots", 400, "22P02"),
        ("deals?probability=eq.1.5", 400, "22P02"),
        ("deals?created_at=gt.yesterday", 400, "22P02"),
        ("deals?select=title,owner:staff!nope(full_name)", 400, "PGRST200"),
    ],
)
def test_bad_queries(rest: Any, path: str, status: int, code: str) -> None:
    error(rest.get(path, rest.service), status, code)


def test_bad_bodies(rest: Any) -> None:
    svc = rest.service
    error(rest.request("POST", "contacts", svc, content=b"{not json"), 400, "PGRST102")
    error(rest.request("POST", "contacts", svc, content=b""), 400, "PGRST102")
    error(rest.post("contacts", "just a string", svc), 400, "PGRST102")
    error(rest.post("contacts", [{"first_name": "a"}, {"last_name": "b"}], svc), 400, "PGRST102")
    error(rest.post("contacts", {"first_name": "a", "nope": 1}, svc), 400, "PGRST204")
    error(rest.post('contacts?columns="first_name","nope"', [{"first_name": "a"}], svc), 400, "PGRST204")
    error(rest.post("deals", {"title": "t", "amount": "ten"}, svc), 400, "22P02")
    error(rest.post("deals", {"title": "t", "probability": "x"}, svc), 400, "22P02")
    error(rest.post("deals", {"title": "t", "stage": "maybe"}, svc), 400, "23514")
    error(rest.post("deals", {"amount": 1}, svc), 400, "23502")
    error(rest.post("contacts", {"first_name": "a", "company_id": "00000000-0000-4000-8000-000000000000"}, svc), 409,
          "23503")  # fmt: skip
    error(rest.post("contacts", {"first_name": "a", "tags": "vip"}, svc), 400, "22P02")
    big = {"first_name": "a", "notes": "x" * 70_000}
    error(rest.post("contacts", big, svc), 413, "PGRST413")
    error(rest.patch("contacts?first_name=eq.a", [{"first_name": "b"}], svc), 400, "PGRST102")
    assert rest.get("contacts?select=id", svc).json() == []


def test_unique_violation_is_409_with_details(rest: Any) -> None:
    rest.insert("platforms", {"name": "Email"})
    body = error(rest.post("platforms", {"name": "Email"}, rest.service), 409, "23505")
    assert "platforms_name_key" in body["message"] and "(name)" in body["details"]


def test_api_key_is_required(rest: Any) -> None:
    r = rest.client.get("/rest/v1/contacts")
    error(r, 401, "PGRST301")
    assert "No API key" in r.json()["message"]
    error(rest.client.get("/rest/v1/contacts", headers={"apikey": "made-up"}), 401, "PGRST301")
    # The key may also be given as a query parameter, and is not taken for a filter.
    assert rest.client.get(f"/rest/v1/contacts?apikey={rest.anon}").status_code == 200


@pytest.mark.parametrize("kind", ["expired", "forged", "none-alg", "garbage", "bad-role"])
def test_bad_tokens(rest: Any, kind: str) -> None:
    now = int(time.time())
    claims = {"sub": "00000000-0000-4000-8000-000000000000", "role": "authenticated", "exp": now + 600, "iat": now}
    secret = rest.runtime.settings.jwt_secret
    if kind == "expired":
        token = jwt.encode({**claims, "exp": now - 120}, secret, algorithm="HS256")
    elif kind == "forged":
        token = jwt.encode(claims, "x" * 64, algorithm="HS256")
    elif kind == "none-alg":
        token = jwt.encode({**claims, "role": "service_role"}, None, algorithm="none")  # type: ignore[arg-type]
    elif kind == "bad-role":
        token = jwt.encode({**claims, "role": "postgres"}, secret, algorithm="HS256")
    else:
        token = "not.a.jwt"
    r = rest.get("contacts?select=*", token)
    body = error(r, 401, "PGRST303" if kind == "expired" else "PGRST301")
    assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    if kind == "expired":
        assert body["message"] == "JWT expired"


def test_schema_profile(rest: Any) -> None:
    error(rest.get("contacts", rest.service, headers={"Accept-Profile": "auth"}), 406, "PGRST106")
    assert rest.get("contacts", rest.service, headers={"Accept-Profile": "public"}).status_code == 200


def test_server_keeps_serving_after_errors(rest: Any) -> None:
    for _ in range(20):
        rest.request("POST", "contacts", rest.service, content=b"\xff\xfe garbage")
        rest.get("contacts?or=((((", rest.service)
    rest.insert("contacts", {"first_name": "still here"})
    assert rest.get("contacts?select=first_name", rest.service).json() == [{"first_name": "still here"}]


def test_auth_tables_are_not_exposed(rest: Any) -> None:
    for name in ("users", "auth.users", "auth_users", "sessions", "refresh_tokens", "alembic_version"):
        error(rest.get(f"{name}?select=*", rest.service), 404, "PGRST205")


def test_rpc_and_unknown_paths_answer_json(rest: Any) -> None:
    error(rest.request("POST", "rpc/search", rest.service, json={}), 404, "PGRST202")
    error(rest.get("a/b/c", rest.service), 404, "PGRST125")


def test_in_values_with_quotes_inside(rest: Any) -> None:
    rest.insert("contacts", [{"first_name": 'Robert "Bob" Smith'}, {"first_name": 'O"Brien'}, {"first_name": "a,b"}])
    r = rest.get('contacts?select=first_name&first_name=in.(Robert "Bob" Smith,O"Brien,"a,b")&order=first_name',
                 rest.service)  # fmt: skip
    assert [x["first_name"] for x in r.json()] == ['O"Brien', 'Robert "Bob" Smith', "a,b"]
