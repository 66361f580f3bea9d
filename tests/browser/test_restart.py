"""The server stops, ten contacts go straight into the database, the server starts again: B shows all ten.

B never reloads: supabase-js reconnects to the restarted server by itself, rejoins the 7 channels, and the
app catches up from its last checkpoint. The inserts bypass the server (the sqlite3 module / psycopg2),
so they reach B only because the database captured them (SQLite triggers into the change log; the
PostgreSQL replication slot keeps the WAL until the server reads it again).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from conftest import DEMO, SETUP_LINE, CrmServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

BACK_MS = 45_000  # server start + supabase-js reconnect backoff (up to 5 s between tries) + catch-up


def test_changes_made_while_the_server_was_down_arrive_after_it_restarts(crm: CrmServer, machines: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    b = machines("B")
    b.sign_in(DEMO["manager"], path=f"/contacts?q={tag}")
    b.page.evaluate("window.__noReload = 'still here'")
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", "0")

    crm.server.stop()
    expect(b.page.locator("#connection")).not_to_have_attribute("data-state", "live")
    names = [f"Down{i} {tag}" for i in range(10)]
    for name in names:
        first, last = name.split()
        crm.outside(
            "INSERT INTO contacts (id, first_name, last_name) VALUES (%s, %s, %s)", (str(uuid.uuid4()), first, last)
        )
    crm.server.restart()

    expect(b.page.locator("#connection")).to_have_attribute("data-state", "live", timeout=BACK_MS)
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", "10", timeout=BACK_MS)
    expect(b.page.locator("table.list tbody tr")).to_have_count(10)
    for name in names:
        expect(b.row(name)).to_have_count(1)
    assert b.page.evaluate("window.__noReload") == "still here"
    assert b.lines(SETUP_LINE) == [SETUP_LINE]
    # Each arrived as a change, through the catch-up endpoint or live once the server read its backlog. Delivery
    # is at least once (on PostgreSQL a change can come both ways); the version check shows each row once (above).
    changed = [line for line in b.lines("Contacts data changed: INSERT") if tag in line]
    assert {line.split(": INSERT ")[1].removesuffix(" (caught up)") for line in changed} == set(names)
    assert any("/realtime/v1/api/changes?since=" in url for url in b.requests)
