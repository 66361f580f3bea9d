"""The CRM web app in real headless Chromium (Playwright), against a live ``wexlot serve --demo``.

Debian's ``/usr/bin/chromium`` is driven through ``executable_path`` (Playwright never downloads a
browser here; ``scripts/test`` installs the Debian package). Each browser *context* is one machine: its
own storage, session and WebSocket. One server per test module and backend, with the demo team and
data plus one inactive login made with ``wexlot user create``; tests keep their data apart by name
and assert on differences, never on an empty database.

Every wait is bounded: Playwright's ``expect`` with the timeout set below, ``wait_for_event`` with an
explicit timeout. A failing test leaves a screenshot and the console of each machine in
``tests/artifacts/browser/`` and the server's log tail in its report.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect, sync_playwright

from support.chromium import CHROMIUM, launch
from support.databases import module_database_fixtures
from support.live_server import LiveServer, keys
from wexlot.crm.demo import DEMO_PASSWORD, STAFF

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
EXPECT_TIMEOUT_MS = 15_000
LIVE_TIMEOUT_MS = 20_000  # sign-in, 7 channels joined, first page loaded
HTTP_TIMEOUT = 15.0
CLI_TIMEOUT = 120.0
LOG_TAIL_CHARS = 8000
SETUP_LINE = "[CRM] Setting up real-time subscriptions..."
TABLES = ("staff", "contacts", "companies", "deals", "activities", "interactions", "platforms")

INACTIVE = ("ivy.inactive@example.com", "Ivy Inactive")
INACTIVE_PASSWORD = "Inactive-Pass-2468"
# An active rep whom a test deactivates while signed in (so the demo logins stay usable).
REVOCABLE = ("rex.revoked@example.com", "Rex Revoked")

expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    name: str
    role: str


DEMO = {m.key: Login(m.email, DEMO_PASSWORD, m.full_name, m.role) for m in STAFF}


@dataclass
class CrmServer:
    """The live server of this module and backend, plus the test side's ways to change its data."""

    backend: str
    url: str
    anon_key: str
    service_key: str
    database_url: str
    server: LiveServer

    def rest(self, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None) -> Any:
        """A service_role REST call (bypasses access rules), returning the representation."""
        response = httpx.request(
            method,
            f"{self.url}/rest/v1/{path}",
            params=params,
            json=json,
            headers={
                "apikey": self.service_key,
                "Authorization": f"Bearer {self.service_key}",
                "Prefer": "return=representation",
            },
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def realtime_api(self, path: str) -> Any:
        """A service_role GET on ``/realtime/v1/api/<path>``."""
        response = httpx.get(
            f"{self.url}/realtime/v1/api/{path}",
            headers={"apikey": self.service_key, "Authorization": f"Bearer {self.service_key}"},
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        return response.json()

    def position(self) -> int:
        """The server's current change position (everything captured so far)."""
        return int(self.realtime_api("status")["position"])

    def wait_captured(self, since: int, table: str, count: int, timeout: float = 15.0) -> None:
        """Until the server has captured ``count`` changes to ``table`` after ``since`` (bounded poll).

        Writes from outside the server are captured asynchronously (trigger log / logical replication);
        a test that needs them to be in the catch-up history, not only committed, waits for this.
        """
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            seen = len(self.realtime_api(f"changes?since={since}&tables={table}")["changes"])
            if seen >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"the server captured {seen} of {count} changes to {table} within {timeout}s")

    def outside(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """A write that bypasses the server: psycopg2 on PostgreSQL, the sqlite3 module on SQLite."""
        if self.database_url.startswith("sqlite"):
            conn = sqlite3.connect(self.database_url.removeprefix("sqlite:///"), timeout=15)
            try:
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute(sql.replace("%s", "?"), params)
                conn.commit()
            finally:
                conn.close()
            return
        pg = psycopg2.connect(self.database_url, connect_timeout=10)
        try:
            with pg, pg.cursor() as cur:
                cur.execute(sql, params)
        finally:
            pg.close()


@dataclass
class Machine:
    """One browser context: a separate machine with its own session, storage and console."""

    name: str
    context: BrowserContext
    page: Page
    base_url: str
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda err: self.console.append(f"[pageerror] {err}"))
        self.page.on("request", lambda request: self.requests.append(request.url))

    def _on_console(self, message: ConsoleMessage) -> None:
        self.console.append(message.text)

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def sign_in(self, login: Login, path: str = "/contacts") -> None:
        """Signs in from the sign-in page at ``path`` and waits until the page is live and loaded."""
        self.goto(path)
        self.page.get_by_label("Email").fill(login.email)
        self.page.get_by_label("Password").fill(login.password)
        self.page.get_by_role("button", name="Sign in").click()
        self.expect_ready()

    def expect_ready(self) -> None:
        """All 7 channels joined (indicator says Live) and the page's data loaded."""
        expect(self.page.locator("#connection")).to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT_MS)
        # A page is mounted (not the sign-in form) and none of its parts is still loading.
        page = self.page.locator("body[data-auth='in'] main > section:not(.signin)")
        expect(page).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
        expect(self.page.locator("main section[data-state='loading']")).to_have_count(0, timeout=LIVE_TIMEOUT_MS)

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.console if line.startswith(prefix)]

    def wait_console(self, prefix: str, timeout_ms: float = EXPECT_TIMEOUT_MS) -> str:
        """The first console line starting with ``prefix``, waiting at most ``timeout_ms``."""
        # Playwright's sync API delivers events only inside its own calls, so nothing can slip in
        # between this check and the wait below.
        found = self.lines(prefix)
        if found:
            return found[0]
        message = self.page.wait_for_event("console", predicate=lambda m: m.text.startswith(prefix), timeout=timeout_ms)
        return message.text

    def row(self, text: str) -> Any:
        """The list row (``tr``) whose text contains ``text``."""
        return self.page.locator("table.list tbody tr", has_text=text)

    def count(self) -> int:
        return int(self.page.locator("[data-testid=count]").get_attribute("data-total") or "0")

    def screenshot(self, name: str, backend: str, *, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{backend}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def expect_deactivated(machine: Machine, crm: CrmServer) -> None:
    """The server closed this machine's channels for a deactivated account, and its screen says so without a
    reload: back at sign-in, no menu, no channels (the page set ``window.__noReload`` beforehand)."""
    expect(machine.page.get_by_text("Your account was deactivated")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    assert "You no longer have permission to read from this Channel topic" in crm.server.logs()
    expect(machine.page.get_by_role("heading", name="Sign in to WeXlot")).to_be_visible()
    expect(machine.page.locator("#nav")).to_be_hidden()
    assert machine.page.evaluate("window.supabase.getChannels().length") == 0
    assert machine.page.evaluate("window.__noReload") == "still here"


# --- module-scoped server per backend (overrides tests/conftest.py's function-scoped fixtures) ----------


backend, data_dir, database_url = module_database_fixtures("browser")


def _cli(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wexlot", *args],
        capture_output=True, text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"`wexlot {' '.join(args[:2])}` exited with {result.returncode}\n{result.stderr}")


@pytest.fixture(scope="module")
def crm(backend: str, data_dir: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[CrmServer]:
    """``wexlot serve --demo`` on this module's database, plus two logins made with ``wexlot user create``.

    A module may set ``SERVER_ENV`` (a dict of ``WEXLOT_*`` settings) for its server.
    """
    for stale in ARTIFACTS.glob(f"FAILED-*{backend}*"):  # evidence of an earlier run's failures
        stale.unlink()
    env = getattr(request.module, "SERVER_ENV", {})
    with LiveServer(data_dir, database_url, extra_args=["--demo"], env=env, name=f"browser-{backend}") as server:
        # After the demo load (it only fills an empty database), like an operator adding colleagues.
        for email, name in (INACTIVE, REVOCABLE):
            _cli(
                "user", "create", email, "--role", "rep", "--name", name, "--password", INACTIVE_PASSWORD,
                "--data-dir", str(data_dir), "--database-url", database_url,
            )  # fmt: skip
        key = keys(data_dir, database_url)
        crm = CrmServer(backend, server.url, key["anon_key"], key["service_role_key"], database_url, server)
        crm.rest("PATCH", "staff", params={"email": f"eq.{INACTIVE[0]}"}, json={"is_active": False})
        yield crm


# --- the browser ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: Playwright's sync API keeps an asyncio loop marked as running while it
    # is open, which would break every asyncio test that pytest runs after the browser modules.
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (./scripts/test installs it)")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def machines(browser: Browser, crm: CrmServer, request: pytest.FixtureRequest) -> Iterator[Callable[..., Machine]]:
    """``machines("A")`` → a new browser context (a machine) on the live server; closed after the test."""
    opened: list[Machine] = []

    def open_machine(name: str, *, base_url: str | None = None, viewport: dict[str, int] | None = None) -> Machine:
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 800})
        machine = Machine(name, context, context.new_page(), base_url or crm.url)
        opened.append(machine)
        return machine

    yield open_machine
    report = getattr(request.node, "rep_call", None)
    for machine in opened:
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            stem = f"FAILED-{request.node.name}-{machine.name}".replace("/", "_").replace("[", "-").replace("]", "")
            try:
                machine.page.screenshot(path=str(ARTIFACTS / f"{stem}.png"), full_page=True)
            except Exception:
                pass
            (ARTIFACTS / f"{stem}.console.txt").write_text("\n".join(machine.console))
        machine.context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, None]:
    """Keeps the call report on the item (for the screenshots above) and adds the server log tail."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    if not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, CrmServer):
            report.sections.append((f"wexlot server logs ({value.backend})", value.server.logs()[-LOG_TAIL_CHARS:]))
            return
