"""GoTrue-compatible ``/auth/v1``: the endpoints the official clients call (reference §3.1).

=========================================  ==================================================
``POST /token?grant_type=password``        sign in → session (400 ``invalid_credentials``,
                                           ``user_banned``; 429 ``over_request_rate_limit``)
``POST /token?grant_type=refresh_token``   rotate the refresh token → session
``GET  /user`` / ``PUT /user``             the signed-in user; change own password / metadata
``POST /logout?scope=global|local|others`` end sessions → 204
``POST /signup``                           self sign-up (422 ``signup_disabled`` unless enabled)
``/admin/users[/<id>]``                    see :mod:`wexlot.auth.admin`
``GET  /settings``, ``GET /health``        open (no ``apikey``)
=========================================  ==================================================

Every other route needs the ``apikey``; errors are :class:`~wexlot.errors.AuthError` rendered by
:mod:`wexlot.auth.responses`. Handlers hash passwords before opening a write transaction (hashing
is slow and a SQLite write transaction blocks every other writer) and do all their database work
in one transaction.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wexlot.auth import admin, passwords, sessions, users
from wexlot.auth.gate import (
    bearer_claims,
    client_address,
    read_json,
    require_api_key,
    signed_in,
    user_banned,
)
from wexlot.auth.policy import auth_state
from wexlot.auth.responses import Endpoint, handles_auth_errors, json_response, no_content, session_json
from wexlot.auth.users import Account, StaffSpec, account_json
from wexlot.errors import AuthError
from wexlot.runtime import runtime_of

USER_AGENT_MAX = 512


def keyed(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` behind the ``apikey`` gate, with AuthErrors rendered."""

    async def gated(request: Request) -> Response:
        require_api_key(request, runtime_of(request).tokens)
        return await endpoint(request)

    gated.__name__ = endpoint.__name__
    return handles_auth_errors(gated)


def invalid_credentials() -> AuthError:
    return AuthError(400, "invalid_credentials", "Invalid login credentials")


# --- open routes ---------------------------------------------------------------------------------


async def health(request: Request) -> JSONResponse:
    return json_response({"version": "wexlot", "name": "GoTrue", "description": "WeXlot auth"})


async def settings(request: Request) -> JSONResponse:
    signup = runtime_of(request).settings.signup_enabled
    return json_response(
        {
            "external": {"email": True, "phone": False, "anonymous_users": False},
            "disable_signup": not signup,
            "mailer_autoconfirm": True,
            "phone_autoconfirm": False,
            "sms_provider": "",
            "saml_enabled": False,
        }
    )


async def not_found(request: Request) -> Response:
    raise AuthError(404, "not_found", "Not Found")


# --- sessions ------------------------------------------------------------------------------------


async def token(request: Request) -> Response:
    grant = request.query_params.get("grant_type")
    body = await read_json(request)
    if grant == "password":
        return await _password_grant(request, body)
    if grant == "refresh_token":
        return await _refresh_grant(request, body)
    raise AuthError(400, "invalid_credentials", "unsupported_grant_type")


async def _password_grant(request: Request, body: dict[str, Any]) -> Response:
    rt, state = runtime_of(request), auth_state(request)
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not email.strip():
        if body.get("phone"):
            raise AuthError(400, "phone_provider_disabled", "Phone logins are disabled")
        raise AuthError(400, "validation_failed", "missing email or phone")
    if not isinstance(password, str) or not password:
        raise invalid_credentials()
    email = email.strip().lower()
    attempt = state.limiter.begin(email, client_address(request))
    async with rt.db.read() as conn:
        account = await conn.run_sync(users.by_email, email)
    stored_hash = account.user.encrypted_password if account else None
    if account is None or not await state.verify_password(stored_hash, password):
        raise invalid_credentials()
    state.limiter.succeeded(attempt)
    # Checked only after the password, so that a ban says nothing to someone without it.
    now = users.now_utc()
    if account.banned(now):
        raise user_banned()
    new_hash = None
    if stored_hash and passwords.needs_rehash(stored_hash):
        new_hash = await state.hash_password(password)
    user_agent = (request.headers.get("user-agent") or "")[:USER_AGENT_MAX] or None
    async with rt.db.write() as conn:
        current = await conn.run_sync(users.get, account.id)
        if current is None:  # deleted while we were checking the password
            raise invalid_credentials()
        if current.banned(now):
            raise user_banned()
        session_id, refresh = await conn.run_sync(sessions.start, current.id, now, user_agent, client_address(request))
        await conn.run_sync(users.record_sign_in, current.id, now, new_hash)
        current = await conn.run_sync(users.get, current.id)
    assert current is not None
    return json_response(session_json(rt.tokens, current, session_id, refresh))


