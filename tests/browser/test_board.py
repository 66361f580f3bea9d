"""Dashboard, pipeline board and tasks: moves, completions and figures follow on every machine, live.

Each test makes its own rows (names with a uuid tag) on the module's shared server and asserts on
differences, since other tests of the module change the same data. Figures are read from their
``data-figure`` hooks; ``data-value`` holds the raw number.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from conftest import DEMO, SETUP_LINE, CrmServer, Machine

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

LIVE_MS = 10_000  # a change on one machine must show on the other within this
PHONE = {"width": 390, "height": 844}
OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")
TABLES = ("staff", "contacts", "companies", "deals", "activities", "interactions", "platforms")


# --- helpers ---------------------------------------------------------------------------------------


def tag() -> str:
    return uuid.uuid4().hex[:8]


def mark_page(machine: Machine) -> None:
    """A marker that a reload would wipe: proves later updates arrived without one."""
    machine.page.evaluate("window.__noReload = 'still here'")


def assert_not_reloaded(machine: Machine) -> None:
    assert machine.page.evaluate("window.__noReload") == "still here"
    assert len(machine.lines(SETUP_LINE)) == 1, machine.lines(SETUP_LINE)


def assert_no_page_errors(*ms: Machine) -> None:
    errors = [f"{m.name}: {line}" for m in ms for line in m.console if line.startswith("[pageerror]")]
    assert not errors, errors


def staff_id(crm: CrmServer, email: str) -> str:
    return str(crm.rest("GET", "staff", params={"select": "id", "email": f"eq.{email}"})[0]["id"])


def figure_selector(name: str, *, currency: str | None = None, stage: str | None = None) -> str:
    selector = f"[data-figure='{name}']"
    if stage:
        selector += f"[data-stage='{stage}']"
    if currency:
        selector += f"[data-currency='{currency}']"
    return selector


def figure(machine: Machine, name: str, **where: str) -> float:
    """A figure's raw value (0 when the figure shows no such currency)."""
    locator = machine.page.locator(figure_selector(name, **where))
    if locator.count() == 0:
        return 0.0
    return float(locator.first.get_attribute("data-value") or "0")


def wait_figure(machine: Machine, name: str, expected: float, timeout_ms: int = LIVE_MS, **where: str) -> None:
    """Until the figure shows ``expected`` (to the cent), bounded."""
    selector = figure_selector(name, **where)
    try:
        machine.page.wait_for_function(
            """([selector, expected]) => {
                const el = document.querySelector(selector)
                return Boolean(el) && Math.abs(Number(el.dataset.value) - expected) < 0.005
            }""",
            arg=[selector, expected],
            timeout=timeout_ms,
        )
    except Exception as exc:
        raise AssertionError(f"{selector} stayed at {figure(machine, name, **where)}, expected {expected}") from exc


def local_bounds(machine: Machine) -> dict[str, str]:
    """The browser's local today / tomorrow / month / next month, as the dashboard computes them."""
    return machine.page.evaluate(
        """(() => {
            const n = new Date(), y = n.getFullYear(), m = n.getMonth(), d = n.getDate()
            return {
                today: new Date(y, m, d).toISOString(), tomorrow: new Date(y, m, d + 1).toISOString(),
                month: new Date(y, m, 1).toISOString(), nextMonth: new Date(y, m + 1, 1).toISOString(),
            }
        })()"""
    )


