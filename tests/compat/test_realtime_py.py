"""Realtime with the unmodified PyPI ``supabase`` async client (``realtime`` 2.34.1, vsn 1.0.0) vs ``wexlot serve``.

``acreate_client`` → ``sign_in_with_password`` (supabase-py hands the session token to realtime-py) →
``client.channel(...).on_postgres_changes(...)`` → ``await channel.subscribe(callback)``. Covered: INSERT,
UPDATE and DELETE on all 7 tables (staff and platforms written by the admin), a filter, writes made
directly in the database (psycopg2 / the sqlite3 module) and through REST, private rows and their
children moving out of / into a rep's view, token refresh, and a connection cut mid-stream through
``tests/support/tcp_proxy.py`` followed by catch-up (``/realtime/v1/api/changes``) from the last
``position`` checkpoint — the client's rows must then equal the database's exactly.

One server per backend is shared by the module (tests/compat/conftest.py); rows are tagged per test.
Clients are created inside each test: pytest-asyncio gives every test its own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import psycopg2
import pytest
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from realtime import AsyncRealtimeChannel, RealtimeSubscribeStates
from support.tcp_proxy import TcpProxy

if TYPE_CHECKING:
    from conftest import CompatServer  # tests/compat/conftest.py; annotations only

pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(120),
    # supabase 2.34.1 itself passes these deprecated arguments to its postgrest client on every sign-in.
    pytest.mark.filterwarnings(r"ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning"),
    # realtime 2.34.1 reads ConnectionClosed.code/.reason when the connection drops (websockets deprecations).
    pytest.mark.filterwarnings(r"ignore:ConnectionClosed\.(code|reason) is deprecated:DeprecationWarning"),
]

TABLES = ("staff", "platforms", "companies", "contacts", "deals", "activities", "interactions")
COMMIT_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
WAIT = 10.0  # seconds for any single expected event


# --- helpers ---------------------------------------------------------------------------------------------


@dataclass
class SignedIn:
    client: AsyncClient
    access_token: str
    staff_id: str


async def sign_in(server: CompatServer, who: str, url: str | None = None, **realtime: Any) -> SignedIn:
    """A fresh async client signed in with ``sign_in_with_password``; realtime has the user's token."""
    options = AsyncClientOptions(realtime=realtime or None)  # e.g. params={"checkpoints": "1"}
    client = await acreate_client(url or server.url, server.anon_key, options)
    login = server.users[who]
    response = await client.auth.sign_in_with_password({"email": login.email, "password": login.password})
    assert response.session is not None and response.user is not None
    token = response.session.access_token
    # supabase-py passes the new token to realtime-py in a background task (set_auth): let it run.
    await until(lambda: client.realtime.access_token == token, "realtime has the session token")
    staff = await client.table("staff").select("id").eq("user_id", response.user.id).single().execute()
    return SignedIn(client, token, staff.data["id"])


async def until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {what}")
        await asyncio.sleep(0.02)


async def close(*people: SignedIn | None) -> None:
    for person in people:
        if person is not None:
            try:
                await asyncio.wait_for(person.client.remove_all_channels(), 5)
            except (TimeoutError, Exception):
                await person.client.realtime.close()


class Feed:
    """Every postgres_changes payload one channel's callbacks received, as (binding index, payload)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[tuple[int, dict[str, Any]]] = []
        self.statuses: list[str] = []

    def callback(self, index: int) -> Callable[[Any], None]:
        return lambda payload: self.events.append((index, payload))

    def find(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        return next((p for _, p in self.events if predicate(p)), None)

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        while (found := self.find(predicate)) is None:
            if time.monotonic() > deadline:
                last = [p["data"].get("type") + " " + p["data"]["table"] for _, p in self.events[-8:]]
                raise AssertionError(f"{self.name}: no {what} in {timeout}s (statuses {self.statuses}); last {last}")
            await asyncio.sleep(0.02)
        return found["data"]

    def about(self, row_id: str) -> list[dict[str, Any]]:
        return [p["data"] for _, p in self.events if row_id in (row_of(p["data"]).get("id"),)]


async def insert_row(person: SignedIn, table: str, row: dict[str, Any]) -> dict[str, Any]:
    """Insert through the client's REST API and return the stored row."""
    result = await person.client.table(table).insert(row).execute()
    return dict(result.data[0])


