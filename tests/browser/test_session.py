"""A signed-in screen outlives its access tokens: supabase-js refreshes them and hands each to the socket.

The server here issues 40-second access tokens (``WEXLOT_JWT_EXPIRY``). supabase-js refreshes a token that
expires within 90 s on its 30-second ticks, so this session gets a new one about every half minute; each
goes to the realtime socket (an ``access_token`` message per channel). If it did not, the server would close
every channel when the first token expired ("Token has expired …"). Past that moment, a change still
arrives live, and a reload still finds the session.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from conftest import DEMO, SETUP_LINE, TABLES, CrmServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SERVER_ENV = {"WEXLOT_JWT_EXPIRY": "40"}
LIFETIME_S = 40
TOKEN = "(async () => (await window.supabase.auth.getSession()).data.session?.access_token ?? null)()"


def expires_at(token: str) -> int:
    """The ``exp`` claim of a JWT (read, not verified: the server verified it when issuing)."""
    payload = token.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])


def test_the_session_refreshes_its_token_and_stays_live_past_the_first_expiry(crm: CrmServer, machines: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    b = machines("B")
    sent: list[str] = []  # frames the page sends on its realtime WebSocket

    def watch(ws: Any) -> None:
        ws.on("framesent", lambda payload: sent.append(payload if isinstance(payload, str) else payload.decode()))

    b.page.on("websocket", watch)
    b.sign_in(DEMO["diego"], path=f"/contacts?q={tag}")
    signed_in = time.monotonic()
    first = b.page.evaluate(TOKEN)
    b.page.evaluate("window.__noReload = 'still here'")

    # Wait until the first token has expired (bounded), watching for refreshed tokens meanwhile.
    tokens = [first]
    while time.monotonic() - signed_in < LIFETIME_S + 5:
        tokens.append(b.page.evaluate(TOKEN))
        b.page.wait_for_timeout(1000)
    assert all(tokens), "the session was lost"
    expiries = [expires_at(t) for t in tokens]
    assert max(expiries) > expires_at(first), "supabase-js never refreshed the access token"
    assert max(expiries) > time.time(), "no access token valid now"  # the first one has expired by now
    # Each refreshed token went to the socket, once per channel.
    pushes = [frame for frame in sent if '"access_token"' in frame and '"phx_join"' not in frame]
    assert len(pushes) >= len(TABLES), sent[-10:]

    expect(b.page.locator("#connection")).to_have_attribute("data-state", "live")
    states = b.page.evaluate("window.supabase.getChannels().map((c) => [c.topic, c.state])")
    assert sorted(states) == sorted([f"realtime:{t}", "joined"] for t in TABLES)
    crm.rest("POST", "contacts", json={"first_name": "Fresh", "last_name": tag})
    expect(b.row(f"Fresh {tag}")).to_have_count(1, timeout=10_000)
    assert b.page.evaluate("window.__noReload") == "still here"
    # No channel was ever closed for an expired token (the app would rejoin, which would hide it here).
    assert "Token has expired" not in crm.server.logs()

    # A reload keeps the session (the refresh token), without a sign-in form.
    b.page.reload()
    b.expect_ready()
    expect(b.row(f"Fresh {tag}")).to_have_count(1)
    expect(b.page.get_by_role("heading", name="Sign in to WeXlot")).to_have_count(0)
    assert len(b.lines(SETUP_LINE)) == 2  # once per page load
