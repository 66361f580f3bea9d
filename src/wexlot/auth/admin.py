"""GoTrue's admin API for logins: ``/admin/users`` (list, create) and ``/admin/users/<id>``.

The bearer must be the service_role key or the token of an active ``admin`` staff member
(:func:`wexlot.auth.gate.admin_actor`); anyone else gets 403 ``not_admin``. How metadata creates,
links and updates staff rows is described in :mod:`wexlot.auth.users`. Writes run with the acting
admin's staff id as ``updated_by`` of any staff row they touch.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from wexlot.auth import passwords, sessions, users
from wexlot.auth.gate import admin_actor, bearer_claims, read_json
from wexlot.auth.policy import auth_state
from wexlot.auth.responses import json_response
from wexlot.auth.users import account_json
from wexlot.errors import AuthError
from wexlot.runtime import runtime_of

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 1000
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


async def users_collection(request: Request) -> Response:
    return await (_create(request) if request.method == "POST" else _list(request))


async def user_item(request: Request) -> Response:
    handler = {"GET": _get, "PUT": _update, "DELETE": _delete}[request.method]
    return await handler(request)


async def _authorize(request: Request) -> tuple[dict[str, Any], str | None]:
    """The bearer's claims and acting staff id; checked before any body parsing or hashing."""
    rt = runtime_of(request)
    claims = bearer_claims(request, rt.tokens)
    async with rt.db.read() as conn:
        actor = await conn.run_sync(admin_actor, claims)
    return claims, actor


@asynccontextmanager
async def _admin_write(request: Request, claims: dict[str, Any], actor: str | None) -> AsyncIterator[AsyncConnection]:
    """A write transaction acting as ``actor``, re-checking that the caller is (still) an admin."""
    db = runtime_of(request).db
    async with db.write() as conn:
        await db.set_actor(conn, actor)
        await conn.run_sync(admin_actor, claims)
        yield conn


async def _list(request: Request) -> Response:
    await _authorize(request)
    number = _positive(request.query_params.get("page"), 1)
    per_page = min(_positive(request.query_params.get("per_page"), DEFAULT_PER_PAGE), MAX_PER_PAGE)
    email_filter = request.query_params.get("filter") or ""
    async with runtime_of(request).db.read() as conn:
        accounts, total = await conn.run_sync(users.page, number, per_page, email_filter)
    last = max(1, -(-total // per_page))
    links = []
    if number < last:
        links.append(f'<{request.url.include_query_params(page=number + 1, per_page=per_page)}>; rel="next"')
    links.append(f'<{request.url.include_query_params(page=last, per_page=per_page)}>; rel="last"')
    return json_response(
        {"users": [account_json(a) for a in accounts], "aud": users.AUD},
        headers={"X-Total-Count": str(total), "Link": ", ".join(links)},
    )


async def _create(request: Request) -> Response:
    claims, actor = await _authorize(request)
    body = await read_json(request)
    email = users.normalize_email(body.get("email"))
    user_metadata = _object(body, "user_metadata") or _object(body, "data") or {}
    app_metadata = _object(body, "app_metadata") or {}
    spec = users.staff_spec(user_metadata, app_metadata)
    now = users.now_utc()
    banned_until = _ban_until(body.get("ban_duration"), now)
    password_hash = await _password_hash(request, body)
    async with _admin_write(request, claims, actor) as conn:
        account = await conn.run_sync(
            lambda c: users.create(
                c,
                email,
                password_hash,
                user_metadata=user_metadata,
                app_metadata=app_metadata,
                spec=spec,
                actor=actor,
                banned_until=None if banned_until is users.UNSET else banned_until,
                now=now,
            )
        )
    return json_response(account_json(account))


async def _get(request: Request) -> Response:
    await _authorize(request)
    async with runtime_of(request).db.read() as conn:
        account = await conn.run_sync(users.get, request.path_params["user_id"])
    if account is None:
        raise users.user_not_found()
    return json_response(account_json(account))


async def _update(request: Request) -> Response:
    claims, actor = await _authorize(request)
    body = await read_json(request)
    user_metadata = _object(body, "user_metadata") or _object(body, "data")
    app_metadata = _object(body, "app_metadata")
    spec = users.staff_spec(user_metadata, app_metadata)
    email = body.get("email")
    now = users.now_utc()
    banned_until = _ban_until(body.get("ban_duration"), now)
    password_hash = await _password_hash(request, body)
    async with _admin_write(request, claims, actor) as conn:
        account = await conn.run_sync(users.get, request.path_params["user_id"])
        if account is None:
            raise users.user_not_found()
        updated = await conn.run_sync(
            lambda c: users.update_user(
                c,
                account,
                email=email,
                password_hash=password_hash,
                user_metadata=user_metadata,
                app_metadata=app_metadata,
                banned_until=banned_until,
                spec=spec,
                actor=actor,
                now=now,
            )
        )
        if password_hash is not None:  # a password set by an admin signs the user out everywhere
            await conn.run_sync(sessions.end, account.id, None, "global")
    await runtime_of(request).realtime.recheck_sessions(account.id)
    return json_response(account_json(updated))


async def _delete(request: Request) -> Response:
    claims, actor = await _authorize(request)
    async with _admin_write(request, claims, actor) as conn:
        account = await conn.run_sync(users.get, request.path_params["user_id"])
        if account is None:
            raise users.user_not_found()
        await conn.run_sync(users.delete_user, account.id)
    await runtime_of(request).realtime.recheck_sessions(account.id)
    return json_response({})


async def _password_hash(request: Request, body: dict[str, Any]) -> str | None:
    password, imported = body.get("password"), body.get("password_hash")
    if password is not None:
        if not isinstance(password, str):
            raise AuthError(400, "validation_failed", "password must be a string")
        passwords.check_strength(password)
        return await auth_state(request).hash_password(password)
    if imported is not None:
        if not isinstance(imported, str) or not passwords.is_hash(imported):
            raise AuthError(422, "validation_failed", "password_hash must be an argon2 hash")
        return imported
    return None


def _object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise AuthError(400, "validation_failed", f"{key} must be a JSON object")
    return value


def _positive(raw: str | None, default: int) -> int:
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise AuthError(400, "validation_failed", "page and per_page must be whole numbers") from None
    return value if value > 0 else default


def _ban_until(raw: Any, now: dt.datetime) -> Any:
    """GoTrue's ``ban_duration``: a Go duration ("24h", "1h30m") or "none" to lift the ban."""
    if raw is None:
        return users.UNSET
    if raw == "none":
        return None
    text = str(raw).strip()
    parts = _GO_DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise AuthError(400, "validation_failed", "invalid format for ban duration")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    return now + dt.timedelta(seconds=seconds)
