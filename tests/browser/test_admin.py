"""Admin pages in the browser: staff administration on /staff, realtime settings, status.

Staff are invited and changed through the UI on machine A (an admin); the effects are checked where
they matter: on the colleague's own machine (sign-in, cut-off) and live on other machines' lists.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conftest import DEMO, HTTP_TIMEOUT, INACTIVE_PASSWORD, REVOCABLE, TABLES, CrmServer, Login, expect_deactivated

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

LIVE_MS = 10_000  # a change on one machine must show on the other within this
QUIET_MS = 3_000  # how long a change that must NOT arrive is waited for
MS_FIGURE = re.compile(r"^\d+(\.\d)? ms")


def tag() -> str:
    return uuid.uuid4().hex[:6]


def make_login(crm: CrmServer, name: str, role: str = "rep") -> Login:
    """A login plus its active staff row, made with the service key (as an operator's script would)."""
    email = f"{name.lower().replace(' ', '.')}@example.com"
    password = f"Pw-{uuid.uuid4().hex[:12]}"
    response = httpx.post(
        f"{crm.url}/auth/v1/admin/users",
        headers={"apikey": crm.service_key, "Authorization": f"Bearer {crm.service_key}"},
        json={"email": email, "password": password, "email_confirm": True,
              "user_metadata": {"full_name": name, "role": role}},
        timeout=HTTP_TIMEOUT,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return Login(email, password, name, role)


def password_grant(crm: CrmServer, email: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{crm.url}/auth/v1/token",
        params={"grant_type": "password"},
        headers={"apikey": crm.anon_key},
        json={"email": email, "password": password},
        timeout=HTTP_TIMEOUT,
    )


def set_publication(crm: CrmServer, tables: list[str]) -> None:
    response = httpx.put(
        f"{crm.url}/realtime/v1/api/publication",
        headers={"apikey": crm.service_key, "Authorization": f"Bearer {crm.service_key}"},
        json={"tables": tables},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text


def published(crm: CrmServer) -> set[str]:
    return {t["name"] for t in crm.realtime_api("publication")["tables"] if t["published"]}


# --- staff administration ------------------------------------------------------------------------


def test_admin_invites_a_colleague_who_signs_in_and_appears_live(crm: CrmServer, machines: Any) -> None:
    t = tag()
    name, email = f"Nina Invited {t}", f"nina.{t}@example.com"
    a, b, c = machines("A"), machines("B"), machines("C")
    a.sign_in(DEMO["admin"], path=f"/staff?q={t}")
    c.sign_in(DEMO["diego"], path=f"/staff?q={t}")  # a rep: sees staff, but none of the admin controls
    expect(c.page.get_by_role("button", name="Invite colleague")).to_have_count(0)
    assert c.count() == 0

    a.page.get_by_role("button", name="Invite colleague").click()
    form = a.page.get_by_role("dialog", name="Invite a colleague")
    form.get_by_label("Full name").fill(name)
    form.get_by_label("Email").fill(email)
    form.get_by_label("Role").select_option("manager")
    form.get_by_label("Job title").fill("Account Executive")
    form.get_by_role("button", name="Invite", exact=True).click()
    done = a.page.get_by_role("dialog", name=f"{name} can now sign in")
    expect(done).to_be_visible()
    password = done.get_by_label("Temporary password").input_value()
    assert re.fullmatch(r"[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){3}", password), password
    expect(done).to_contain_text(email)
    a.screenshot("staff-admin-invited", crm.backend, full_page=False)
    done.get_by_role("button", name="Done").click()
    expect(done).to_have_count(0)

    # The new row shows live on C (a rep's machine), with its role and the title set after the login.
    row = c.row(name)
    expect(row).to_have_count(1, timeout=LIVE_MS)
    expect(row.locator("td[data-col='role']")).to_have_text("Manager")
    expect(row.locator("td[data-col='title']")).to_have_text("Account Executive", timeout=LIVE_MS)
    expect(c.page.locator("[data-testid=count]")).to_have_attribute("data-total", "1")
    expect(row.locator(".staff-admin")).to_have_count(0)  # a rep's row shows no admin controls
    expect(a.row(name).locator(".staff-admin")).to_have_count(1, timeout=LIVE_MS)  # an admin's does
    expect(a.row(name).locator("td[data-col='is_active']")).to_have_text("Yes", timeout=LIVE_MS)

    # The colleague signs in on machine B with the temporary password and sees the CRM.
    b.sign_in(Login(email, password, name, "manager"), path="/dashboard")
    expect(b.page.locator("#account-name")).to_have_text(f"{name} · manager")
    expect(b.page.locator("#nav")).to_be_visible()

    # The same email again: refused, and said at the email field.
    a.page.get_by_role("button", name="Invite colleague").click()
    form = a.page.get_by_role("dialog", name="Invite a colleague")
    form.get_by_label("Full name").fill(f"Nina Twice {t}")
    form.get_by_label("Email").fill(email.upper())
    form.get_by_role("button", name="Invite", exact=True).click()
    email_field = form.locator("[data-field=email]")
    expect(email_field.locator(".field-error")).to_have_text("A login with this email address already exists.")
    expect(email_field.locator("input")).to_have_attribute("aria-invalid", "true")
    expect(email_field.locator("input")).to_be_focused()
    a.screenshot("staff-admin", crm.backend)
    form.get_by_role("button", name="Cancel").click()
    assert crm.rest("GET", "staff", params={"full_name": f"eq.Nina Twice {t}"}) == []

    # Phone width: the row's controls wrap inside its card instead of running off the screen.
    a.page.set_viewport_size({"width": 390, "height": 844})
    select = a.page.get_by_label(f"Role of {name}")
    expect(select).to_be_visible()
    box = a.row(name).locator(".staff-admin").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    a.screenshot("staff-admin-phone", crm.backend)
    assert not [line for line in a.console + b.console + c.console if line.startswith("[pageerror]")]


def test_admin_changes_a_role_and_it_shows_live_elsewhere(crm: CrmServer, machines: Any) -> None:
    t = tag()
    member = make_login(crm, f"Rita Role {t}")
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["admin"], path=f"/staff?q={t}")
    b.sign_in(DEMO["manager"], path=f"/staff?q={t}")
    role_cell = b.row(member.name).locator("td[data-col='role']")
    expect(role_cell).to_have_text("Rep")

    select = a.page.get_by_label(f"Role of {member.name}")
    expect(select).to_have_value("rep")
    select.select_option("manager")
    expect(role_cell).to_have_text("Manager", timeout=LIVE_MS)
    expect(a.row(member.name).locator("td[data-col='role']")).to_have_text("Manager")
    expect(a.page.locator("#notices")).to_contain_text(f"{member.name} is now a manager")

    # Granting admin asks first; cancelling keeps the role.
    a.page.get_by_label(f"Role of {member.name}").select_option("admin")
    confirm = a.page.get_by_role("dialog", name=f"Make {member.name} an admin?")
    confirm.get_by_role("button", name="Cancel").click()
    expect(a.page.get_by_label(f"Role of {member.name}")).to_have_value("manager")
    staff = crm.rest("GET", "staff", params={"email": f"eq.{member.email}", "select": "role"})
    assert staff == [{"role": "manager"}]
    expect(role_cell).to_have_text("Manager")

    # The admin's own row has no role select or deactivate button (no locking oneself out).
    a.page.goto(f"{crm.url}/staff?q=Alex")
    a.expect_ready()
    expect(a.row(DEMO["admin"].name).locator(".staff-you")).to_have_text("You")
    expect(a.page.get_by_label(f"Role of {DEMO['admin'].name}")).to_have_count(0)


def test_admin_deactivates_a_signed_in_rep_through_the_ui(crm: CrmServer, machines: Any) -> None:
    rex = Login(REVOCABLE[0], INACTIVE_PASSWORD, REVOCABLE[1], "rep")
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["admin"], path="/staff?q=Rex")
    b.sign_in(rex)  # on Contacts
    b.page.evaluate("window.__noReload = 'still here'")

    a.page.get_by_role("button", name=f"Deactivate {rex.name}").click()
    confirm = a.page.get_by_role("dialog", name=f"Deactivate {rex.name}?")
    expect(confirm).to_contain_text("stops receiving data at once")
    confirm.get_by_role("button", name="Deactivate").click()
    expect(a.row(rex.name).locator("td[data-col='is_active']")).to_have_text("No", timeout=LIVE_MS)

    # B is cut off by the server at once and says so, without a reload.
    expect_deactivated(b, crm)
    assert password_grant(crm, rex.email, rex.password).status_code == 400

    # Reactivated from the same row: the password works again.
    a.page.get_by_role("button", name=f"Reactivate {rex.name}").click()
    a.page.get_by_role("dialog", name=f"Reactivate {rex.name}?").get_by_role("button", name="Reactivate").click()
    expect(a.row(rex.name).locator("td[data-col='is_active']")).to_have_text("Yes", timeout=LIVE_MS)
    expect(a.page.get_by_role("button", name=f"Deactivate {rex.name}")).to_be_visible()
    assert password_grant(crm, rex.email, rex.password).status_code == 200


def test_admin_sets_a_temporary_password(crm: CrmServer, machines: Any) -> None:
    t = tag()
    member = make_login(crm, f"Tom Temp {t}")
    assert password_grant(crm, member.email, member.password).status_code == 200
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["admin"], path=f"/staff?q={t}")
    b.sign_in(member, path="/contacts")  # the member is signed in elsewhere

    a.page.get_by_role("button", name=f"Set temporary password for {member.name}").click()
    ask = a.page.get_by_role("dialog", name=f"Temporary password for {member.name}")
    expect(ask).to_contain_text("current password stops working")
    ask.get_by_role("button", name="Set temporary password").click()
    done = a.page.get_by_role("dialog", name=f"New password for {member.name}")
    expect(done).to_be_visible()
    password = done.get_by_label("Temporary password").input_value()
    assert password and password != member.password
    done.get_by_role("button", name="Done").click()

    # A new password signs the member out everywhere: B's screen says so, without blaming a deactivation.
    expect(b.page.get_by_text("Your session has ended")).to_be_visible(timeout=LIVE_MS)
    expect(b.page.get_by_role("heading", name="Sign in to WeXlot")).to_be_visible()
    assert b.page.evaluate("window.supabase.getChannels().length") == 0

    old = password_grant(crm, member.email, member.password)
    assert old.status_code == 400 and old.json()["code"] == "invalid_credentials", old.text
    assert password_grant(crm, member.email, password).status_code == 200

    # A staff row without a login (added by REST, say) gets one the same way, linked to that row.
    loner = f"Lou Loginless {t}"
    email = f"lou.{t}@example.com"
    crm.rest("POST", "staff", json={"full_name": loner, "email": email, "role": "rep", "is_active": True})
    a.page.get_by_role("button", name=f"Create login for {loner}").click(timeout=10_000)
    a.page.get_by_role("dialog", name=f"Create a login for {loner}").get_by_role("button", name="Create login").click()
    done = a.page.get_by_role("dialog", name=f"New password for {loner}")
    password = done.get_by_label("Temporary password").input_value()
    done.get_by_role("button", name="Done").click()
    assert password_grant(crm, email, password).status_code == 200
    expect(a.page.get_by_role("button", name=f"Set temporary password for {loner}")).to_be_visible(timeout=10_000)


