"""Realtime with the unmodified npm ``@supabase/supabase-js`` (tests/compat/node/realtime*.test.mjs) vs the server.

The node:test files do the client side. This module gives them what only the test side can do,
through a small JSON control server on 127.0.0.1 (``WEXLOT_RT_CONTROL``):

* ``POST /outside`` — statements run in one transaction that bypasses the server: psycopg2 on
  PostgreSQL, the ``sqlite3`` module (``PRAGMA foreign_keys=ON``) on the SQLite file;
* ``POST /scenario/start`` … ``GET /scenario/result`` — the reconnect scenario's writer: ~50 changes
  to tagged contacts through REST (as rep A and as service_role) and directly in the database, which
  cuts the client's TCP connection mid-stream (``tests/support/tcp_proxy.py``), keeps writing while
  the proxy refuses connections, then lets the client back in and writes on while it catches up;
* ``GET /scenario/truth`` — the contacts rep B may read, from a service-key REST read;
* ``POST /report`` — the client's counters (applied / stale / duplicate events), checked here too.

Without ``WEXLOT_RT_CONTROL`` (e.g. a plain ``node --test`` in tests/compat/node) the realtime files
register no tests; ``test_supabase_js.py`` leaves them out.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg2
import pytest
from node_runner import run_node_tests

from support.tcp_proxy import TcpProxy

if TYPE_CHECKING:
    from conftest import CompatServer  # tests/compat/conftest.py; annotations only

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

# node file -> how many tests it holds (fewer means some silently vanished; a file that registered no
# test at all is reported by node as one passing test named after the file).
NODE_FILES = {"realtime-changes.test.mjs": 3, "realtime-access.test.mjs": 3, "realtime-catchup.test.mjs": 1}
RECONNECT_FILE = ("realtime-reconnect.test.mjs", 1)
NODE_TIMEOUT = 150.0  # seconds for one node file
TEST_TIMEOUT_MS = 90_000  # per node test
HTTP_TIMEOUT = 15.0


# --- helpers shared by the control server ------------------------------------------------------------


class OutsideDb:
    """Writes that do not go through the server: ``psql`` / the ``sqlite3`` shell, as an operator would."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self._lock = threading.Lock()

    def execute(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> int:
        return self.transaction([(sql, params)])

    def transaction(self, statements: list[tuple[str, list[Any] | tuple[Any, ...]]]) -> int:
        """Run the statements in one transaction; returns the total row count."""
        rowcount = 0
        with self._lock:
            if self.url.startswith("sqlite"):
                conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=15)
                try:
                    conn.execute("PRAGMA foreign_keys=ON")
                    for sql, params in statements:
                        rowcount += conn.execute(sql.replace("%s", "?"), tuple(params)).rowcount
                    conn.commit()
                finally:
                    conn.close()
                return rowcount
            conn = psycopg2.connect(self.url, connect_timeout=10)
            try:
                with conn, conn.cursor() as cur:
                    for sql, params in statements:
                        cur.execute(sql, tuple(params))
                        rowcount += cur.rowcount
            finally:
                conn.close()
            return rowcount


