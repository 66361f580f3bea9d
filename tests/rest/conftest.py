from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from support.crm import Login, make_login
from wexlot.app import build_app
from wexlot.config import Settings
from wexlot.runtime import Runtime

OBJECT = "application/vnd.pgrst.object+json"


class Rest:
    """A TestClient on a real app over the test database, with per-principal request helpers."""

    def __init__(self, client: TestClient, runtime: Runtime, url: str) -> None:
        self.client = client
        self.runtime = runtime
        self.url = url
        self.tokens = runtime.tokens
        self.service = self.tokens.service_key
        self.anon = self.tokens.anon_key

    def login(self, role: str, **kw: Any) -> Login:
        return make_login(self.url, self.tokens, role, **kw)

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        return {"apikey": self.anon if token != self.service else self.service,
                "Authorization": f"Bearer {token or self.anon}", **extra}  # fmt: skip

    def request(self, method: str, path: str, token: str | None = None, headers: dict[str, str] | None = None,
                **kw: Any) -> httpx.Response:  # fmt: skip
        return self.client.request(method, f"/rest/v1/{path}", headers={**self.headers(token), **(headers or {})}, **kw)

    def get(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        return self.request("GET", path, token, **kw)

    def post(self, path: str, body: Any, token: str | None = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, token, json=body, **kw)

    def patch(self, path: str, body: Any, token: str | None = None, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, token, json=body, **kw)

    def delete(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, token, **kw)

    def insert(self, table: str, body: Any, token: str | None = None) -> Any:
        """Insert as ``token`` (default service role) and return the representation."""
        query = "select=*"
        if isinstance(body, list):  # as supabase-js does: the union of keys, absent ones become defaults
            keys = sorted({k for row in body for k in row})
            query += "&columns=" + ",".join(f'"{k}"' for k in keys)
        prefer = "return=representation,missing=default"
        r = self.post(f"{table}?{query}", body, token or self.service, headers={"Prefer": prefer})
        assert r.status_code == 201, r.text
        return r.json()


@pytest.fixture
def rest(database_url: str, data_dir: Any) -> Iterator[Rest]:
    settings = Settings(data_dir=str(data_dir), database_url=database_url, max_body_bytes=64 * 1024)
    runtime = Runtime.create(settings)
    app = build_app(settings, runtime)
    with TestClient(app) as client:
        yield Rest(client, runtime, database_url)
