"""Reference fields of tables too big to list whole: the form offers the first 1,000 and searches the rest.

Its own module (its own server): the 1,001 extra contacts would change what forms show in other tests.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from conftest import DEMO, CrmServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_reference_fields_of_big_tables_offer_a_search(crm: CrmServer, machines: Any) -> None:
    """Over 1,000 contacts: the form lists the first 1,000 by name and finds the others on the server."""
    tag = uuid.uuid4().hex[:8]
    crm.rest("POST", "contacts", json=[{"first_name": f"Bulk{i:04d}", "last_name": tag} for i in range(1001)])
    needle = crm.rest("POST", "contacts", json={"first_name": "Zelda", "last_name": f"Needle{tag}"})[0]
    a = machines("A")
    a.sign_in(DEMO["manager"], path=f"/deals?q={tag}")
    a.page.get_by_role("button", name="New deal").click()
    form = a.page.get_by_role("dialog", name="New deal")
    form.get_by_label("Title").fill(f"Found {tag}")
    contact = form.get_by_label("Contact", exact=True)
    expect(contact.locator("option", has_text=f"Zelda Needle{tag}")).to_have_count(0)  # beyond the first 1,000
    form.get_by_label("Find contact").fill(f"zelda needle{tag}")
    expect(contact.locator("option", has_text=f"Zelda Needle{tag}")).to_have_count(1)
    contact.select_option(label=f"Zelda Needle{tag}")
    form.get_by_role("button", name="Add deal").click()
    expect(form).to_have_count(0)
    saved = crm.rest("GET", "deals", params={"title": f"eq.Found {tag}"})[0]
    assert saved["contact_id"] == needle["id"]
    expect(a.row(f"Found {tag}")).to_have_count(1)