def password_session(server: CompatServer, who: str) -> dict[str, Any]:
    login = server.users[who]
    r = httpx.post(
        f"{server.url}/auth/v1/token?grant_type=password",
        json={"email": login.email, "password": login.password},
        headers={"apikey": server.anon_key},
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 200, r.text
    session: dict[str, Any] = r.json()
    return session


def staff_id(server: CompatServer, who: str) -> str:
    r = httpx.get(
        f"{server.url}/rest/v1/staff?select=id&email=eq.{server.users[who].email}",
        headers={"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}"},
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 200, r.text
    return str(r.json()[0]["id"])


# --- the reconnect scenario's writer -------------------------------------------------------------------

# How often each kind of change is picked (rep A's REST writes, service_role REST, outside the server).
OP_WEIGHTS = {
    "insert_a": 4, "insert_a_private": 1, "insert_outside": 3,
    "update_a": 3, "update_service": 2, "update_outside": 3,
    "toggle_a": 2, "toggle_outside": 1,
    "delete_a": 1, "delete_outside": 1,
}  # fmt: skip


@dataclass
class Row:
    owner: str | None  # "A" (rep A) or None (written from outside / by service_role)
    visibility: str


@dataclass
class ContactWriter:
    """50 changes to contacts tagged ``last_name = tag``, with a connection cut in the middle.

    Ops 0-4 (inserts) happen before the client subscribes, 5-14 race with its subscribe + snapshot;
    then the writer waits until the client says it is live, writes 5 more, pauses the proxy and cuts
    every connection, writes 18 while new connections are refused (at least ``min_outage`` seconds),
    resumes the proxy and writes 12 more while the client reconnects, re-joins and catches up.
    """

    server: CompatServer
    db: OutsideDb
    proxy: TcpProxy
    tag: str
    rep_a_token: str
    min_outage: float = 2.2
    ready: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    log: list[str] = field(default_factory=list)
    error: str | None = None
    cut_connections: int = 0
    outage_seconds: float = 0.0
    rows: dict[str, Row] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.tag)

    def seed(self) -> None:
        """Ops 0-4, before the client subscribes: rows only the snapshot can bring."""
        self._http = httpx.Client(base_url=self.server.url, timeout=HTTP_TIMEOUT)
        for i in range(5):
            self._op(i, self.rng, kinds={"insert_a": 2, "insert_outside": 1})

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"writer-{self.tag}", daemon=True).start()

    def _run(self) -> None:
        try:
            self._ops(range(5, 15), 0.06)  # racing with the client's subscribe + snapshot
            if not self.ready.wait(30):
                raise RuntimeError("the client never reported that it is live")
            self._ops(range(15, 20), 0.04)
            self.proxy.pause()
            self.cut_connections = self.proxy.cut()
            cut_at = time.monotonic()
            self.log.append(f"cut {self.cut_connections} connections")
            self._ops(range(20, 38), 0.1)  # while the proxy refuses connections
            time.sleep(max(0.0, self.min_outage - (time.monotonic() - cut_at)))
            self.proxy.resume()
            self.outage_seconds = time.monotonic() - cut_at
            self.log.append(f"resumed after {self.outage_seconds:.2f}s")
            self._ops(range(38, 50), 0.12)  # while the client reconnects, re-joins and catches up
        except Exception as exc:  # reported through /scenario/result
            self.error = f"{exc.__class__.__name__}: {exc}"
        finally:
            self._http.close()
            self.done.set()

    def _ops(self, numbers: range, pause: float) -> None:
        for i in numbers:
            self._op(i, self.rng)
            time.sleep(pause)

    def _op(self, i: int, rng: random.Random, kinds: dict[str, int] | None = None) -> None:
        """One insert, update, visibility toggle or delete, through REST or from outside the server."""
        alive = sorted(self.rows)
        mine = [k for k in alive if self.rows[k].owner == "A"]
        if kinds is None:
            kinds = dict(OP_WEIGHTS)
            if len(alive) < 4:
                kinds = {k: w for k, w in kinds.items() if k.startswith("insert")}
            elif not mine:
                kinds = {k: w for k, w in kinds.items() if not k.endswith("_a")}
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
        if kind.startswith("insert"):
            new_id = str(uuid.uuid4())
            if kind == "insert_outside":
                self.db.execute(
                    "INSERT INTO contacts (id, first_name, last_name) VALUES (%s, %s, %s)", (new_id, f"op{i}", self.tag)
                )
                self.rows[new_id] = Row(None, "team")
            else:
                visibility = "private" if kind == "insert_a_private" else "team"
                self._rest("POST", "contacts", {"id": new_id, "first_name": f"op{i}", "last_name": self.tag,
                                                "visibility": visibility})  # fmt: skip
                self.rows[new_id] = Row("A", visibility)
            self.log.append(f"{i} {kind} {new_id[:8]}")
            return
        target = rng.choice(mine if kind.endswith("_a") else alive)
        row = self.rows[target]
        flipped = "private" if row.visibility == "team" else "team"
        if kind == "update_a":
            self._rest("PATCH", f"contacts?id=eq.{target}", {"first_name": f"op{i}"})
        elif kind == "update_service":
            self._rest("PATCH", f"contacts?id=eq.{target}", {"notes": f"op{i}"}, service=True)
        elif kind == "update_outside":
            self.db.execute("UPDATE contacts SET first_name = %s WHERE id = %s", (f"op{i}", target))
        elif kind == "toggle_a":
            self._rest("PATCH", f"contacts?id=eq.{target}", {"visibility": flipped})
            row.visibility = flipped
        elif kind == "toggle_outside":
            self.db.execute("UPDATE contacts SET visibility = %s WHERE id = %s", (flipped, target))
            row.visibility = flipped
        elif kind == "delete_a":
            self._rest("DELETE", f"contacts?id=eq.{target}")
            del self.rows[target]
        else:
            self.db.execute("DELETE FROM contacts WHERE id = %s", (target,))
            del self.rows[target]
        self.log.append(f"{i} {kind} {target[:8]}")

    def _rest(self, method: str, path: str, body: Any = None, service: bool = False) -> None:
        token = self.server.service_key if service else self.rep_a_token
        apikey = self.server.service_key if service else self.server.anon_key
        r = self._http.request(method, f"/rest/v1/{path}", json=body,
                              headers={"apikey": apikey, "Authorization": f"Bearer {token}",
                                       "Prefer": "return=minimal"})  # fmt: skip
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path} -> {r.status_code} {r.text}")


