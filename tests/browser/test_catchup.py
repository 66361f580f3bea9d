"""Machine B loses its connection while others change data; when it is back it shows every change.

B reaches the server through a TCP proxy the test controls (``tests/support/tcp_proxy.py``): Playwright's
``set_offline`` does not close open WebSockets, cutting the TCP connections does. While B is cut off,
ten changes are made; when the proxy lets B back in, supabase-js rejoins the 7 channels and the app
fetches ``/realtime/v1/api/changes?since=<last position>`` and applies what it missed.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import Route, expect

from conftest import DEMO, CrmServer, Machine
from support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

BACK_MS = 30_000  # reconnect (supabase-js backs off 1 s, 2 s, 5 s…) + catch-up


def cut_off(b: Machine, proxy: TcpProxy) -> None:
    proxy.pause()  # refuse new connections first, so that the cut sticks
    assert proxy.cut() >= 1
    expect(b.page.locator("#connection")).not_to_have_attribute("data-state", "live")


def ten_changes(crm: CrmServer, tag: str, victim_id: str) -> list[str]:
    """8 inserts (6 through REST, 2 straight into the database), 1 update, 1 delete: names now expected."""
    names = [f"Missed{i} {tag}" for i in range(8)]
    crm.rest("POST", "contacts", json=[{"first_name": n.split()[0], "last_name": tag} for n in names[:6]])
    for n in names[6:]:
        crm.outside(
            "INSERT INTO contacts (id, first_name, last_name) VALUES (%s, %s, %s)",
            (str(uuid.uuid4()), n.split()[0], tag),
        )
    crm.rest(
        "PATCH",
        "contacts",
        params={"first_name": "eq.Missed0", "last_name": f"eq.{tag}"},
        json={"first_name": "Renamed0"},
    )
    crm.rest("DELETE", "contacts", params={"id": f"eq.{victim_id}"})
    return ["Renamed0 " + tag, *names[1:]]


def test_catch_up_after_a_lost_connection_shows_every_missed_change(crm: CrmServer, machines: Any) -> None:
    tag = f"Cu{uuid.uuid4().hex[:6]}"
    (victim,) = crm.rest("POST", "contacts", json=[{"first_name": "Victim", "last_name": tag}])
    with TcpProxy("127.0.0.1", crm.server.port) as proxy:
        b = machines("B", base_url=proxy.url)
        b.sign_in(DEMO["diego"], path=f"/contacts?q={tag}")
        b.page.evaluate("window.__noReload = 'still here'")
        expect(b.row(f"Victim {tag}")).to_have_count(1)

        cut_off(b, proxy)
        since = crm.position()
        expected = ten_changes(crm, tag, victim["id"])
        # All ten in the server's history before B may return, so that B can only learn of them by catching up.
        crm.wait_captured(since, "contacts", 10)
        proxy.resume()

        expect(b.page.locator("#connection")).to_have_attribute("data-state", "live", timeout=BACK_MS)
        names = b.page.locator("table.list tbody tr td[data-col='name']")
        expect(names).to_have_count(len(expected), timeout=BACK_MS)
        for name in expected:
            expect(b.row(name)).to_have_count(1)
        expect(b.row(f"Victim {tag}")).to_have_count(0)
        expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", str(len(expected)))
        b.screenshot("caught-up", crm.backend, full_page=False)

    catch_ups = [u for u in b.requests if "/realtime/v1/api/changes?since=" in u and "tables=contacts" in u]
    assert catch_ups, "the app did not call the catch-up endpoint"
    caught = [line for line in b.console if line.startswith("Contacts data changed") and line.endswith("(caught up)")]
    assert len(caught) >= 10, b.console  # more only if a second rejoin repeated the catch-up
    assert b.page.evaluate("window.__noReload") == "still here"


def test_expired_position_refetches_instead(crm: CrmServer, machines: Any) -> None:
    """A 410 position_expired from the catch-up endpoint makes the page load its rows again."""
    tag = f"Ex{uuid.uuid4().hex[:6]}"
    with TcpProxy("127.0.0.1", crm.server.port) as proxy:
        b = machines("B", base_url=proxy.url)
        b.sign_in(DEMO["diego"], path=f"/contacts?q={tag}")
        b.page.evaluate("window.__noReload = 'still here'")
        expired: list[str] = []

        def answer_410(route: Route) -> None:
            expired.append(route.request.url)
            route.fulfill(status=410, json={"code": "position_expired", "message": "position is too old; refetch"})

        b.page.route("**/realtime/v1/api/changes?*", answer_410)
        cut_off(b, proxy)
        since = crm.position()
        crm.rest("POST", "contacts", json=[{"first_name": f"Late{i}", "last_name": tag} for i in range(3)])
        # Captured before B is back, so they are history (not sent live after the rejoin): only the reload can
        # bring them.
        crm.wait_captured(since, "contacts", 3)
        proxy.resume()

        expect(b.page.locator("#connection")).to_have_attribute("data-state", "live", timeout=BACK_MS)
        expect(b.page.locator("table.list tbody tr")).to_have_count(3, timeout=BACK_MS)
        expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", "3")
    assert any("tables=contacts" in u for u in expired)
    assert b.lines("[CRM] Contacts: the missed changes are no longer kept")
    # The rows came from a fresh load of the list after the 410, not as changes.
    after = b.requests.index(expired[0])
    assert any("/rest/v1/contacts?" in u for u in b.requests[after + 1 :]), b.requests[after:]
    assert not [line for line in b.lines("Contacts data changed: INSERT Late") if tag in line]
    assert b.page.evaluate("window.__noReload") == "still here"
