"""Harness for /auth/v1 tests: the real app (lifespan started) over the test database, driven by httpx.

Every response an :class:`AuthApi` receives is kept, and when the test ends the fixture checks that
none of them contains a password, a password hash, a refresh-token hash or the JWT secret.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import update

from wexlot.app import build_app
from wexlot.auth import users
from wexlot.auth.policy import AuthPolicy, configure
from wexlot.config import Settings
from wexlot.crm.tables import staff

PASSWORD = "correct horse 1"
CLIENT_ADDRESS = "10.1.2.3"


@dataclass(frozen=True)
class Person:
    email: str
    password: str
    user_id: str
    staff_id: str | None
    role: str | None


class AuthApi:
    """An httpx client on the app with the anon key, plus helpers for the GoTrue calls."""

    def __init__(self, app: Any, settings: Settings, address: str = CLIENT_ADDRESS) -> None:
        self.app = app
        self.settings = settings
        self.tokens = app.state.runtime.tokens
        self.anon, self.service = self.tokens.anon_key, self.tokens.service_key
        self.responses: list[httpx.Response] = []
        self.passwords: set[str] = set()
        self.http = self._client(address)

    def _client(self, address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 50000))
        return httpx.AsyncClient(
            transport=transport, base_url="http://wexlot.test", event_hooks={"response": [self._keep]}
        )

    async def _keep(self, response: httpx.Response) -> None:
        await response.aread()
        self.responses.append(response)

    @asynccontextmanager
    async def from_address(self, address: str) -> AsyncIterator[AuthApi]:
        """The same app and checks, seen from another client address."""
        other = AuthApi.__new__(AuthApi)
        other.__dict__.update(self.__dict__)
        other.http = self._client(address)
        async with other.http:
            yield other

    # --- requests --------------------------------------------------------------------------------

    def headers(self, bearer: str | None = None, key: str | None = None) -> dict[str, str]:
        key = key or self.anon
        return {"apikey": key, "Authorization": f"Bearer {bearer or key}", "X-Supabase-Api-Version": "2024-01-01"}

    async def request(
        self, method: str, path: str, bearer: str | None = None, key: str | None = None, **kw: Any
    ) -> httpx.Response:
        return await self.http.request(method, f"/auth/v1/{path}", headers=self.headers(bearer, key), **kw)

    async def sign_in(self, email: str, password: str) -> httpx.Response:
        self.passwords.add(password)
        body = {"email": email, "password": password, "gotrue_meta_security": {}}
        return await self.request("POST", "token?grant_type=password", json=body)

    async def session(self, person: Person) -> dict[str, Any]:
        r = await self.sign_in(person.email, person.password)
        assert r.status_code == 200, r.text
        session: dict[str, Any] = r.json()
        return session

    async def refresh(self, refresh_token: str) -> httpx.Response:
        return await self.request("POST", "token?grant_type=refresh_token", json={"refresh_token": refresh_token})

    async def get_user(self, access_token: str) -> httpx.Response:
        return await self.request("GET", "user", access_token)

    async def update_user(self, access_token: str, body: dict[str, Any]) -> httpx.Response:
        for key in ("password", "current_password"):
            if isinstance(body.get(key), str):
                self.passwords.add(body[key])
        return await self.request("PUT", "user", access_token, json=body)

    async def logout(self, access_token: str, scope: str | None = None) -> httpx.Response:
        return await self.request("POST", "logout" + (f"?scope={scope}" if scope else ""), access_token)

    async def admin(self, method: str, path: str, bearer: str, **kw: Any) -> httpx.Response:
        body = kw.get("json") or {}
        if isinstance(body.get("password"), str):
            self.passwords.add(body["password"])
        return await self.request(method, f"admin/{path}", bearer, **kw)

    # --- data ------------------------------------------------------------------------------------

    def person(self, email: str, role: str = "rep", *, active: bool = True, password: str = PASSWORD) -> Person:
        """A login with an active (or inactive) staff row, created through the library as the CLI does."""
        self.passwords.add(password)
        with users.transaction(self.settings.db_url) as conn:
            account = users.create_staff_user(conn, email, password, role, email.split("@")[0].title())
        assert account.staff is not None
        person = Person(account.email, password, account.id, account.staff.id, role)
        if not active:
            self.set_active(person, False)
        return person

    def set_active(self, person: Person, active: bool) -> None:
        """Flip the staff row's flag from outside the server, as an admin's REST write would."""
        with users.transaction(self.settings.db_url) as conn:
            conn.execute(update(staff).where(staff.c.id == person.staff_id).values(is_active=active))

    # --- the secrets check -------------------------------------------------------------------------

    def assert_no_secrets(self) -> None:
        refresh_tokens: set[str] = set()
        for r in self.responses:
            try:
                body = r.json()
            except ValueError:
                continue
            if isinstance(body, dict) and isinstance(body.get("refresh_token"), str):
                refresh_tokens.add(body["refresh_token"])
        forbidden = {"$argon2", "encrypted_password", self.settings.jwt_secret}
        forbidden |= self.passwords
        forbidden |= {hashlib.sha256(t.encode()).hexdigest() for t in refresh_tokens}
        for r in self.responses:
            text = r.text + json.dumps(dict(r.headers))
            leaked = sorted(s for s in forbidden if s and s in text)
            assert not leaked, f"{r.request.method} {r.request.url} leaked {leaked}: {r.text[:300]}"


@asynccontextmanager
async def running(settings: Settings, policy: AuthPolicy | None = None) -> AsyncIterator[AuthApi]:
    """The app with its lifespan started, and an :class:`AuthApi` on it; checks for leaks at the end."""
    app = build_app(settings)
    if policy is not None:
        configure(app, policy)
    async with app.router.lifespan_context(app):
        api = AuthApi(app, app.state.runtime.settings)
        async with api.http:
            yield api
        api.assert_no_secrets()


def with_settings(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, **changes)
