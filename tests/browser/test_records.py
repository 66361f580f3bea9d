"""Record pages, filters, presence, and the two ways an edit can lose its footing: a conflict and a delete."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from conftest import DEMO, CrmServer, Machine

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

LIVE_MS = 10_000


def staff_id(crm: CrmServer, key: str) -> str:
    rows = crm.rest("GET", "staff", params={"email": f"eq.{DEMO[key].email}", "select": "id"})
    return str(rows[0]["id"])


def new_deal(crm: CrmServer, title: str, owner: str, **values: Any) -> dict[str, Any]:
    body = {"title": title, "amount": 1200, "stage": "qualified", "owner_id": owner, **values}
    return dict(crm.rest("POST", "deals", json=body)[0])


def open_edit(machine: Machine, name: str, dialog_name: str) -> Any:
    machine.page.get_by_role("button", name=f"Edit {name}").click()
    form = machine.page.get_by_role("dialog", name=dialog_name)
    expect(form).to_be_visible()
    return form


def test_record_page_shows_related_records_and_a_live_timeline_and_presence(crm: CrmServer, machines: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    diego = staff_id(crm, "diego")
    company = crm.rest("POST", "companies", json={"name": f"Acme {tag}", "owner_id": diego})[0]
    rosa = {"first_name": "Rosa", "last_name": tag, "email": f"rosa.{tag}@example.com"}
    contact = crm.rest("POST", "contacts", json={**rosa, "company_id": company["id"], "owner_id": diego})[0]
    new_deal(crm, f"Renewal {tag}", diego, contact_id=contact["id"], company_id=company["id"])

    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["diego"], path=f"/contacts/{contact['id']}")
    b.sign_in(DEMO["manager"], path=f"/companies/{company['id']}")
    page_a, page_b = a.page, b.page
    expect(page_a.get_by_role("heading", level=1, name=f"Rosa {tag}")).to_be_visible()
    expect(page_a.locator("dd[data-field='company_id']")).to_have_text(f"Acme {tag}")
    expect(page_a.locator("section[data-related='deals'] li")).to_have_text([f"Renewal {tag} · $1,200.00 · Qualified"])
    expect(page_b.locator("section[data-related='contacts'] li", has_text=f"Rosa {tag}")).to_have_count(1)

    # Presence: each sees the other on the record they share only. B opens the contact too.
    b.goto(f"/contacts/{contact['id']}")
    b.expect_ready()
    expect(page_a.locator("[data-testid=presence]")).to_have_text("Also here: Priya Shah (viewing)", timeout=LIVE_MS)
    expect(page_b.locator("[data-testid=presence]")).to_have_text("Also here: Diego Alvarez (viewing)", timeout=LIVE_MS)
    page_b.get_by_role("button", name="Edit", exact=True).click()
    expect(page_a.locator("[data-testid=presence]")).to_have_text("Also here: Priya Shah (editing)", timeout=LIVE_MS)
    form = page_b.get_by_role("dialog", name=f"Edit contact: Rosa {tag}")
    expect(form.locator("[data-testid=form-presence]")).to_have_text("Also here: Diego Alvarez (viewing)")
    form.get_by_label("Job title").fill("Buyer")
    form.get_by_role("button", name="Save changes").click()
    expect(form).to_have_count(0)
    # A watches the edit arrive on the page it is reading.
    expect(page_a.locator("dd[data-field='title']")).to_have_text("Buyer", timeout=LIVE_MS)
    expect(page_a.locator("#notices")).to_contain_text(f"Contact “Rosa {tag}” updated by Priya Shah")
    expect(page_a.locator("[data-testid=presence]")).to_have_text("Also here: Priya Shah (viewing)", timeout=LIVE_MS)

    # The timeline follows: an interaction logged on B and an activity added outside the app.
    page_b.get_by_role("button", name="Add interaction").click()
    form = page_b.get_by_role("dialog", name="New interaction")
    form.get_by_label("Kind").select_option("call")
    form.get_by_label("Summary").fill(f"Pricing call {tag}")
    form.get_by_role("button", name="Add interaction").click()
    expect(form).to_have_count(0)
    timeline_a = page_a.locator("ol.timeline li")
    expect(timeline_a.filter(has_text=f"Pricing call {tag}")).to_have_count(1, timeout=LIVE_MS)
    crm.rest(
        "POST",
        "activities",
        json={"subject": f"Send quote {tag}", "type": "task", "contact_id": contact["id"], "assigned_to": diego},
    )
    expect(timeline_a.filter(has_text=f"Task: Send quote {tag}")).to_have_count(1, timeout=LIVE_MS)
    a.screenshot("record-page", crm.backend)

    # B leaves: A's presence line empties.
    b.goto("/dashboard")
    expect(page_a.locator("[data-testid=presence]")).to_be_hidden(timeout=LIVE_MS)


def test_both_edit_the_same_deal_and_the_second_save_shows_the_conflict(crm: CrmServer, machines: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    title = f"Conflict {tag}"
    deal = new_deal(crm, title, staff_id(crm, "diego"), probability=20)
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["diego"], path=f"/deals?q={tag}")
    b.sign_in(DEMO["manager"], path=f"/deals?q={tag}")
    form_a = open_edit(a, title, f"Edit deal: {title}")
    form_b = open_edit(b, title, f"Edit deal: {title}")
    # Each list shows who else is editing the row (presence on realtime:deals).
    expect(a.row(title).locator("[data-testid=row-presence]")).to_have_text("Priya Shah editing", timeout=LIVE_MS)

    # A raises the amount and the probability and saves first.
    form_a.get_by_label("Amount").fill("5000")
    form_a.get_by_label("Probability (%)").fill("60")
    form_a.get_by_role("button", name="Save changes").click()
    expect(form_a).to_have_count(0)
    expect(form_b.locator(".form-info")).to_contain_text("Diego Alvarez just saved a change", timeout=LIVE_MS)

    # B, still on the old version, changes the amount too and the expected close date.
    form_b.get_by_label("Amount").fill("4500")
    form_b.get_by_label("Expected close date").fill("2027-03-31")
    form_b.get_by_role("button", name="Save changes").click()
    conflict = form_b.locator("fieldset.conflict-choice[data-field='amount']")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("Keep mine: $4,500.00")
    expect(conflict).to_contain_text("Use theirs (Diego Alvarez): $5,000.00")
    expect(form_b.locator(".form-info")).to_contain_text("Their changes to probability are taken in.")
    assert crm.rest("GET", "deals", params={"id": f"eq.{deal['id']}"})[0]["amount"] == 5000  # nothing overwritten
    expect(form_b.get_by_label("Probability (%)")).to_have_value("60")  # merged: only A changed it
    expect(form_b.get_by_label("Expected close date")).to_have_value("2027-03-31")  # only B changed it
    b.screenshot("edit-conflict", crm.backend)

    # Saving without choosing is refused at the field; choosing "mine" saves the merge.
    form_b.get_by_role("button", name="Save changes").click()
    expect(form_b.get_by_text("Choose which value to keep.")).to_be_visible()
    conflict.get_by_label("Keep mine: $4,500.00").check()
    form_b.get_by_role("button", name="Save changes").click()
    expect(form_b).to_have_count(0)
    saved = crm.rest("GET", "deals", params={"id": f"eq.{deal['id']}"})[0]
    assert (float(saved["amount"]), saved["probability"], saved["expected_close_date"]) == (4500, 60, "2027-03-31")
    assert saved["version"] == deal["version"] + 2
    expect(a.row(title).locator("td[data-col='amount']")).to_have_text("$4,500.00", timeout=LIVE_MS)


def test_editing_a_record_that_another_machine_deletes_says_so(crm: CrmServer, machines: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    crm.rest("POST", "contacts", json={"first_name": "Gone", "last_name": tag})
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["manager"], path=f"/contacts?q={tag}")
    b.sign_in(DEMO["admin"], path=f"/contacts?q={tag}")
    form = open_edit(b, f"Gone {tag}", f"Edit contact: Gone {tag}")
    form.get_by_label("Job title").fill("Typing away")

    a.page.get_by_role("button", name=f"Delete Gone {tag}").click()
    a.page.get_by_role("dialog", name="Delete contact?").get_by_role("button", name="Delete").click()
    expect(form.get_by_role("alert")).to_contain_text(
        "was deleted by someone else while you were editing it", timeout=LIVE_MS
    )
    expect(form.get_by_role("button", name="Save changes")).to_be_disabled()
    assert crm.rest("GET", "contacts", params={"last_name": f"eq.{tag}"}) == []


def test_a_private_deal_never_reaches_another_rep_and_leaves_when_made_private(crm: CrmServer, machines: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    diego = staff_id(crm, "diego")
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["diego"], path=f"/deals?q={tag}")
    b.sign_in(DEMO["hannah"], path=f"/deals?q={tag}")

    new_deal(crm, f"Secret {tag}", diego, visibility="private")
    shared = new_deal(crm, f"Shared {tag}", diego)
    expect(a.row(f"Secret {tag}")).to_have_count(1, timeout=LIVE_MS)
    expect(b.row(f"Shared {tag}")).to_have_count(1, timeout=LIVE_MS)
    # The shared deal arrived after the secret one, so B would have had the secret one by now.
    expect(b.row(f"Secret {tag}")).to_have_count(0)

    # Diego makes the shared deal private from his screen: it leaves Hannah's list and count.
    form = open_edit(a, f"Shared {tag}", f"Edit deal: Shared {tag}")
    form.get_by_label("Visibility").select_option("private")
    form.get_by_role("button", name="Save changes").click()
    expect(form).to_have_count(0)
    expect(b.row(f"Shared {tag}")).to_have_count(0, timeout=LIVE_MS)
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", "0")
    b.goto(f"/deals/{shared['id']}")
    expect(b.page.locator("[data-testid=gone]")).to_have_text("There is no deal here, or you may not see it.")
    b.goto("/pipeline")
    b.expect_ready()
    expect(b.page.get_by_text(f"Secret {tag}")).to_have_count(0)
    expect(b.page.get_by_text(f"Shared {tag}")).to_have_count(0)
    assert not [line for line in b.console if tag in line and "Secret" in line]


def test_filters_are_applied_on_the_server_and_to_live_rows(crm: CrmServer, machines: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    diego = staff_id(crm, "diego")
    for i, (stage, amount) in enumerate((("won", 1000), ("won", 2000), ("lead", 500))):
        new_deal(crm, f"Filter{i} {tag}", diego, stage=stage, amount=amount)
    new_deal(crm, f"Hannahs {tag}", staff_id(crm, "hannah"), stage="won", amount=700)  # left out by the owner filter
    a = machines("A")
    a.sign_in(DEMO["manager"], path=f"/deals?q={tag}")
    expect(a.page.locator("[data-testid=count]")).to_have_attribute("data-total", "4")
    expect(a.page.locator("[data-testid=sum]")).to_have_text("Total $4,200.00")
    a.page.get_by_label("Stage").select_option("won")
    a.expect_ready()
    expect(a.page.locator("[data-testid=count]")).to_have_attribute("data-total", "3")
    expect(a.page.locator("[data-testid=sum]")).to_have_text("Total $3,700.00")
    assert "stage=won" in a.page.url
    a.page.get_by_label("Owner").select_option(label="Diego Alvarez")
    a.expect_ready()
    expect(a.page.locator("[data-testid=count]")).to_have_attribute("data-total", "2")
    expect(a.page.locator("[data-testid=sum]")).to_have_text("Total $3,000.00")
    expect(a.row(f"Hannahs {tag}")).to_have_count(0)
    assert "owner_id=" in a.page.url

    # Live rows obey the filter: one moves in, one moves out, one never matches.
    crm.rest("PATCH", "deals", params={"title": f"eq.Filter2 {tag}"}, json={"stage": "won"})
    crm.rest("PATCH", "deals", params={"title": f"eq.Filter0 {tag}"}, json={"stage": "lost"})
    new_deal(crm, f"Filter3 {tag}", diego, stage="proposal")
    a.wait_console(f"Deals data changed: INSERT Filter3 {tag}")  # it reached the page, and was left out
    expect(a.row(f"Filter2 {tag}")).to_have_count(1, timeout=LIVE_MS)
    expect(a.row(f"Filter0 {tag}")).to_have_count(0)
    expect(a.page.locator("[data-testid=count]")).to_have_attribute("data-total", "2")
    expect(a.row(f"Filter3 {tag}")).to_have_count(0)
    expect(a.page.locator("[data-testid=sum]")).to_have_text("Total $2,500.00")  # the total follows

    # A reload keeps the filters (they are in the address).
    a.page.reload()
    a.expect_ready()
    expect(a.page.get_by_label("Stage")).to_have_value("won")
    expect(a.page.locator("[data-testid=count]")).to_have_attribute("data-total", "2")