def server_figures(crm: CrmServer, bounds: dict[str, str]) -> dict[str, float]:
    """The dashboard's figures as the server computes them (service role: everything, like a manager)."""
    q = quote
    groups = crm.rest("GET", "deals?select=stage,currency,amount.sum(),id.count()")
    closed = crm.rest(
        "GET",
        "deals?select=stage,currency,amount.sum(),id.count()&stage=in.(won,lost)"
        f"&closed_at=gte.{q(bounds['month'])}&closed_at=lt.{q(bounds['nextMonth'])}",
    )
    due = crm.rest(
        "GET",
        f"activities?select=id.count()&completed=is.false&due_at=gte.{q(bounds['today'])}&due_at=lt.{q(bounds['tomorrow'])}",
    )
    overdue = crm.rest("GET", f"activities?select=id.count()&completed=is.false&due_at=lt.{q(bounds['today'])}")

    def total(rows: list[dict[str, Any]], **match: str) -> tuple[float, int]:
        picked = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
        return round(sum(float(r["sum"] or 0) for r in picked), 2), sum(int(r["count"]) for r in picked)

    out: dict[str, float] = {}
    out["won-all-time"], out["won-count-all-time"] = total(groups, stage="won", currency="USD")
    out["won-this-month"], out["won-count-this-month"] = total(closed, stage="won", currency="USD")
    out["lost-count-this-month"] = total(closed, stage="lost")[1]
    for stage in OPEN_STAGES:
        out[f"stage-value:{stage}"], out[f"stage-count:{stage}"] = total(groups, stage=stage, currency="USD")
    out["due-today"] = int(due[0]["count"])
    out["overdue"] = int(overdue[0]["count"])
    for table in TABLES:
        out[f"count-{table}"] = int(crm.rest("GET", f"{table}?select=id.count()")[0]["count"])
    return out


def shown_figures(machine: Machine) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in ("won-all-time", "won-this-month"):
        out[name] = figure(machine, name, currency="USD")
    for name in ("won-count-all-time", "won-count-this-month", "lost-count-this-month", "due-today", "overdue"):
        out[name] = figure(machine, name)
    for stage in OPEN_STAGES:
        out[f"stage-value:{stage}"] = figure(machine, "stage-value", stage=stage, currency="USD")
        out[f"stage-count:{stage}"] = figure(machine, "stage-count", stage=stage)
    for table in TABLES:
        out[f"count-{table}"] = figure(machine, f"count-{table}")
    return out


def assert_figures_match(machine: Machine, crm: CrmServer, timeout_s: float = 10.0) -> None:
    """The shown figures equal the server's (polled: a live update may still be on its way)."""
    bounds = local_bounds(machine)
    deadline = dt.datetime.now() + dt.timedelta(seconds=timeout_s)
    while True:
        expected, shown = server_figures(crm, bounds), shown_figures(machine)
        diff = {k: (shown[k], v) for k, v in expected.items() if abs(shown[k] - v) >= 0.005}
        if not diff:
            return
        if dt.datetime.now() > deadline:
            raise AssertionError(f"dashboard (shown, server) differ: {diff}")
        machine.page.wait_for_timeout(250)


def card(machine: Machine, deal_id: str, stage: str | None = None) -> Any:
    scope = f"section.stage-column[data-stage='{stage}'] " if stage else ""
    return machine.page.locator(f"{scope}li.deal-card[data-id='{deal_id}']")


def titles(machine: Machine, stage: str, text: str) -> Any:
    """The title links of a column's cards that contain ``text``, in board order."""
    return machine.page.locator(
        f"section.stage-column[data-stage='{stage}'] li.deal-card:has-text('{text}') .deal-title a"
    )


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def noon_today() -> str:
    """Noon of the local today (this machine's zone is the browser's): "due today" whatever the hour of the run."""
    return stamp(dt.datetime.now().astimezone().replace(hour=12, minute=0, second=0, microsecond=0))


# --- tests -----------------------------------------------------------------------------------------


