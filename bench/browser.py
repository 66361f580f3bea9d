"""Screen to screen: how long after machine A saves does machine B's screen show it? Real Chromium, both backends.

    .venv/bin/python bench/browser.py                     # both backends, about 2 minutes
    .venv/bin/python bench/browser.py --backends sqlite --updates 50 --no-results

Two browser contexts (two "machines") of Debian's headless Chromium, driven by Playwright, against a live
``wexlot serve --demo``. A is the manager on the Contacts list; B is a rep.

* update  B has one contact's record page open; A saves a new job title on it through the app's own
          supabase-js client (``window.supabase``), one save at a time at ``--rate`` per second.
          B's page records when the new title is on screen (a MutationObserver on the field).
* insert  B has the Contacts list open, filtered to this run's tag; A adds contacts the same way and B
          records when each row appears in its list.

Times are ``performance.timeOrigin + performance.now()`` in each page (one browser, one machine: the clocks
agree to well under a millisecond). Latency is B's "on screen" time minus A's time *after* the save's HTTP
response (the commit happened before it), and "from request start" (an upper bound) alongside. The figure
includes everything a user waits for: capture, fan-out, the WebSocket, supabase-js, the app's version check,
placement and the DOM update, and the browser's next mutation callback.

Results are printed and written to ``bench/RESULTS.md`` (section ``browser``) unless ``--no-results``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from common import machine_info, markdown_table, percentile, text_table, today, update_results_section

from support.chromium import READY_MS, launch, sign_in
from support.live_server import LiveServer, keys
from support.pg_cluster import PgCluster

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
MANAGER = ("priya.shah@wexlot.demo", "wexlot-demo")
REP = ("diego.alvarez@wexlot.demo", "wexlot-demo")
SETTLE_S = 10.0

# Installed in B's page: remembers when each numbered value first shows on screen.
WATCH_FIELD = """([selector, prefix]) => {
  window.__seen = {}
  const stamp = () => {
    const text = document.querySelector(selector)?.textContent ?? ''
    if (text.startsWith(prefix)) {
      const n = Number(text.slice(prefix.length))
      if (!(n in window.__seen)) window.__seen[n] = performance.timeOrigin + performance.now()
    }
  }
  const options = { subtree: true, childList: true, characterData: true }
  new MutationObserver(stamp).observe(document.querySelector('main'), options)
}"""
WATCH_ROWS = """([prefix]) => {
  window.__seen = {}
  const stamp = () => {
    const now = performance.timeOrigin + performance.now()
    for (const cell of document.querySelectorAll('table.list tbody tr td:first-child a')) {
      const text = cell.textContent
      if (!text.startsWith(prefix)) continue
      const n = Number(text.slice(prefix.length).split(' ')[0])
      if (!(n in window.__seen)) window.__seen[n] = now
    }
  }
  const options = { subtree: true, childList: true, characterData: true }
  new MutationObserver(stamp).observe(document.querySelector('main'), options)
}"""
# Run in A's page: one save through the app's supabase-js client, timed.
SAVE = """async ([kind, id, n, prefix, tag]) => {
  const start = performance.timeOrigin + performance.now()
  const query = kind === 'update'
    ? window.supabase.from('contacts').update({ title: prefix + n }).eq('id', id)
    : window.supabase.from('contacts').insert({ first_name: prefix + n, last_name: tag })
  const { error } = await query
  if (error) throw new Error(error.message)
  return [start, performance.timeOrigin + performance.now()]
}"""


def run_case(a: Any, b: Any, kind: str, count: int, rate: float, target: str, tag: str) -> dict[str, Any]:
    prefix = f"{kind[0].upper()}{tag}-"
    if kind == "update":
        b.evaluate(WATCH_FIELD, ["dd[data-field='title']", prefix])
    else:
        b.evaluate(WATCH_ROWS, [prefix])
    sent: dict[int, tuple[float, float]] = {}
    began = time.monotonic()
    for n in range(count):
        due = began + n / rate
        time.sleep(max(0.0, due - time.monotonic()))
        sent[n] = tuple(a.evaluate(SAVE, [kind, target, n, prefix, tag]))  # type: ignore[assignment]
    deadline = time.monotonic() + SETTLE_S
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        seen = b.evaluate("window.__seen")
        if kind == "insert" and len(seen) >= count:
            break
        if kind == "update" and str(count - 1) in seen:
            break
        time.sleep(0.1)
    after = sorted(seen[str(n)] - sent[n][1] for n in range(count) if str(n) in seen)
    before = sorted(seen[str(n)] - sent[n][0] for n in range(count) if str(n) in seen)
    # An update superseded before it was painted is not "missed": the newer value is what the user must see.
    missing = count - len(after) if kind == "insert" else (0 if str(count - 1) in seen else 1)
    return {
        "case": kind, "count": count, "shown": len(after), "missing": missing,
        "p50": percentile(after, 50), "p99": percentile(after, 99), "max": after[-1] if after else float("nan"),
        "p50_start": percentile(before, 50), "p99_start": percentile(before, 99),
    }  # fmt: skip


def run_backend(backend: str, browser: Any, args: argparse.Namespace) -> tuple[str, list[dict[str, Any]]]:
    root = Path(tempfile.mkdtemp(prefix=f"wexlot-bench-browser-{backend}-"))
    cluster: PgCluster | None = None
    server: LiveServer | None = None
    try:
        if backend == "postgres":
            cluster = PgCluster().start()
            cluster.psql("ALTER SYSTEM SET synchronous_commit = on")  # the test cluster's default is off
            cluster.psql("SELECT pg_reload_conf()")
            url = cluster.create_database("wexlot_bench_browser")
        else:
            url = f"sqlite:///{root / 'data' / 'wexlot.db'}"
        server = LiveServer(root / "data", url, extra_args=["--demo"], startup_timeout=180).start()
        service = keys(root / "data", url)["service_role_key"]
        tag = uuid.uuid4().hex[:6]
        contact = httpx.post(
            f"{server.url}/rest/v1/contacts",
            json={"first_name": "Bench", "last_name": tag},
            headers={"apikey": service, "Authorization": f"Bearer {service}", "Prefer": "return=representation"},
            timeout=30,
        ).json()[0]
        machine_a, machine_b = browser.new_context(), browser.new_context()
        try:
            a, b = machine_a.new_page(), machine_b.new_page()
            sign_in(a, server.url, *MANAGER, "/contacts")
            sign_in(b, server.url, *REP, f"/contacts/{contact['id']}")
            rows = [run_case(a, b, "update", args.updates, args.rate, contact["id"], tag)]
            b.goto(f"{server.url}/contacts?q={tag}")
            b.wait_for_selector("main section[data-state='ready']", timeout=READY_MS)
            rows.append(run_case(a, b, "insert", args.inserts, args.rate, "", tag))
        finally:
            machine_a.close()
            machine_b.close()
        return (f"PostgreSQL {cluster.psql('SHOW server_version')[0][0].split()[0]}" if cluster else "SQLite"), rows
    finally:
        if server is not None:
            server.stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--inserts", type=int, default=100)
    parser.add_argument("--rate", type=float, default=10.0, help="saves per second from machine A")
    parser.add_argument("--no-results", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    table: list[list[Any]] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for backend in args.backends.split(","):
                name, rows = run_backend(backend, browser, args)
                for r in rows:
                    table.append([
                        f"{name}: {r['case']}", f"{r['shown']}/{r['count']}", r["missing"],
                        f"{r['p50']:.1f}", f"{r['p99']:.1f}", f"{r['max']:.1f}",
                        f"{r['p50_start']:.1f}", f"{r['p99_start']:.1f}",
                    ])  # fmt: skip
                    print(table[-1], flush=True)
        finally:
            browser.close()
    headers = ["Backend: case", "shown", "missed", "p50 ms", "p99 ms", "max ms", "p50 from start", "p99 from start"]
    print()
    print(text_table(headers, table))
    if not args.no_results:
        info = machine_info()
        body = "\n\n".join([
            "## Screen to screen in real browsers (`bench/browser.py`)",
            f"Run: {today()}, {time.monotonic() - started:.0f} s in all.",
            f"```\n.venv/bin/python bench/browser.py {' '.join(sys.argv[1:])}\n```".replace(" \n", "\n"),
            f"{args.updates} updates and {args.inserts} inserts at {args.rate:g}/s, saved on machine A (manager) "
            "through the app's supabase-js; latency until machine B (a rep) has it on screen, measured in B's page "
            "by a MutationObserver, from A's HTTP response (and from A's request start). Both Chromium contexts, "
            "the server and the database share the 2 cores.",
            markdown_table(headers, table, "lrrrrrrr"),
            "Machine:\n\n" + "\n".join(f"- {k}: {v}" for k, v in info.items() if k != "PocketBase"),
        ])  # fmt: skip
        update_results_section(RESULTS, "browser", body)
        print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
