"""Debian's headless Chromium for Playwright, and the CRM's sign-in, shared by the browser tests, bench/browser.py
and scripts/screenshots.py (Playwright never downloads a browser here: ./scripts/test installs the Debian package)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
READY_MS = 30_000


def launch(playwright: Any) -> Any:
    """A headless Chromium browser (the caller closes it)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def sign_in(page: Any, url: str, email: str, password: str, path: str) -> None:
    """Signs in from the page at ``path`` and waits until realtime is live and the page's data has loaded."""
    page.goto(url + path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#connection[data-state='live']", timeout=READY_MS)
    page.wait_for_function("!document.querySelector(\"main section[data-state='loading']\")", timeout=READY_MS)