def test_deal_dragged_to_won_moves_everywhere_and_counts_as_won(crm: CrmServer, machines: Any) -> None:
    t = tag()
    diego = staff_id(crm, DEMO["diego"].email)
    amount = 12345.67
    deal = crm.rest("POST", "deals", json={
        "title": f"Board win {t}", "amount": amount, "currency": "USD", "stage": "negotiation",
        "owner_id": diego, "visibility": "team", "expected_close_date": "2030-01-15",
    })[0]  # fmt: skip
    phone = machines("phone", viewport=PHONE)
    phone.sign_in(DEMO["manager"], path="/dashboard")
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["diego"], path="/pipeline")  # the rep who owns the deal drags it
    b.sign_in(DEMO["manager"], path="/pipeline")
    for m in (phone, b):
        mark_page(m)

    won_before = figure(phone, "won-this-month", currency="USD")
    won_count_before = figure(phone, "won-count-this-month")
    won_column = b.page.locator("section.stage-column[data-stage='won'] .stage-totals")
    column_before = int(won_column.get_attribute("data-count") or "0")
    expect(card(b, deal["id"], "negotiation")).to_have_count(1)
    expect(card(b, deal["id"])).to_contain_text("Diego Alvarez")
    expect(card(b, deal["id"])).to_contain_text("Expected close")

    source = card(a, deal["id"], "negotiation")
    expect(source).to_have_attribute("draggable", "true")
    source.drag_to(a.page.locator("section.stage-column[data-stage='won'] .stage-head"))
    expect(card(a, deal["id"], "won")).to_have_count(1)

    # B follows without a reload: the card is in Won, highlighted, with when it was won; totals follow.
    moved = card(b, deal["id"], "won")
    expect(moved).to_have_count(1, timeout=LIVE_MS)
    expect(card(b, deal["id"], "negotiation")).to_have_count(0)
    expect(moved.locator("time[data-closed-at]")).to_have_count(1)
    expect(won_column).to_have_attribute("data-count", str(column_before + 1))
    b.screenshot("pipeline", crm.backend)

    # The database recorded when it closed.
    row = crm.rest("GET", "deals", params={"id": f"eq.{deal['id']}", "select": "stage,closed_at,version"})[0]
    assert row["stage"] == "won" and row["closed_at"], row
    expect(moved).to_have_attribute("data-version", str(row["version"]))

    # The manager's phone dashboard: won this month grows by exactly the deal's amount.
    wait_figure(phone, "won-this-month", round(won_before + amount, 2), currency="USD")
    wait_figure(phone, "won-count-this-month", won_count_before + 1)
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.screenshot("dashboard", crm.backend)
    for m in (phone, b):
        assert_not_reloaded(m)
    assert_no_page_errors(a, b, phone)


def test_reorder_within_a_column_persists(crm: CrmServer, machines: Any) -> None:
    t = tag()
    # Above every other lead (negative positions), so the three are the top of the column.
    made = crm.rest("POST", "deals", json=[
        {"title": f"Order {t} one", "amount": 100, "stage": "lead", "position": -30000},
        {"title": f"Order {t} two", "amount": 200, "stage": "lead", "position": -20000},
        {"title": f"Order {t} three", "amount": 300, "stage": "lead", "position": -10000},
    ])  # fmt: skip
    ids = {row["title"].split()[-1]: row["id"] for row in made}
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["manager"], path="/pipeline")
    b.sign_in(DEMO["admin"], path="/pipeline")
    mark_page(b)
    names = [f"Order {t} one", f"Order {t} two", f"Order {t} three"]
    expect(a.page.locator("section.stage-column[data-stage='lead'] li.deal-card").first).to_contain_text(names[0])
    expect(titles(a, "lead", t)).to_have_text(names)

    # Drag "three" onto the top half of "one": it becomes the first card.
    target = card(a, ids["one"])
    card(a, ids["three"]).drag_to(target, target_position={"x": 20, "y": 4})
    after_drag = [names[2], names[0], names[1]]
    expect(titles(a, "lead", t)).to_have_text(after_drag)
    expect(titles(b, "lead", t)).to_have_text(after_drag, timeout=LIVE_MS)

    # The keyboard way: "Move … up" on "two" puts it between "three" and "one".
    up = a.page.get_by_role("button", name=f"Move {names[1]} up")
    up.focus()
    a.page.keyboard.press("Enter")
    final = [names[2], names[1], names[0]]
    expect(titles(a, "lead", t)).to_have_text(final)
    expect(titles(b, "lead", t)).to_have_text(final, timeout=LIVE_MS)
    expect(a.page.get_by_role("button", name=f"Move {names[1]} up")).to_be_focused()  # focus follows the card

    # The server's order (position, then id) is the same, and a reload shows it.
    query = {"title": f"like.Order {t}*", "select": "title,position", "order": "position,id"}
    rows = crm.rest("GET", "deals", params=query)
    assert [r["title"] for r in rows] == final, rows
    a.page.reload()
    a.expect_ready()
    expect(titles(a, "lead", t)).to_have_text(final)
    assert_not_reloaded(b)
    assert_no_page_errors(a, b)


