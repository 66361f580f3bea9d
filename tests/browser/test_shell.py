"""The app shell: how it is served, sign-in and sign-out, navigation, forms, and a page at phone width.

Screenshots of the main pages go to ``tests/artifacts/browser/<backend>-<page>.png``.
"""

from __future__ import annotations

import http.client
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conftest import DEMO, HTTP_TIMEOUT, INACTIVE, INACTIVE_PASSWORD, SETUP_LINE, TABLES, CrmServer, Login, Machine

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

VENDOR_DIR = Path(__file__).resolve().parents[2] / "src" / "wexlot" / "ui" / "static" / "vendor"
PAGES = (
    "Dashboard", "Pipeline", "Tasks", "Contacts", "Companies", "Deals", "Activities", "Interactions", "Platforms",
    "Staff", "Realtime settings", "Status",
)  # fmt: skip
LISTS = {"Contacts", "Companies", "Deals", "Activities", "Interactions", "Platforms", "Staff"}


def test_shell_and_static_files_are_served_with_types_and_caching(crm: CrmServer) -> None:
    versions = json.loads((VENDOR_DIR / "VERSIONS.json").read_text())
    assert versions["bundle"] == "supabase-js-2.119.1.js"
    assert {p["name"]: p["version"] for p in versions["packages"]}["@supabase/supabase-js"] == "2.119.1"
    with httpx.Client(base_url=crm.url, timeout=10) as client:
        for path in ("/", "/contacts", "/deals?page=2"):
            shell = client.get(path)
            assert shell.status_code == 200, path
            assert shell.headers["content-type"].startswith("text/html")
            assert shell.headers["cache-control"] == "no-cache"
            assert f'content="{crm.anon_key}"' in shell.text  # the public anon key, nothing else
            assert crm.service_key not in shell.text
            assert "script-src 'self'" in shell.headers["content-security-policy"]
        etag = shell.headers["etag"]
        assert client.get("/contacts", headers={"If-None-Match": etag}).status_code == 304

        bundle = client.get(f"/static/vendor/{versions['bundle']}")
        assert bundle.status_code == 200
        assert bundle.headers["content-type"] == "text/javascript; charset=utf-8"
        assert bundle.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert len(bundle.content) == versions["bytes"]
        for path, content_type in (
            ("/static/vendor/supabase.js", "text/javascript; charset=utf-8"),
            ("/static/app/main.js", "text/javascript; charset=utf-8"),
            ("/static/app.css", "text/css; charset=utf-8"),
            ("/static/favicon.svg", "image/svg+xml"),
        ):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == content_type, path
            assert response.headers["cache-control"] == "no-cache", path
            assert response.headers["x-content-type-options"] == "nosniff"
            revalidated = client.get(path, headers={"If-None-Match": response.headers["etag"]})
            assert revalidated.status_code == 304, path

        # Unknown files are 404s, not the shell; the APIs mounted before the UI still answer.
        for path in ("/nope.js", "/static/app/nope.js", "/realtime/v1/nope"):
            assert client.get(path).status_code == 404, path
        # Paths that climb out of static/ (sent as written: httpx would normalise them first) serve nothing
        # from beside it, e.g. the package's own routes.py.
        host, port = crm.url.removeprefix("http://").split(":")
        climbs = ["/static/../routes.py", "/static/%2e%2e/routes.py", "/static/..%2froutes.py"]
        climbs.append("/static/app/../../routes.py")
        for raw in climbs:
            conn = http.client.HTTPConnection(host, int(port), timeout=HTTP_TIMEOUT)
            try:
                conn.request("GET", raw)
                answer = conn.getresponse()
                body = answer.read()
            finally:
                conn.close()
            assert answer.status in (400, 404), (raw, answer.status)
            assert b"import" not in body and b"def shell" not in body, raw
        assert client.get("/auth/v1/health").status_code == 200
        rest = client.get("/rest/v1/platforms", headers={"apikey": crm.anon_key})
        assert rest.status_code == 200 and rest.json() == []  # anon reads nothing, but REST answered


def sign_in_form(machine: Machine, login: Login | tuple[str, str]) -> None:
    email, password = (login.email, login.password) if isinstance(login, Login) else login
    machine.page.get_by_label("Email").fill(email)
    machine.page.get_by_label("Password").fill(password)
    machine.page.get_by_role("button", name="Sign in").click()


