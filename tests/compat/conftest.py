"""A live ``wexlot serve`` per backend and test module, with four staff logins, for the official clients.

The compat tests drive the server only through the unmodified Supabase clients, so each module gets
one server per backend and shares it between its tests (starting a server and hashing four passwords
per test would dominate the run). To make that possible this directory overrides ``backend``,
``database_url`` and ``data_dir`` from ``tests/conftest.py`` with module-scoped versions built the
same way: the root ``pytest_generate_tests`` still parametrizes ``backend`` over SQLite and
PostgreSQL, and pytest then groups each module's tests by backend. Tests isolate their data by
tagging it with a unique run string, never by relying on an empty database.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.databases import module_database_fixtures
from support.live_server import LiveServer, keys

PASSWORD = "compat-Pass-2468"
# role key -> (email, staff role, full name). "rep_a" owns the private deal that "rep_b" must not see.
STAFF = {
    "admin": ("compat-admin@example.com", "admin", "Ada Admin"),
    "manager": ("compat-manager@example.com", "manager", "Max Manager"),
    "rep_a": ("compat-rep-a@example.com", "rep", "Rita Rep"),
    "rep_b": ("compat-rep-b@example.com", "rep", "Bert Rep"),
}
CLI_TIMEOUT = 120.0
LOG_TAIL_CHARS = 8000


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    role: str
    name: str


@dataclass(frozen=True)
class CompatServer:
    """What a client needs to talk to the live server, plus the server itself for its logs."""

    backend: str
    url: str
    anon_key: str
    service_key: str
    users: dict[str, Login]
    server: LiveServer

    def node_env(self) -> dict[str, str]:
        """The environment the node:test files read (see tests/compat/node/env.mjs)."""
        return {
            "WEXLOT_BACKEND": self.backend,
            "WEXLOT_URL": self.url,
            "WEXLOT_ANON_KEY": self.anon_key,
            "WEXLOT_SERVICE_KEY": self.service_key,
            "WEXLOT_USERS": json.dumps({k: vars(v) for k, v in self.users.items()}),
        }


backend, data_dir, database_url = module_database_fixtures("compat")


def create_login(data_dir: Path, database_url: str, email: str, role: str, name: str) -> None:
    """``wexlot user create`` — the operator's way of adding staff, run as a subprocess."""
    cmd = [
        sys.executable, "-m", "wexlot", "user", "create", email,
        "--password", PASSWORD, "--role", role, "--name", name,
        "--data-dir", str(data_dir), "--database-url", database_url,
    ]  # fmt: skip
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`wexlot user create {email}` exited with {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )


@pytest.fixture(scope="module")
def compat_server(backend: str, data_dir: Path, database_url: str) -> Iterator[CompatServer]:
    """The live server on this module's database, with the four STAFF logins created through the CLI."""
    for email, role, name in STAFF.values():
        create_login(data_dir, database_url, email, role, name)
    with LiveServer(data_dir, database_url, name=f"compat-{backend}") as server:
        key = keys(data_dir, database_url)
        yield CompatServer(
            backend=backend,
            url=server.url,
            anon_key=key["anon_key"],
            service_key=key["service_role_key"],
            users={k: Login(email, PASSWORD, role, name) for k, (email, role, name) in STAFF.items()},
            server=server,
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    """Attach the tail of the live server's logs to every failing compat test's report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, CompatServer):
            report.sections.append((f"wexlot server logs ({value.backend})", value.server.logs()[-LOG_TAIL_CHARS:]))
            return