def test_no_room_between_neighbours_respaces_them(crm: CrmServer, machines: Any) -> None:
    """Two cards closer than any sensible midpoint: moving a third between them re-spaces the run."""
    t = tag()
    made = crm.rest("POST", "deals", json=[
        {"title": f"Tight {t} a", "amount": 1, "stage": "qualified", "position": -2},
        {"title": f"Tight {t} b", "amount": 1, "stage": "qualified", "position": -2 + 2e-7},
        {"title": f"Tight {t} c", "amount": 1, "stage": "qualified", "position": -1},
    ])  # fmt: skip
    a = machines("A")
    a.sign_in(DEMO["manager"], path="/pipeline")
    tight = titles(a, "qualified", t)
    expect(tight).to_have_text([f"Tight {t} a", f"Tight {t} b", f"Tight {t} c"])
    a.page.get_by_role("button", name=f"Move Tight {t} c up").click()
    expect(tight).to_have_text([f"Tight {t} a", f"Tight {t} c", f"Tight {t} b"])
    ids = ",".join(row["id"] for row in made)
    deadline = dt.datetime.now() + dt.timedelta(seconds=10)
    while True:
        rows = crm.rest(
            "GET", "deals", params={"id": f"in.({ids})", "select": "title,position", "order": "position,id"}
        )
        if [r["title"] for r in rows] == [f"Tight {t} a", f"Tight {t} c", f"Tight {t} b"]:
            break
        assert dt.datetime.now() < deadline, rows
        a.page.wait_for_timeout(200)
    gaps = [y["position"] - x["position"] for x, y in itertools.pairwise(rows)]
    assert min(gaps) >= 1, rows
    a.page.reload()
    a.expect_ready()
    expect(tight).to_have_text([f"Tight {t} a", f"Tight {t} c", f"Tight {t} b"])
    assert_no_page_errors(a)


def test_stale_move_is_refused_and_the_card_reloaded(crm: CrmServer, machines: Any) -> None:
    """A move based on a version someone else just replaced saves nothing; the card shows the new copy."""
    t = tag()
    made = {"title": f"Stale {t}", "amount": 50, "stage": "qualified", "probability": 20}
    deal = crm.rest("POST", "deals", json=made)[0]
    a = machines("A")
    a.sign_in(DEMO["manager"], path="/pipeline")
    expect(card(a, deal["id"], "qualified")).to_have_count(1)

    # Someone else saves first: their update lands while A's request is on its way.
    def someone_else_first(route: Any) -> None:
        if route.request.method == "PATCH":
            crm.rest("PATCH", "deals", params={"id": f"eq.{deal['id']}"}, json={"probability": 55})
        route.continue_()

    a.page.route("**/rest/v1/deals?*", someone_else_first)
    # The stage select is the keyboard (and touch) alternative to dragging.
    a.page.get_by_label(f"Stage of Stale {t}").select_option("negotiation")
    expect(a.page.locator("#notices")).to_contain_text(f"“Stale {t}” was not moved: someone changed it meanwhile")
    stays = card(a, deal["id"], "qualified")
    expect(stays).to_have_count(1)
    expect(stays).to_contain_text("55%")
    expect(stays).to_have_attribute("data-version", "2")
    expect(a.page.get_by_label(f"Stage of Stale {t}")).to_have_value("qualified")
    # The card was reloaded from the server after the refusal (not only updated by the live echo).
    patched = max(i for i, url in enumerate(a.requests) if "/rest/v1/deals?" in url and "version=eq.1" in url)
    later = a.requests[patched + 1 :]
    assert any(f"id=eq.{deal['id']}" in url and "version=eq" not in url for url in later), a.requests
    row = crm.rest("GET", "deals", params={"id": f"eq.{deal['id']}", "select": "stage,version"})[0]
    assert row == {"stage": "qualified", "version": 2}
    a.page.unroute("**/rest/v1/deals?*")

    # Moving it again (now with the current version) works.
    a.page.get_by_label(f"Stage of Stale {t}").select_option("negotiation")
    expect(card(a, deal["id"], "negotiation")).to_have_attribute("data-version", "3")
    assert_no_page_errors(a)