def row_of(data: dict[str, Any]) -> dict[str, Any]:
    return (data.get("old_record") if data["type"] == "DELETE" else data.get("record")) or {}


def change(typ: str, row_id: str, table: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def match(payload: dict[str, Any]) -> bool:
        data = payload["data"]
        return data["type"] == typ and row_of(data).get("id") == row_id and table in (None, data["table"])

    return match


async def subscribe(
    person: SignedIn,
    name: str,
    bindings: list[dict[str, str]],
    setup: Callable[[AsyncRealtimeChannel], None] | None = None,
    on_status: Callable[[RealtimeSubscribeStates, Exception | None], None] | None = None,
) -> tuple[AsyncRealtimeChannel, Feed]:
    feed = Feed(name)
    channel = person.client.channel(name)
    for index, binding in enumerate(bindings):
        channel.on_postgres_changes(
            binding.get("event", "*"), feed.callback(index), table=binding["table"], filter=binding.get("filter")
        )  # type: ignore[arg-type]
    if setup is not None:
        setup(channel)

    def status(state: RealtimeSubscribeStates, err: Exception | None) -> None:
        feed.statuses.append(f"{state.value}{f': {err}' if err else ''}")
        if on_status is not None:
            on_status(state, err)

    await asyncio.wait_for(channel.subscribe(status), 15)
    assert feed.statuses and feed.statuses[0] == "SUBSCRIBED", feed.statuses
    return channel, feed


def outside(database_url: str, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
    """Statements in one transaction that bypasses the server (psql / the sqlite3 shell)."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=15)
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            for sql, params in statements:
                conn.execute(sql.replace("%s", "?"), params)
            conn.commit()
        finally:
            conn.close()
        return
    conn = psycopg2.connect(database_url, connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            for sql, params in statements:
                cur.execute(sql, params)
    finally:
        conn.close()


def check_payload(data: dict[str, Any], table: str, typ: str) -> None:
    assert data["type"] == typ and data["table"] == table and data["schema"] == "public", data
    assert COMMIT_TIMESTAMP.match(data["commit_timestamp"]), data["commit_timestamp"]
    assert data["errors"] is None
    assert {"name": "id", "type": "uuid"} in data["columns"], data["columns"]
    if typ == "INSERT":
        assert "old_record" not in data, data
    if typ == "DELETE":
        assert not data.get("record"), data


@pytest.fixture
def t() -> str:
    return uuid.uuid4().hex[:8]


# --- tests -----------------------------------------------------------------------------------------------


async def test_insert_update_delete_on_all_7_tables(compat_server: CompatServer, t: str) -> None:
    admin, rep_a, rep_b = [await sign_in(compat_server, who) for who in ("admin", "rep_a", "rep_b")]
    try:
        _, feed = await subscribe(rep_b, f"py-all-{t}", [{"table": table} for table in TABLES])

        async def write(who: SignedIn, table: str, row: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
            created = (await who.client.table(table).insert(row).execute()).data[0]
            await who.client.table(table).update(patch).eq("id", created["id"]).execute()
            return created

        staff = await write(admin, "staff", {"full_name": f"Py {t}", "email": f"py-{t}@example.com", "role": "rep"},
                            {"title": "Intern"})  # fmt: skip
        platform = await write(admin, "platforms", {"name": f"Py {t}"}, {"kind": "chat"})
        company = await write(rep_a, "companies", {"name": f"Py Co {t}"}, {"industry": "Tools"})
        contact = await write(rep_a, "contacts", {"first_name": "Py", "last_name": t, "tags": ["a", "b"]},
                              {"status": "customer"})  # fmt: skip
        deal = await write(rep_a, "deals", {"title": f"Py {t}", "amount": 99.5, "contact_id": contact["id"]},
                           {"stage": "won"})  # fmt: skip
        activity = await write(rep_a, "activities", {"subject": f"Py {t}", "deal_id": deal["id"]}, {"completed": True})
        interaction = await write(
            rep_a, "interactions", {"contact_id": contact["id"], "platform_id": platform["id"], "kind": "email",
                                    "direction": "inbound"}, {"summary": t},
        )  # fmt: skip
        rows = {"staff": staff, "platforms": platform, "companies": company, "contacts": contact, "deals": deal,
                "activities": activity, "interactions": interaction}  # fmt: skip
        for table, who in [("interactions", rep_a), ("activities", rep_a), ("deals", rep_a), ("contacts", rep_a),
                           ("companies", rep_a), ("platforms", admin), ("staff", admin)]:  # fmt: skip
            await who.client.table(table).delete().eq("id", rows[table]["id"]).execute()

        for index, table in enumerate(TABLES):
            row = rows[table]
            inserted = await feed.wait_for(change("INSERT", row["id"], table), f"INSERT on {table}")
            check_payload(inserted, table, "INSERT")
            assert inserted["record"] == row, table
            updated = await feed.wait_for(change("UPDATE", row["id"], table), f"UPDATE on {table}")
            check_payload(updated, table, "UPDATE")
            assert updated["record"]["version"] == 2 and updated["old_record"]["version"] == 1, table
            deleted = await feed.wait_for(change("DELETE", row["id"], table), f"DELETE on {table}")
            check_payload(deleted, table, "DELETE")
            got = [(i, p["data"]["type"]) for i, p in feed.events if row_of(p["data"]).get("id") == row["id"]]
            assert got == [(index, "INSERT"), (index, "UPDATE"), (index, "DELETE")], (table, got)
        assert feed.find(change("INSERT", contact["id"]))["data"]["record"]["tags"] == ["a", "b"]  # type: ignore[index]
        assert feed.find(change("INSERT", deal["id"]))["data"]["record"]["amount"] == 99.5  # type: ignore[index]
        assert all(isinstance(i, int) for _, p in feed.events for i in p["ids"])
    finally:
        await close(admin, rep_a, rep_b)


async def test_filters_and_writes_made_outside_the_server(
    compat_server: CompatServer, database_url: str, t: str
) -> None:
    rep_a, rep_b = [await sign_in(compat_server, who) for who in ("rep_a", "rep_b")]
    try:
        _, feed = await subscribe(rep_b, f"py-filter-{t}", [
            {"table": "contacts", "filter": f"last_name=eq.{t}"},
            {"table": "deals", "event": "DELETE"},
            {"table": "deals", "filter": "stage=in.(won,lost)"},
        ])  # fmt: skip
        other = await insert_row(rep_a, "contacts", {"first_name": "No", "last_name": f"x{t}"})
        mine = await insert_row(rep_a, "contacts", {"first_name": "Yes", "last_name": t})
        await feed.wait_for(change("INSERT", mine["id"]), "INSERT through REST")
        outside_id = str(uuid.uuid4())
        deal_id = str(uuid.uuid4())
        await asyncio.to_thread(outside, database_url, [
            ("INSERT INTO contacts (id, first_name, last_name) VALUES (%s, %s, %s)", (outside_id, "Out", t)),
            ("INSERT INTO deals (id, title, stage) VALUES (%s, %s, %s)", (deal_id, f"Out {t}", "lead")),
        ])  # fmt: skip
        await asyncio.to_thread(outside, database_url, [
            ("UPDATE contacts SET first_name = %s WHERE id = %s", ("Changed", outside_id)),
            ("UPDATE deals SET stage = %s WHERE id = %s", ("won", deal_id)),
        ])  # fmt: skip
        await asyncio.to_thread(outside, database_url, [("DELETE FROM contacts WHERE id = %s", (outside_id,))])
        await asyncio.to_thread(outside, database_url, [("DELETE FROM deals WHERE id = %s", (deal_id,))])
        inserted = await feed.wait_for(change("INSERT", outside_id), "outside INSERT")
        assert inserted["record"]["updated_by"] is None and inserted["record"]["version"] == 1
        updated = await feed.wait_for(change("UPDATE", outside_id), "outside UPDATE")
        assert updated["record"]["first_name"] == "Changed" and updated["record"]["version"] == 2
        assert updated["old_record"]["first_name"] == "Out"
        await feed.wait_for(change("DELETE", outside_id), "outside DELETE")
        await feed.wait_for(change("DELETE", deal_id), "outside DELETE of the deal")
        deal_events = [(i, p["data"]["type"]) for i, p in feed.events if row_of(p["data"]).get("id") == deal_id]
        by_binding = {b: [typ for i, typ in deal_events if i == b] for b in (1, 2)}
        # stage=in.(won,lost): the outside update into "won" enters the filter (INSERT), the delete leaves it.
        assert by_binding == {1: ["DELETE"], 2: ["INSERT", "DELETE"]}, by_binding
        assert not feed.about(other["id"]), "the filter let another contact through"
        assert [i for i, p in feed.events if row_of(p["data"]).get("id") == outside_id] == [0, 0, 0]
        await rep_a.client.table("contacts").delete().in_("id", [other["id"], mine["id"]]).execute()
    finally:
        await close(rep_a, rep_b)


async def test_private_rows_move_out_move_in_and_children(
    compat_server: CompatServer, database_url: str, t: str
) -> None:
    rep_a, rep_b = [await sign_in(compat_server, who) for who in ("rep_a", "rep_b")]
    try:
        _, feed = await subscribe(rep_b, f"py-private-{t}", [{"table": "deals"}, {"table": "activities"}])
        _, own = await subscribe(rep_a, f"py-own-{t}", [{"table": "deals"}])
        table = rep_a.client.table
        secret = await insert_row(rep_a, "deals", {"title": f"Secret {t}", "amount": 1, "visibility": "private"})
        shared = await insert_row(rep_a, "deals", {"title": f"Shared {t}", "amount": 2})
        task = await insert_row(rep_a, "activities", {"subject": f"Task {t}", "deal_id": shared["id"]})
        await own.wait_for(change("INSERT", secret["id"]), "the owner's INSERT of the private deal")
        await feed.wait_for(change("INSERT", task["id"]), "INSERT of the team deal's activity")
        await table("deals").update({"visibility": "private"}).eq("id", shared["id"]).execute()
        gone = await feed.wait_for(change("DELETE", shared["id"]), "DELETE when made private")
        assert gone["old_record"] == {"id": shared["id"]}
        gone_task = await feed.wait_for(change("DELETE", task["id"]), "DELETE of the activity")
        assert gone_task["old_record"] == {"id": task["id"]}
        await table("deals").update({"visibility": "team", "amount": 5}).eq("id", shared["id"]).execute()
        back = await feed.wait_for(lambda p: change("INSERT", shared["id"])(p) and p["data"]["record"]["version"] == 3,
                                   "INSERT when made team")  # fmt: skip
        assert back["record"]["amount"] == 5
        await feed.wait_for(lambda p: change("INSERT", task["id"])(p) and len(feed.about(task["id"])) > 2,
                            "INSERT of the activity again")  # fmt: skip
        # A private deal and its activity committed together from outside: nothing about either for B.
        hidden_deal, hidden_task = str(uuid.uuid4()), str(uuid.uuid4())
        await asyncio.to_thread(outside, database_url, [
            ("INSERT INTO deals (id, title, owner_id, visibility) VALUES (%s, %s, %s, %s)",
             (hidden_deal, f"Hidden {t}", rep_a.staff_id, "private")),
            ("INSERT INTO activities (id, subject, deal_id, owner_id) VALUES (%s, %s, %s, %s)",
             (hidden_task, f"Hidden task {t}", hidden_deal, rep_a.staff_id)),
        ])  # fmt: skip
        await own.wait_for(change("INSERT", hidden_deal), "the owner's INSERT of the hidden deal")
        barrier = await insert_row(rep_a, "deals", {"title": f"Barrier {t}", "amount": 3})
        await feed.wait_for(change("INSERT", barrier["id"]), "barrier")
        assert feed.about(secret["id"]) == [], "rep B received rep A's private deal"
        assert feed.about(hidden_deal) == [], "rep B received the private deal written from outside"
        assert feed.about(hidden_task) == [], "rep B received an event about the activity of a private deal"
        assert [d["type"] for d in feed.about(shared["id"])] == ["INSERT", "DELETE", "INSERT"]
        for tbl, row_id in [("activities", task["id"]), ("activities", hidden_task), ("deals", shared["id"]),
                            ("deals", secret["id"]), ("deals", barrier["id"]), ("deals", hidden_deal)]:  # fmt: skip
            await rep_a.client.table(tbl).delete().eq("id", row_id).execute()
    finally:
        await close(rep_a, rep_b)


async def test_token_refresh_keeps_delivering(compat_server: CompatServer, t: str) -> None:
    rep_a, rep_b = [await sign_in(compat_server, who) for who in ("rep_a", "rep_b")]
    sent: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            sent.append(record.getMessage())

    logger = logging.getLogger("realtime._async.client")
    handler, level = Capture(level=logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        binding = {"table": "contacts", "filter": f"last_name=eq.{t}"}
        channel, feed = await subscribe(rep_b, f"py-refresh-{t}", [binding])
        join = next(m for m in sent if '"phx_join"' in m and f"py-refresh-{t}" in m)
        assert '"access_token":"<redacted>"' in join.replace(" ", ""), "the join carries the session token"
        assert channel.join_push.payload["access_token"] == rep_b.access_token
        first = await insert_row(rep_a, "contacts", {"first_name": "Before", "last_name": t})
        await feed.wait_for(change("INSERT", first["id"]), "INSERT before the refresh")

        await asyncio.sleep(1.1)  # iat has one-second resolution: the refreshed token must differ
        refreshed = await rep_b.client.auth.refresh_session()
        assert refreshed.session is not None
        fresh = refreshed.session.access_token
        assert fresh != rep_b.access_token
        await until(lambda: rep_b.client.realtime.access_token == fresh, "realtime-py got the refreshed token")
        await until(lambda: any('"access_token"' in m and f"py-refresh-{t}" in m and '"event":"access_token"' in
                                m.replace(" ", "") for m in sent), "an access_token push")  # fmt: skip
        assert channel.join_push.payload["access_token"] == fresh  # a re-join would use it too
        second = await insert_row(rep_a, "contacts", {"first_name": "After", "last_name": t})
        after = await feed.wait_for(change("INSERT", second["id"]), "INSERT after the refresh")
        assert after["record"]["first_name"] == "After"
        await rep_a.client.table("contacts").delete().in_("id", [first["id"], second["id"]]).execute()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        await close(rep_a, rep_b)


# --- reconnect + catch-up --------------------------------------------------------------------------------


@dataclass
class Writer:
    """~40 changes to contacts tagged ``tag`` (REST as rep A + outside the server), cutting the proxy midway."""

    server: CompatServer
    database_url: str
    proxy: TcpProxy
    tag: str
    rep_a_token: str
    ready: threading.Event = field(default_factory=threading.Event)
    log: list[str] = field(default_factory=list)
    rows: dict[str, str] = field(default_factory=dict)  # id -> visibility
    cut: int = 0

    def run(self) -> None:
        rng = random.Random(self.tag)
        with httpx.Client(base_url=self.server.url, timeout=15) as http:
            self.http = http
            for i in range(4):
                self.op(i, rng)
            if not self.ready.wait(30):
                raise RuntimeError("the client never became live")
            for i in range(4, 12):
                self.op(i, rng)
                time.sleep(0.05)
            self.proxy.pause()
            self.cut = self.proxy.cut()
            cut_at = time.monotonic()
            for i in range(12, 30):
                self.op(i, rng)
                time.sleep(0.08)
            time.sleep(max(0.0, 2.0 - (time.monotonic() - cut_at)))
            self.proxy.resume()
            self.log.append(f"outage {time.monotonic() - cut_at:.2f}s")
            for i in range(30, 40):
                self.op(i, rng)
                time.sleep(0.1)

    def op(self, i: int, rng: random.Random) -> None:
        alive = sorted(self.rows)
        kind = rng.choice(["insert", "insert_outside", "update", "update_outside", "toggle", "delete_outside"]
                          if len(alive) >= 3 else ["insert", "insert_outside"])  # fmt: skip
        if kind.startswith("insert"):
            target = str(uuid.uuid4())
            if kind == "insert":
                self.rest("POST", "contacts", {"id": target, "first_name": f"op{i}", "last_name": self.tag})
            else:
                outside(self.database_url, [("INSERT INTO contacts (id, first_name, last_name) VALUES (%s, %s, %s)",
                                             (target, f"op{i}", self.tag))])  # fmt: skip
            self.rows[target] = "team"
        else:
            target = rng.choice(alive)
            if kind == "update":
                self.rest("PATCH", f"contacts?id=eq.{target}", {"notes": f"op{i}"}, service=True)
            elif kind == "update_outside":
                outside(self.database_url, [("UPDATE contacts SET first_name = %s WHERE id = %s", (f"op{i}", target))])
            elif kind == "toggle":
                flipped = "private" if self.rows[target] == "team" else "team"
                outside(self.database_url, [("UPDATE contacts SET visibility = %s WHERE id = %s", (flipped, target))])
                self.rows[target] = flipped
            else:
                outside(self.database_url, [("DELETE FROM contacts WHERE id = %s", (target,))])
                del self.rows[target]
        self.log.append(f"{i} {kind} {target[:8]}")

    def rest(self, method: str, path: str, body: Any, service: bool = False) -> None:
        token = self.server.service_key if service else self.rep_a_token
        apikey = self.server.service_key if service else self.server.anon_key
        headers = {"apikey": apikey, "Authorization": f"Bearer {token}", "Prefer": "return=minimal"}
        r = self.http.request(method, f"/rest/v1/{path}", json=body, headers=headers)
        assert r.status_code < 300, r.text


@pytest.fixture
def proxy(compat_server: CompatServer) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", int(compat_server.url.rsplit(":", 1)[1]), lifetime=100) as p:
        yield p


async def test_reconnect_and_catch_up_lose_nothing(
    compat_server: CompatServer, database_url: str, proxy: TcpProxy, t: str
) -> None:
    """realtime-py reconnects after the cut (backoff 1, 2 … s); catch-up from the last checkpoint fills the gap."""
    rep_a = await sign_in(compat_server, "rep_a")
    rep_b = await sign_in(compat_server, "rep_b", url=proxy.url, params={"checkpoints": "1"})
    writer = Writer(compat_server, database_url, proxy, t, rep_a.access_token)
    rows: dict[str, int] = {}  # id -> version: the app's local copy
    counts = {"snapshot": 0, "live": 0, "catchup": 0, "stale": 0, "deletes": 0, "subscribed": 0, "forbidden": 0}
    seen: dict[tuple[str, int], str] = {}
    duplicates: dict[str, int] = {}
    state: dict[str, Any] = {"position": None, "buffering": True, "buffer": [], "positions": []}
    tasks: list[asyncio.Task[None]] = []

    def apply(source: str, data: dict[str, Any]) -> None:
        row = row_of(data)
        if row.get("visibility") == "private":
            counts["forbidden"] += 1  # rep B owns none of these rows: a private one must never show up
        if data["type"] == "DELETE":
            counts["deletes"] += rows.pop(row["id"], None) is not None
            return
        if row.get("last_name") != t:
            return
        key = (row["id"], row["version"])
        if key in seen:
            name = f"{seen[key]}_{source}"
            duplicates[name] = duplicates.get(name, 0) + 1
        seen.setdefault(key, source)
        if row["version"] > rows.get(row["id"], 0):
            rows[row["id"]] = row["version"]
            counts[source] += 1
        else:
            counts["stale"] += 1

    def flush() -> None:
        for data in state["buffer"]:
            apply("live", data)
        state["buffer"], state["buffering"] = [], False

    async def snapshot() -> None:
        await asyncio.sleep(0.3)  # let live events overlap with the snapshot (they are buffered)
        result = await rep_b.client.table("contacts").select("id, version").eq("last_name", t).execute()
        for row in result.data:
            rows[row["id"]] = row["version"]
            seen[(row["id"], row["version"])] = "snapshot"
            counts["snapshot"] += 1
        flush()

    async def catch_up(since: int) -> None:
        headers = {"apikey": compat_server.anon_key, "Authorization": f"Bearer {rep_b.client.realtime.access_token}"}
        async with httpx.AsyncClient(base_url=proxy.url, timeout=10) as http:
            for _ in range(20):
                for attempt in range(10):
                    try:
                        r = await http.get("/realtime/v1/api/changes", params={"since": since, "tables": "contacts"},
                                           headers=headers)  # fmt: skip
                        break
                    except httpx.TransportError:
                        if attempt == 9:
                            raise
                        await asyncio.sleep(0.3)
                assert r.status_code == 200, r.text
                body = r.json()
                state.setdefault("catch_ups", []).append((since, len(body["changes"]), body["position"]))
                for c in body["changes"]:
                    assert c["position"] > since
                    apply("catchup", c)
                state["position"] = max(state["position"] or 0, body["position"])
                if body["complete"]:
                    break
                since = body["position"]
        flush()

    def on_status(status: RealtimeSubscribeStates, err: Exception | None) -> None:
        if status != RealtimeSubscribeStates.SUBSCRIBED:
            return
        counts["subscribed"] += 1
        state["buffering"] = True
        if counts["subscribed"] == 1:
            tasks.append(asyncio.create_task(snapshot()))
        else:
            since = state["position"]  # captured now: later checkpoints belong to the new join
            tasks.append(asyncio.create_task(catch_up(since)))

    def on_change(payload: dict[str, Any]) -> None:
        if state["buffering"]:
            state["buffer"].append(payload["data"])
        else:
            apply("live", payload["data"])

    def on_position(message: dict[str, Any]) -> None:
        position = message["payload"]["position"]
        state["positions"].append(position)
        state["position"] = max(state["position"] or 0, position)

    def setup(channel: AsyncRealtimeChannel) -> None:
        channel.on_postgres_changes("*", on_change, table="contacts")  # type: ignore[arg-type]
        channel.on_broadcast("position", on_position)

    loop_writer: Awaitable[None] = asyncio.to_thread(writer.run)
    writing = asyncio.ensure_future(loop_writer)
    try:
        _, feed = await subscribe(rep_b, f"py-sync-{t}", [], setup=setup, on_status=on_status)
        await until(lambda: not state["buffering"] and state["positions"], "snapshot applied and a checkpoint")
        writer.ready.set()
        await asyncio.wait_for(writing, 60)
        assert writer.cut >= 1, "the proxy cut nothing"
        truth = await asyncio.to_thread(truth_rows, compat_server, t)
        await until(lambda: counts["subscribed"] >= 2, f"re-SUBSCRIBED after the cut ({feed.statuses})", 30)
        await until(lambda: not state["buffering"] and rows == truth, "local rows equal the database's", 20)
        await asyncio.gather(*tasks)
        report = {**counts, "duplicates": duplicates, "catch_ups": state.get("catch_ups"), "rows": len(truth),
                  "statuses": feed.statuses, "writer": writer.log[-1]}  # fmt: skip
        sys.stdout.write(f"python reconnect report ({compat_server.backend}): {report}\n")  # shown with -rP / -s
        assert rows == truth
        assert counts["catchup"] > 0, f"nothing came only through catch-up: {report}"
        assert counts["forbidden"] == 0, report
        assert duplicates.get("live_live", 0) == 0 and duplicates.get("catchup_catchup", 0) == 0, report
        assert "CHANNEL_ERROR" in " ".join(feed.statuses), feed.statuses
    finally:
        writer.ready.set()
        if not writing.done():
            await asyncio.wait([writing], timeout=30)
        await close(rep_a, rep_b)


def truth_rows(server: CompatServer, tag: str) -> dict[str, int]:
    """The tagged contacts rep B may read (team rows; rep B owns none), by a service-key REST read."""
    r = httpx.get(
        f"{server.url}/rest/v1/contacts",
        params={"select": "id,version,visibility", "last_name": f"eq.{tag}"},
        headers={"apikey": server.service_key, "Authorization": f"Bearer {server.service_key}"},
        timeout=15,
    )
    assert r.status_code == 200, r.text
    return {row["id"]: row["version"] for row in r.json() if row["visibility"] == "team"}