# --- realtime settings -------------------------------------------------------------------------


def test_settings_toggle_stops_and_restarts_delivery(crm: CrmServer, machines: Any) -> None:
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["admin"], path="/settings")
    b.sign_in(DEMO["diego"])  # on Contacts
    switch = a.page.get_by_role("switch", name="Broadcast contacts")
    warning = a.page.get_by_test_id("publication-warning")
    expect(switch).to_be_checked()
    expect(warning).to_be_hidden()
    try:
        switch.uncheck()
        expect(warning).to_contain_text("Other machines will not see changes to contacts live")
        expect(switch).to_be_enabled()
        expect(switch).not_to_be_checked()
        assert "contacts" not in published(crm)
        assert published(crm) == set(TABLES) - {"contacts"}
        a.screenshot("realtime-settings", crm.backend)

        # B's screen says it is not live for contacts (the server hints every channel; B re-reads the list).
        expect(b.page.get_by_test_id("not-live")).to_contain_text("Not live: Contacts.", timeout=LIVE_MS)

        # Not delivered: a company written after the contact does arrive, and the contact still has not.
        t = tag()
        before = b.count()
        crm.rest("POST", "contacts", json={"first_name": "Quiet", "last_name": f"Off {t}"})
        crm.rest("POST", "companies", json={"name": f"Marker {t}"})
        b.wait_console(f"Companies data changed: INSERT Marker {t}")
        b.page.wait_for_timeout(QUIET_MS)
        expect(b.row(f"Quiet Off {t}")).to_have_count(0)
        assert not b.lines(f"Contacts data changed: INSERT Quiet Off {t}")
        assert b.count() == before

        # On again: the next contact arrives live.
        switch.check()
        expect(warning).to_be_hidden()
        expect(switch).to_be_enabled()
        assert published(crm) == set(TABLES)
        # B is live again, and reloaded the list: the contact it could not be sent is there now.
        expect(b.page.get_by_test_id("not-live")).to_be_hidden(timeout=LIVE_MS)
        expect(b.row(f"Quiet Off {t}")).to_have_count(1, timeout=LIVE_MS)
        crm.rest("POST", "contacts", json={"first_name": "Loud", "last_name": f"On {t}"})
        expect(b.row(f"Loud On {t}")).to_have_count(1, timeout=LIVE_MS)
        assert b.wait_console(f"Contacts data changed: INSERT Loud On {t}")
        expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", str(before + 2))
    finally:
        set_publication(crm, list(TABLES))