def visible_contacts(server: CompatServer, tag: str, viewer_staff_id: str) -> list[dict[str, Any]]:
    """Contacts tagged ``tag`` that ``viewer`` (a rep) may read, by a service-key REST read: [{id, version}]."""
    r = httpx.get(
        f"{server.url}/rest/v1/contacts?select=id,version,visibility,owner_id&last_name=eq.{tag}&order=id",
        headers={"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}"},
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 200, r.text
    return [
        {"id": row["id"], "version": row["version"]}
        for row in r.json()
        if row["visibility"] == "team" or row["owner_id"] == viewer_staff_id
    ]


# --- the control server --------------------------------------------------------------------------------


class Control:
    def __init__(self, server: CompatServer, database_url: str) -> None:
        self.server = server
        self.db = OutsideDb(database_url)
        self.proxy: TcpProxy | None = None
        self.writer: ContactWriter | None = None
        self.reports: list[dict[str, Any]] = []
        self._rep_a_token: str | None = None
        self._rep_b_staff: str | None = None
        control = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._dispatch(None)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self._dispatch(json.loads(self.rfile.read(length) or b"null"))

            def _dispatch(self, body: Any) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                try:
                    status, answer = 200, control.handle(url.path, query, body)
                except Exception as exc:
                    status, answer = 500, {"error": f"{exc.__class__.__name__}: {exc}"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="rt-control", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(10)

    @property
    def rep_b_staff(self) -> str:
        if self._rep_b_staff is None:
            self._rep_b_staff = staff_id(self.server, "rep_b")
        return self._rep_b_staff

    def handle(self, path: str, query: dict[str, str], body: Any) -> Any:
        routes: dict[str, Callable[[], Any]] = {
            "/outside": lambda: {"rowcount": self.db.transaction([(sql, args) for sql, args in body["statements"]])},
            "/scenario/start": lambda: self._start(body["tag"]),
            "/scenario/ready": self._ready,
            "/scenario/result": self._result,
            "/scenario/truth": lambda: visible_contacts(self.server, query["tag"], self.rep_b_staff),
            "/report": lambda: self.reports.append(body) or {"ok": True},
        }
        if path not in routes:
            raise KeyError(f"no control route {path}")
        return routes[path]()

    def _start(self, tag: str) -> dict[str, Any]:
        if self.proxy is None:
            raise RuntimeError("no proxy for this test")
        if self._rep_a_token is None:
            self._rep_a_token = password_session(self.server, "rep_a")["access_token"]
        self.writer = ContactWriter(self.server, self.db, self.proxy, tag, self._rep_a_token)
        self.writer.seed()
        self.writer.start()
        return {"ok": True, "rep_b": self.rep_b_staff}

    def _ready(self) -> dict[str, Any]:
        assert self.writer is not None
        self.writer.ready.set()
        return {"ok": True}

    def _result(self) -> dict[str, Any]:
        writer = self.writer
        assert writer is not None
        finished = writer.done.wait(60)
        return {
            "finished": finished,
            "error": writer.error,
            "cut_connections": writer.cut_connections,
            "outage_seconds": round(writer.outage_seconds, 2),
            "ops": len([line for line in writer.log if line[:1].isdigit()]),
            "log": writer.log,
        }


@pytest.fixture(scope="module")
def control(compat_server: CompatServer, database_url: str) -> Iterator[Control]:
    ctl = Control(compat_server, database_url)
    yield ctl
    ctl.close()


# --- the tests -------------------------------------------------------------------------------------------


def run_node(server: CompatServer, control: Control, node_file: str, expected: int, extra_env: dict[str, str]) -> str:
    env = {**server.node_env(), "WEXLOT_RT_CONTROL": control.url, **extra_env}
    summary = run_node_tests(
        [node_file], env, what=node_file, backend=server.backend, timeout=NODE_TIMEOUT, test_timeout_ms=TEST_TIMEOUT_MS
    )
    stdout = str(summary.pop("_stdout"))
    assert summary.get("tests") == expected, f"{node_file}: {summary.get('tests')} tests ran, expected {expected}"
    assert f"{node_file} (" not in stdout, f"{node_file} registered no tests\n{stdout}"
    return stdout


@pytest.mark.parametrize("node_file", NODE_FILES)
def test_realtime_supabase_js(compat_server: CompatServer, control: Control, node_file: str) -> None:
    run_node(compat_server, control, node_file, NODE_FILES[node_file], {})


def test_realtime_supabase_js_reconnect_catch_up(compat_server: CompatServer, control: Control) -> None:
    """Snapshot + live stream + catch-up after a cut connection: the client's rows equal the database's."""
    port = int(compat_server.url.rsplit(":", 1)[1])
    control.reports.clear()
    with TcpProxy("127.0.0.1", port, lifetime=150) as proxy:
        control.proxy = proxy
        try:
            run_node(compat_server, control, *RECONNECT_FILE, {"WEXLOT_PROXY_URL": proxy.url})
        finally:
            control.proxy = None
    assert control.writer is not None and control.writer.error is None, control.writer and control.writer.error
    (report,) = [r for r in control.reports if r.get("scenario") == "reconnect"]
    assert control.writer.cut_connections >= 1 and proxy.cuts >= 1
    assert report["final_equal"] is True
    assert report["subscribed"] >= 2, report  # the first join and at least one re-join after the cut
    assert report["applied"]["catchup"] > 0, f"nothing came only through catch-up: {report}"
    assert report["duplicates"]["live_live"] == 0 and report["duplicates"]["catchup_catchup"] == 0, report
    assert report["forbidden"] == 0, report