def test_sign_in_survives_reload_and_signs_out(crm: CrmServer, machines: Any) -> None:
    a = machines("A")
    page = a.page
    a.goto("/")
    expect(page.get_by_role("heading", name="Sign in to WeXlot")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    a.screenshot("sign-in", crm.backend)

    # Client-side checks first, at the field.
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#signin-email-error")).to_have_text("Enter your email address.")
    expect(page.locator("#signin-password-error")).to_have_text("Enter your password.")

    sign_in_form(a, (DEMO["manager"].email, "not-the-password"))
    expect(page.locator("#signin-error")).to_have_text("Wrong email or password.")

    # An inactive staff member is refused with a clear message (the server answers 400 user_banned).
    sign_in_form(a, (INACTIVE[0], INACTIVE_PASSWORD))
    expect(page.locator("#signin-error")).to_contain_text("Your account is inactive")
    expect(page.locator("#nav")).to_be_hidden()

    sign_in_form(a, DEMO["manager"])
    a.expect_ready()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.locator("#account-name")).to_have_text("Priya Shah · manager")
    expect(page.locator("#connection .label")).to_have_text("Live")

    # The session survives a reload: no sign-in form, straight back to the same page, live again.
    page.reload()
    a.expect_ready()
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in to WeXlot")).to_have_count(0)
    assert len(a.lines(SETUP_LINE)) == 2  # once per page load: the first one and the reload

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to WeXlot")).to_be_visible()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    assert page.evaluate("window.supabase.getChannels().length") == 0
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to WeXlot")).to_be_visible()


def test_every_page_is_reachable_by_keyboard_and_loads(crm: CrmServer, machines: Any) -> None:
    a = machines("A")
    a.sign_in(DEMO["admin"], path="/dashboard")
    page = a.page
    expect(page.locator(".cards article[data-table='contacts'] .figure")).to_have_text(re.compile(r"^\d+$"))
    a.screenshot("dashboard", crm.backend)

    for title in PAGES:
        link = page.get_by_role("navigation", name="Main").get_by_role("link", name=title, exact=True)
        link.focus()
        page.keyboard.press("Enter")
        expect(link).to_have_attribute("aria-current", "page")
        expect(page.get_by_role("heading", level=1, name=title, exact=True)).to_be_focused()
        a.expect_ready()
        if title in LISTS:
            expect(page.locator("table.list tbody tr").first).to_be_visible()
            a.screenshot(title.lower(), crm.backend)
    assert not [line for line in a.console if line.startswith("[pageerror]")], a.console

    channels = page.evaluate("window.supabase.getChannels().map((c) => [c.topic, c.state])")
    assert sorted(channels) == sorted([f"realtime:{t}", "joined"] for t in TABLES)


def test_contact_form_shows_errors_at_the_field(crm: CrmServer, machines: Any) -> None:
    a = machines("A")
    a.sign_in(DEMO["manager"])
    page = a.page
    page.get_by_role("button", name="New contact").click()
    dialog = page.get_by_role("dialog", name="New contact")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("First name")).to_be_focused()
    expect(dialog.get_by_label("Status")).to_have_value("lead")
    expect(dialog.get_by_label("Status").locator("option")).to_have_text(["Lead", "Prospect", "Customer", "Churned"])
    expect(dialog.get_by_label("Owner")).to_have_value(re.compile(r"^[0-9a-f-]{36}$"))  # the manager herself

    dialog.get_by_label("Email").fill("not-an-email")
    dialog.get_by_role("button", name="Add contact").click()
    first_name = dialog.get_by_label("First name")
    expect(first_name).to_have_attribute("aria-invalid", "true")
    expect(first_name).to_be_focused()
    error_id = first_name.get_attribute("aria-describedby").split()[-1]
    expect(page.locator(f"#{error_id}")).to_have_text("First name is required.")
    expect(dialog.locator("[data-field='email'] .field-error")).to_have_text(
        "Enter an email address like name@example.com."
    )
    a.screenshot("contact-form-errors", crm.backend, full_page=False)

    # Escape closes the dialog without saving.
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def test_server_errors_are_shown_at_the_field(crm: CrmServer, machines: Any) -> None:
    """A unique-email clash is only known to the server; its 23505 comes back on the email field."""
    a = machines("A")
    a.sign_in(DEMO["admin"], path="/staff")
    page = a.page
    page.get_by_role("button", name=f"Edit {DEMO['kenji'].name}").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Email").fill(DEMO["hannah"].email)
    dialog.get_by_role("button", name="Save changes").click()
    email = dialog.get_by_label("Email")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(dialog.locator("[data-field='email'] .field-error")).to_have_text(
        "Another staff member already has this email."
    )
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)


def test_phone_width_layout_and_menu(crm: CrmServer, machines: Any) -> None:
    phone = machines("phone", viewport={"width": 390, "height": 844})
    phone.sign_in(DEMO["manager"])
    page = phone.page
    nav = page.get_by_role("navigation", name="Main")
    menu = page.get_by_role("button", name="Menu")
    expect(nav).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")
    # Rows are cards: every cell labelled, nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator("table.list tbody tr").first.locator("td[data-label='Email']")).to_be_visible()
    overflowing = page.evaluate(
        "[...document.querySelectorAll('table.list td')].filter((td) => td.scrollWidth > td.clientWidth + 1).length"
    )
    assert overflowing == 0
    phone.screenshot("phone-contacts", crm.backend, full_page=False)

    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nav).to_be_visible()
    phone.screenshot("phone-menu", crm.backend, full_page=False)
    nav.get_by_role("link", name="Deals").click()
    expect(page.get_by_role("heading", level=1, name="Deals")).to_be_visible()
    expect(nav).to_be_hidden()