async def _refresh_grant(request: Request, body: dict[str, Any]) -> Response:
    rt, state = runtime_of(request), auth_state(request)
    presented = body.get("refresh_token")
    if not isinstance(presented, str) or not presented:
        raise AuthError(400, "validation_failed", "refresh_token required")
    now = users.now_utc()
    async with rt.db.write() as conn:
        row = await conn.run_sync(sessions.lookup, presented)
        if row is None:
            named = sessions.session_of(presented)
            if named is not None and not await conn.run_sync(sessions.exists, named):
                raise AuthError(400, "session_not_found", "Invalid Refresh Token: Session Not Found")
            raise AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        account = await conn.run_sync(users.get, row.user_id)
        if account is None:
            raise AuthError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        if account.banned(now):
            raise user_banned()
        refresh = await conn.run_sync(sessions.rotate, row, now, state.policy.refresh_reuse_interval)
    # Outside the transaction: the replay's consequence (the deleted session) must be committed.
    if refresh is None:
        raise AuthError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
    return json_response(session_json(rt.tokens, account, row.session_id, refresh))


async def logout(request: Request) -> Response:
    scope = request.query_params.get("scope") or "global"
    if scope not in sessions.SCOPES:
        raise AuthError(400, "validation_failed", "Unsupported logout scope; use global, local or others")
    rt = runtime_of(request)
    claims = bearer_claims(request, rt.tokens)
    async with rt.db.write() as conn:
        account = await conn.run_sync(signed_in, claims)
        await conn.run_sync(sessions.end, account.id, claims.get("session_id"), scope)
    await rt.realtime.recheck_sessions(account.id)  # realtime channels of ended sessions stop at once
    return no_content()


# --- the signed-in user --------------------------------------------------------------------------


async def user(request: Request) -> Response:
    if request.method == "PUT":
        return await _update_user(request)
    rt = runtime_of(request)
    claims = bearer_claims(request, rt.tokens)
    async with rt.db.read() as conn:
        account = await conn.run_sync(signed_in, claims)
    _refuse_banned(account)
    return json_response(account_json(account))


async def _update_user(request: Request) -> Response:
    rt = runtime_of(request)
    claims = bearer_claims(request, rt.tokens)
    body = await read_json(request)
    async with rt.db.read() as conn:
        account = await conn.run_sync(signed_in, claims)
    _refuse_banned(account)
    email = body.get("email")
    if email is not None and users.normalize_email(email) != account.email:
        raise AuthError(422, "validation_failed", "Email addresses are changed by an administrator")
    data = body.get("data")
    if data is not None and not isinstance(data, dict):
        raise AuthError(400, "validation_failed", "data must be a JSON object")
    new_hash = await _new_password_hash(request, account, body)
    actor = account.staff.id if account.staff else None
    async with rt.db.write() as conn:
        await rt.db.set_actor(conn, actor)
        current = await conn.run_sync(signed_in, claims)
        _refuse_banned(current)
        updated = await conn.run_sync(
            lambda c: users.update_user(c, current, password_hash=new_hash, user_metadata=data)
        )
        if new_hash is not None:  # a new password signs out every other device
            await conn.run_sync(sessions.end, current.id, claims.get("session_id"), "others")
    await runtime_of(request).realtime.recheck_sessions(current.id)
    return json_response(account_json(updated))