def test_board_follows_inserts_deletes_and_visibility_on_a_phone(crm: CrmServer, machines: Any) -> None:
    """A rep's board: another rep's deal turning private leaves it, turning back returns; inserts and
    deletes are placed in place; the column totals follow. On a phone the board scrolls, the page not."""
    t = tag()
    diego = staff_id(crm, DEMO["diego"].email)
    h = machines("hannah", viewport=PHONE)
    h.sign_in(DEMO["hannah"], path="/pipeline")
    mark_page(h)
    totals = h.page.locator("section.stage-column[data-stage='proposal'] .stage-totals")
    count = int(totals.get_attribute("data-count") or "0")
    total = float(totals.get_attribute("data-total") or "0")

    deal = crm.rest("POST", "deals", json={
        "title": f"Seen {t}", "amount": 1000, "stage": "proposal", "owner_id": diego, "position": -5,
    })[0]  # fmt: skip
    shown = card(h, deal["id"], "proposal")
    expect(shown).to_have_count(1, timeout=LIVE_MS)
    expect(shown).to_have_class(re.compile(r"\bflash\b"))
    expect(shown).to_contain_text("View only")  # Hannah may not move Diego's deal
    expect(shown).not_to_have_attribute("draggable", "true")
    expect(totals).to_have_attribute("data-count", str(count + 1))
    expect(totals).to_have_attribute("data-total", str(round(total + 1000, 2)).removesuffix(".0"))

    crm.rest("PATCH", "deals", params={"id": f"eq.{deal['id']}"}, json={"visibility": "private"})
    expect(shown).to_have_count(0, timeout=LIVE_MS)
    expect(totals).to_have_attribute("data-count", str(count))
    crm.rest("PATCH", "deals", params={"id": f"eq.{deal['id']}"}, json={"visibility": "team", "amount": 1500})
    expect(shown).to_have_count(1, timeout=LIVE_MS)
    expect(shown).to_contain_text("$1,500.00")
    expect(totals).to_have_attribute("data-total", str(round(total + 1500, 2)).removesuffix(".0"))

    assert h.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    h.screenshot("pipeline-phone", crm.backend, full_page=False)
    crm.rest("DELETE", "deals", params={"id": f"eq.{deal['id']}"})
    expect(shown).to_have_count(0, timeout=LIVE_MS)
    expect(totals).to_have_attribute("data-count", str(count))
    assert_not_reloaded(h)
    assert_no_page_errors(h)


