"""Two machines on the Contacts page: what one changes, the other shows at once, without a reload."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from conftest import (
    DEMO,
    INACTIVE_PASSWORD,
    REVOCABLE,
    SETUP_LINE,
    TABLES,
    CrmServer,
    Login,
    Machine,
    expect_deactivated,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

LIVE_MS = 10_000  # a change on one machine must show on the other within this


def mark_page(machine: Machine) -> None:
    """A marker that a reload would wipe: proves later updates arrived without one."""
    machine.page.evaluate("window.__noReload = 'still here'")


def assert_not_reloaded(machine: Machine) -> None:
    assert machine.page.evaluate("window.__noReload") == "still here"
    assert len(machine.lines(SETUP_LINE)) == 1, machine.lines(SETUP_LINE)


def test_seed_scenario_add_edit_delete_propagate(crm: CrmServer, machines: Any) -> None:
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["manager"])  # Priya Shah, manager, at the office
    b.sign_in(DEMO["diego"])  # Diego Alvarez, rep, at home
    mark_page(b)
    before, a_before = b.count(), a.count()
    assert a_before >= before  # a rep does not see the other reps' private contacts

    # A adds "Jane Smith".
    a.page.get_by_role("button", name="New contact").click()
    form = a.page.get_by_role("dialog", name="New contact")
    form.get_by_label("First name").fill("Jane")
    form.get_by_label("Last name").fill("Smith")
    form.get_by_label("Email").fill("jane.smith@example.com")
    form.get_by_label("Phone").fill("+1 555 0110")
    form.get_by_role("button", name="Add contact").click()
    expect(form).to_have_count(0)
    expect(a.row("Jane Smith")).to_have_count(1)
    expect(a.page.locator("[data-testid=count]")).to_have_attribute("data-total", str(a_before + 1))

    # B shows it without a reload, at the top (newest first), highlighted, with who added it.
    jane = b.row("Jane Smith")
    expect(b.page.locator("table.list tbody tr.flash", has_text="Jane Smith")).to_have_count(1, timeout=LIVE_MS)
    expect(b.page.locator("#notices")).to_contain_text("Contact “Jane Smith” added by Priya Shah")
    expect(b.page.locator("table.list tbody tr").first).to_contain_text("Jane Smith")
    expect(jane.locator("td[data-col='owner_id']")).to_have_text("Priya Shah")
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", str(before + 1))
    assert b.wait_console("Contacts data changed") == "Contacts data changed: INSERT Jane Smith"
    assert b.lines(SETUP_LINE) == [SETUP_LINE]
    b.screenshot("live-insert-on-b", crm.backend, full_page=False)

    # A edits her; B shows the new values in place.
    a.page.get_by_role("button", name="Edit Jane Smith").click()
    form = a.page.get_by_role("dialog", name="Edit contact: Jane Smith")
    form.get_by_label("Email").fill("jane@smith-family.example")
    form.get_by_label("Job title").fill("Head of Procurement")
    form.get_by_role("button", name="Save changes").click()
    expect(form).to_have_count(0)
    expect(a.page.get_by_role("button", name="Edit Jane Smith")).to_be_focused()  # back where the user was
    expect(jane.locator("td[data-col='email']")).to_have_text("jane@smith-family.example", timeout=LIVE_MS)
    expect(b.page.locator("#notices")).to_contain_text("Contact “Jane Smith” updated by Priya Shah")
    expect(jane).to_have_attribute("data-version", "2")
    assert b.wait_console("Contacts data changed: UPDATE") == "Contacts data changed: UPDATE Jane Smith"
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", str(before + 1))

    # A deletes her; she disappears from B and the count goes back.
    a.page.get_by_role("button", name="Delete Jane Smith").click()
    confirm = a.page.get_by_role("dialog", name="Delete contact?")
    confirm.get_by_role("button", name="Delete").click()
    expect(a.row("Jane Smith")).to_have_count(0)
    expect(jane).to_have_count(0, timeout=LIVE_MS)
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", str(before))
    assert b.wait_console("Contacts data changed: DELETE") == "Contacts data changed: DELETE Jane Smith"

    # The classic console check, verbatim, on B.
    channels = b.page.evaluate("window.supabase.getChannels().map((c) => ({ topic: c.topic, state: c.state }))")
    assert len(channels) == 7
    assert sorted(c["topic"] for c in channels) == sorted(f"realtime:{t}" for t in TABLES)
    assert all(c["state"] == "joined" for c in channels), channels
    assert_not_reloaded(b)
    assert not [line for line in a.console + b.console if line.startswith("[pageerror]")]


def test_contact_inserted_outside_the_app_appears(crm: CrmServer, machines: Any) -> None:
    """A row written with psql / the sqlite3 module reaches the open page like any other change."""
    b = machines("B")
    b.sign_in(DEMO["diego"])
    mark_page(b)
    before = b.count()
    last = f"Outsider-{uuid.uuid4().hex[:6]}"
    crm.outside(
        "INSERT INTO contacts (id, first_name, last_name, email) VALUES (%s, %s, %s, %s)",
        (str(uuid.uuid4()), "Olive", last, "olive@outside.example"),
    )
    row = b.row(f"Olive {last}")
    expect(row).to_have_count(1, timeout=LIVE_MS)
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", str(before + 1))
    expect(b.page.locator("#notices")).to_contain_text(f"Contact “Olive {last}” added outside the app")
    assert b.wait_console(f"Contacts data changed: INSERT Olive {last}")
    assert_not_reloaded(b)


def test_live_rows_follow_the_search_and_sort(crm: CrmServer, machines: Any) -> None:
    """Rows arriving live land where the list's order puts them, or stay out when they don't match."""
    tag = f"Plc{uuid.uuid4().hex[:5]}"
    crm.rest("POST", "contacts", json=[
        {"first_name": "Bea", "last_name": f"{tag} Baker"},
        {"first_name": "Dan", "last_name": f"{tag} Dunn"},
    ])  # fmt: skip
    b = machines("B")
    b.sign_in(DEMO["diego"], path=f"/contacts?q={tag}&sort=name.asc")
    mark_page(b)
    expect(b.page.get_by_label("Search contacts")).to_have_value(tag)
    names = b.page.locator("table.list tbody tr td[data-col='name']")
    expect(names).to_have_text([f"Bea {tag} Baker", f"Dan {tag} Dunn"])
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", "2")

    # Matches, sorts between the two.
    crm.rest("POST", "contacts", json={"first_name": "Cy", "last_name": f"{tag} Cole"})
    expect(names).to_have_text([f"Bea {tag} Baker", f"Cy {tag} Cole", f"Dan {tag} Dunn"], timeout=LIVE_MS)
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", "3")

    # Does not match the search: not shown, not counted (but the change did arrive).
    crm.rest("POST", "contacts", json={"first_name": "Zed", "last_name": "Elsewhere"})
    b.wait_console("Contacts data changed: INSERT Zed Elsewhere")
    expect(names).to_have_count(3)
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", "3")

    # Renamed to sort first; then renamed out of the search: moves, then leaves, and the count follows.
    crm.rest("PATCH", "contacts", params={"last_name": f"eq.{tag} Dunn"}, json={"last_name": f"{tag} Adams"})
    expect(names).to_have_text([f"Dan {tag} Adams", f"Bea {tag} Baker", f"Cy {tag} Cole"], timeout=LIVE_MS)
    crm.rest("PATCH", "contacts", params={"last_name": f"eq.{tag} Baker"}, json={"last_name": "Gone"})
    expect(names).to_have_text([f"Dan {tag} Adams", f"Cy {tag} Cole"], timeout=LIVE_MS)
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", "2")
    b.screenshot("live-search-placement", crm.backend, full_page=False)
    assert_not_reloaded(b)


def test_deactivated_staff_member_stops_receiving_data_and_is_told(crm: CrmServer, machines: Any) -> None:
    """An admin unticks "Active" on A; B (that rep) is cut off by the server at once and says so."""
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["admin"], path="/staff")
    b.sign_in(Login(REVOCABLE[0], INACTIVE_PASSWORD, REVOCABLE[1], "rep"))
    mark_page(b)

    try:
        a.page.get_by_role("button", name=f"Edit {REVOCABLE[1]}").click()
        form = a.page.get_by_role("dialog", name=f"Edit staff member: {REVOCABLE[1]}")
        form.get_by_label("Active (may sign in and see data)").uncheck()
        form.get_by_role("button", name="Save changes").click()
        expect(form).to_have_count(0)
        expect(a.row(REVOCABLE[1]).locator("td[data-col='is_active']")).to_have_text("No")

        expect_deactivated(b, crm)
    finally:  # the next test may sign in as this rep
        crm.rest("PATCH", "staff", params={"email": f"eq.{REVOCABLE[0]}"}, json={"is_active": True})