async def _new_password_hash(request: Request, account: Account, body: dict[str, Any]) -> str | None:
    password = body.get("password")
    if password is None:
        return None
    if not isinstance(password, str):
        raise AuthError(400, "validation_failed", "password must be a string")
    passwords.check_strength(password)
    state = auth_state(request)
    current_password = body.get("current_password")
    if current_password is not None:
        # Guessing the current password with a stolen token is a sign-in attempt like any other.
        attempt = state.limiter.begin(account.email, client_address(request))
        if not isinstance(current_password, str) or not await state.verify_password(
            account.user.encrypted_password, current_password
        ):
            raise AuthError(400, "invalid_credentials", "Current password is incorrect")
        state.limiter.succeeded(attempt)
    if await state.verify_password(account.user.encrypted_password, password):
        raise AuthError(422, "same_password", "New password should be different from the old password.")
    return await state.hash_password(password)


def _refuse_banned(account: Account) -> None:
    if account.banned(users.now_utc()):
        raise AuthError(403, "user_banned", "User is banned")


# --- sign-up -------------------------------------------------------------------------------------


async def signup(request: Request) -> Response:
    """Self sign-up, off unless ``WEXLOT_SIGNUP_ENABLED``; the new login becomes an active ``rep``.

    The email is not verified (no mail is sent), so sign-up never attaches the login to an
    existing staff row: an email some staff row already uses is 422 ``user_already_exists``.
    """
    rt, state = runtime_of(request), auth_state(request)
    if not rt.settings.signup_enabled:
        raise AuthError(422, "signup_disabled", "Signups not allowed for this instance")
    body = await read_json(request)
    if body.get("phone") and not body.get("email"):
        raise AuthError(400, "phone_provider_disabled", "Phone signups are disabled")
    email = users.normalize_email(body.get("email"))
    password = body.get("password")
    if not isinstance(password, str) or not password:
        raise AuthError(422, "validation_failed", "Signup requires a valid password")
    passwords.check_strength(password)
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise AuthError(400, "validation_failed", "data must be a JSON object")
    name = str(data.get("full_name") or data.get("name") or "").strip()
    spec = StaffSpec(full_name=name or email.split("@", 1)[0], role="rep")
    password_hash = await state.hash_password(password)
    now = users.now_utc()
    user_agent = (request.headers.get("user-agent") or "")[:USER_AGENT_MAX] or None
    try:
        async with rt.db.write() as conn:
            account = await conn.run_sync(
                lambda c: users.create(
                    c, email, password_hash, user_metadata=data, spec=spec, link_existing_staff=False, now=now
                )
            )
            session_id, refresh = await conn.run_sync(
                sessions.start, account.id, now, user_agent, client_address(request)
            )
            await conn.run_sync(users.record_sign_in, account.id, now)
            account = await conn.run_sync(users.get, account.id)
    except AuthError as exc:
        if exc.code == "email_exists":
            raise AuthError(422, "user_already_exists", "User already registered") from None
        raise
    assert account is not None
    return json_response(session_json(rt.tokens, account, session_id, refresh))


routes: list[BaseRoute] = [
    Route("/health", health, methods=["GET", "HEAD"]),
    Route("/settings", settings, methods=["GET"]),
    Route("/token", keyed(token), methods=["POST"]),
    Route("/user", keyed(user), methods=["GET", "PUT"]),
    Route("/logout", keyed(logout), methods=["POST"]),
    Route("/signup", keyed(signup), methods=["POST"]),
    Route("/admin/users", keyed(admin.users_collection), methods=["GET", "POST"]),
    Route("/admin/users/{user_id}", keyed(admin.user_item), methods=["GET", "PUT", "DELETE"]),
    Route("/{path:path}", keyed(not_found), methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
]