def test_task_completed_on_one_machine_shows_everywhere(crm: CrmServer, machines: Any) -> None:
    t = tag()
    diego = staff_id(crm, DEMO["diego"].email)
    subject = f"Call back {t}"
    activity = crm.rest("POST", "activities", json={
        "subject": subject, "type": "call", "due_at": noon_today(), "assigned_to": diego, "owner_id": diego,
    })[0]  # fmt: skip
    manager = machines("manager")
    manager.sign_in(DEMO["manager"], path="/dashboard")
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["diego"], path="/tasks")
    b.sign_in(DEMO["diego"], path="/tasks?done=1")
    for m in (manager, b):
        mark_page(m)
    due_before = figure(manager, "due-today")
    assert due_before >= 1

    item = a.page.locator(f"section[data-group='today'] li[data-id='{activity['id']}']")
    expect(item).to_have_count(1)
    expect(b.page.locator(f"section[data-group='today'] li[data-id='{activity['id']}']")).to_have_count(1)
    expect(b.page.get_by_label("Show recently completed (last 7 days)")).to_be_checked()
    a.page.get_by_role("checkbox", name=subject).check()
    expect(item.get_by_role("checkbox", name=subject)).to_be_checked()
    expect(item).to_have_attribute("data-completed", "true", timeout=LIVE_MS)  # saved (the server's copy)

    # B: moved to "Recently completed", ticked, without a reload.
    done = b.page.locator(f"section[data-group='done'] li[data-id='{activity['id']}']")
    expect(done).to_have_count(1, timeout=LIVE_MS)
    expect(done.get_by_role("checkbox", name=subject)).to_be_checked()
    expect(b.page.locator(f"section[data-group='today'] li[data-id='{activity['id']}']")).to_have_count(0)
    b.screenshot("tasks", crm.backend)

    # The manager's "due today" loses exactly this one.
    wait_figure(manager, "due-today", due_before - 1)
    row = crm.rest("GET", "activities", params={"id": f"eq.{activity['id']}", "select": "completed,completed_at"})[0]
    assert row["completed"] is True and row["completed_at"], row

    # Undo on A: open again everywhere.
    a.page.get_by_role("checkbox", name=subject).uncheck()
    expect(b.page.locator(f"section[data-group='today'] li[data-id='{activity['id']}']")).to_have_count(
        1, timeout=LIVE_MS
    )
    wait_figure(manager, "due-today", due_before)
    for m in (manager, b):
        assert_not_reloaded(m)
    assert_no_page_errors(a, b, manager)


def test_dashboard_figures_match_the_server_and_follow_outside_writes(crm: CrmServer, machines: Any) -> None:
    m = machines("M")
    m.sign_in(DEMO["manager"], path="/dashboard")
    mark_page(m)
    assert_figures_match(m, crm)
    expect(m.page.locator("[data-figure='online-count']")).not_to_have_attribute("data-value", "0")
    expect(m.page.locator(".dash-online")).to_contain_text("Priya Shah (you)")
    expect(m.page.locator(".dash-interactions li[data-id]")).to_have_count(8)

    # Outside the app (psql / sqlite3): a won deal, an open activity due today, an interaction.
    t = tag()
    sqlite = crm.database_url.startswith("sqlite")
    won_before = figure(m, "won-this-month", currency="USD")
    deals_before = figure(m, "count-deals")
    due_before = figure(m, "due-today")
    crm.outside(
        "INSERT INTO deals (id, title, amount, currency, stage) VALUES (%s, %s, %s, %s, %s)",
        (str(uuid.uuid4()), f"Outside win {t}", 77725 if sqlite else Decimal("777.25"), "USD", "won"),
    )
    crm.outside(
        "INSERT INTO activities (id, subject, type, due_at, completed) VALUES (%s, %s, %s, %s, %s)",
        (str(uuid.uuid4()), f"Outside task {t}", "task", noon_today(), False),
    )
    contact = crm.rest("GET", "contacts", params={"select": "id,first_name,last_name", "limit": "1", "order": "id"})[0]
    summary = f"Outside chat {t}"
    crm.outside(
        "INSERT INTO interactions (id, contact_id, kind, direction, summary, occurred_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (str(uuid.uuid4()), contact["id"], "chat", "inbound", summary, stamp(dt.datetime.now(dt.UTC))),
    )
    wait_figure(m, "won-this-month", round(won_before + 777.25, 2), currency="USD")
    wait_figure(m, "count-deals", deals_before + 1)
    wait_figure(m, "due-today", due_before + 1)
    expect(m.page.locator(".dash-interactions li").first).to_contain_text(summary, timeout=LIVE_MS)
    expect(m.page.locator(".dash-interactions li").first).to_contain_text(contact["first_name"])
    assert_figures_match(m, crm)
    m.screenshot("dashboard-desktop", crm.backend)
    assert_not_reloaded(m)
    assert_no_page_errors(m)
