"""The README's screenshots: two machines using a fresh demo CRM, written to docs/screenshots/.

    .venv/bin/python scripts/screenshots.py

Starts ``wexlot serve --demo`` on a temporary SQLite database (demo data only, no test rows), then plays a
short story on two browser contexts of Debian's headless Chromium: Priya (manager) at a desktop, Diego
(rep) on a phone. Diego moves a deal on his pipeline while Priya watches her dashboard; both open the same
contact; both edit the same deal and Priya's save meets the conflict. Each step waits for what the other
machine must show before the picture is taken, so the pictures are also a check that the story works.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support import chromium  # noqa: E402
from support.live_server import LiveServer, keys  # noqa: E402

OUT = REPO / "docs" / "screenshots"
PASSWORD = "wexlot-demo"
WAIT_MS = 20_000


def sign_in(page: Any, url: str, email: str, path: str) -> None:
    chromium.sign_in(page, url, email, PASSWORD, path)
    page.wait_for_timeout(500)  # names and figures settle before a picture


def ready(page: Any) -> None:
    """The page's data has loaded (no section is still loading), plus a moment for names and figures."""
    page.wait_for_function("!document.querySelector(\"main section[data-state='loading']\")", timeout=WAIT_MS)
    page.wait_for_timeout(500)


def shot(page: Any, name: str, *, full_page: bool = False) -> None:
    page.wait_for_timeout(300)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)
    print(f"wrote docs/screenshots/{name}.png")


def story(url: str, service: str, browser: Any) -> None:
    rest = httpx.Client(
        base_url=f"{url}/rest/v1",
        headers={"apikey": service, "Authorization": f"Bearer {service}", "Prefer": "return=representation"},
        timeout=30,
    )
    diego = rest.get("/staff", params={"email": "eq.diego.alvarez@wexlot.demo"}).json()[0]
    mine = {"owner_id": f"eq.{diego['id']}", "limit": "1"}
    deal = rest.get("/deals", params={**mine, "stage": "eq.negotiation"}).json()[0]
    contact = rest.get("/contacts", params={**mine, "visibility": "eq.team"}).json()[0]
    target = rest.get("/deals", params={**mine, "stage": "eq.proposal"}).json()[0]

    desk = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # for wait_for_function
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, bypass_csp=True)
    try:
        priya, rep = desk.new_page(), phone.new_page()
        sign_in(priya, url, "priya.shah@wexlot.demo", "/dashboard")
        sign_in(rep, url, "diego.alvarez@wexlot.demo", "/pipeline")

        # Diego wins his deal from the phone; Priya's won-this-month figure moves on her dashboard.
        won = priya.locator("[data-figure='won-count-this-month']").first
        before = won.get_attribute("data-value")
        card = rep.locator(f"li.deal-card[data-id='{deal['id']}']")
        card.scroll_into_view_if_needed()
        card.get_by_label(f"Stage of {deal['title']}").select_option("won")
        rep.wait_for_function(
            "([id]) => document.querySelector(`li.deal-card[data-id='${id}']`)?.dataset.stage === 'won'",
            arg=[deal["id"]],
        )
        priya.wait_for_function(
            "([v]) => document.querySelector(\"[data-figure='won-count-this-month']\")?.dataset.value !== v",
            arg=[before],
        )
        rep.locator(f"li.deal-card[data-id='{deal['id']}']").scroll_into_view_if_needed()
        shot(rep, "pipeline-phone")
        priya.evaluate("window.scrollTo(0, 0)")
        shot(priya, "dashboard", full_page=True)

        # Both on the same contact: each sees the other there.
        priya.goto(f"{url}/contacts/{contact['id']}")
        rep.goto(f"{url}/contacts/{contact['id']}")
        priya.wait_for_selector("[data-testid=presence]:not([hidden])", timeout=WAIT_MS)
        shot(priya, "record-page", full_page=True)

        # Both edit the same deal; Diego saves first, Priya's save shows the conflict.
        priya.goto(f"{url}/deals/{target['id']}")
        rep.goto(f"{url}/deals/{target['id']}")
        for page in (priya, rep):
            ready(page)
            page.get_by_role("button", name="Edit", exact=True).click()
        rep_form = rep.get_by_role("dialog")
        rep_form.get_by_label("Amount").fill(str(round(float(target["amount"]) * 1.1, 2)))
        rep_form.get_by_role("button", name="Save changes").click()
        rep_form.wait_for(state="detached", timeout=WAIT_MS)
        form = priya.get_by_role("dialog")
        form.get_by_label("Amount").fill(str(round(float(target["amount"]) * 0.9, 2)))
        form.get_by_label("Probability (%)").fill("70")
        form.get_by_role("button", name="Save changes").click()
        form.locator("fieldset.conflict-choice").wait_for(timeout=WAIT_MS)
        shot(priya, "edit-conflict")
        form.get_by_role("button", name="Cancel").click()
    finally:
        desk.close()
        phone.close()

    admin = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    try:
        page = admin.new_page()
        sign_in(page, url, "admin@wexlot.demo", "/settings")
        shot(page, "realtime-settings")
        page.goto(f"{url}/status")
        ready(page)
        page.get_by_role("button", name="Measure round trip").click()
        page.wait_for_timeout(1500)
        shot(page, "status", full_page=True)
    finally:
        admin.close()


def main() -> int:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="wexlot-screenshots-"))
    try:
        data = root / "data"
        url = f"sqlite:///{data / 'wexlot.db'}"
        with LiveServer(data, url, extra_args=["--demo"], startup_timeout=180) as server:
            service = keys(data, url)["service_role_key"]
            with sync_playwright() as playwright:
                browser = chromium.launch(playwright)
                try:
                    story(server.url, service, browser)
                finally:
                    browser.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