# --- status ------------------------------------------------------------------------------------


def test_status_page_shows_channels_latency_and_the_server_view(crm: CrmServer, machines: Any) -> None:
    b, c = machines("B"), machines("C")
    position = crm.position()  # the server's view must be at least this far along
    b.sign_in(DEMO["admin"], path="/status")
    page = b.page
    rows = page.locator("[data-testid=channels] tbody tr")
    expect(page.locator("[data-testid=channels] tbody tr[data-state='joined']")).to_have_count(7)
    topics = rows.evaluate_all("rows => rows.map((r) => r.dataset.topic)")
    assert sorted(topics) == sorted(f"realtime:{t}" for t in TABLES)
    expect(page.get_by_test_id("connection-state")).to_have_text("Real-time updates: Live")

    page.get_by_role("button", name="Measure round trip").click()
    expect(page.get_by_test_id("heartbeat-ms")).to_have_text(MS_FIGURE)
    expect(page.get_by_test_id("http-ms")).to_have_text(re.compile(r"^\d+(\.\d)? ms \(HTTP 200\)$"))

    # The server's view: this machine's connection and its 7 channels are among what it reports.
    expect(page.get_by_test_id("server-view")).to_contain_text("Change position")
    for figure in ("server-connections", "server-channels", "server-position"):
        expect(page.get_by_test_id(figure)).to_have_text(re.compile(r"^\d+$"))
    assert int(page.get_by_test_id("server-connections").inner_text()) >= 1
    assert int(page.get_by_test_id("server-channels").inner_text()) >= 7
    assert int(page.get_by_test_id("server-position").inner_text()) >= position
    server_topics = page.locator("[data-testid=server-topics] tbody tr")
    expect(server_topics.filter(has=page.locator("code", has_text=re.compile(r"^realtime:contacts$")))).to_have_count(1)

    # Live: a change updates the last-event time without a reload.
    probe = f"Probe {tag()}"
    sent = dt.datetime.now(dt.UTC)
    crm.rest("POST", "contacts", json={"first_name": "Status", "last_name": probe})
    b.wait_console(f"Contacts data changed: INSERT Status {probe}")
    last = page.get_by_test_id("last-event").locator("time")
    expect(last).to_have_text(re.compile(r"\(\d+ s ago\)$"), timeout=LIVE_MS)
    shown = dt.datetime.fromisoformat(last.get_attribute("datetime").replace("Z", "+00:00"))
    assert shown >= sent - dt.timedelta(seconds=1), (shown, sent)  # this change's time, not an earlier one
    b.screenshot("status", crm.backend)

    # A rep sees their own browser's side; the server's view is for admins.
    c.sign_in(DEMO["hannah"], path="/status")
    expect(c.page.locator("[data-testid=channels] tbody tr[data-state='joined']")).to_have_count(7)
    expect(c.page.get_by_test_id("server-message")).to_contain_text("Only administrators can see the server")
    assert not [line for line in b.console + c.console if line.startswith("[pageerror]")]
