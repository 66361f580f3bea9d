"""CSV on the list pages: import (file → column matching → checked preview → one all-or-nothing insert)
and export (the list as searched, all pages, readable names next to ids, RFC 4180 quoting)."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, expect

from conftest import DEMO, CrmServer, Machine

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

LIVE_MS = 30_000  # 500 rows arriving on another machine


def csv_bytes(header: list[str], rows: list[list[str]], *, bom: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode()


def open_import(machine: Machine, title: str = "contacts") -> Locator:
    machine.page.get_by_role("button", name="Import CSV").click()
    dialog = machine.page.get_by_role("dialog", name=f"Import {title}")
    expect(dialog.get_by_role("heading", name="Step 1 of 3")).to_be_visible()
    expect(dialog.get_by_label("CSV file")).to_be_focused()
    return dialog


def choose_file(dialog: Locator, name: str, content: bytes) -> None:
    dialog.get_by_label("CSV file").set_input_files(files=[{"name": name, "mimeType": "text/csv", "buffer": content}])
    dialog.get_by_role("button", name="Next: match columns").click()
    expect(dialog.get_by_role("heading", name="Step 2 of 3")).to_be_visible()


def check_rows(dialog: Locator) -> Locator:
    dialog.get_by_role("button", name="Next: check rows").click()
    expect(dialog.get_by_role("heading", name="Step 3 of 3")).to_be_visible()
    return dialog.locator(".csv-summary")


def rows_with(crm: CrmServer, table: str, column: str, marker: str) -> list[dict[str, Any]]:
    return crm.rest("GET", table, params={column: f"like.*{marker}*", "order": "created_at.asc,id.asc"})


def test_import_500_contacts_arrives_on_another_machine(crm: CrmServer, machines: Any) -> None:
    marker = f"Imp{uuid.uuid4().hex[:6]}"
    statuses = ["lead", "Prospect", "customer", "CHURNED", ""]
    content = csv_bytes(
        ["first_name", "last_name", "email", "status", "tags"],
        [
            [f"Person{i:03d}", f"{marker} Row{i:03d}", f"p{i}@{marker.lower()}.example", statuses[i % 5], "csv, bulk"]
            for i in range(500)
        ],
    )
    a, b = machines("A"), machines("B")
    a.sign_in(DEMO["manager"])
    b.sign_in(DEMO["diego"])
    b.page.evaluate("window.__noReload = 'still here'")
    before = b.count()

    dialog = open_import(a)
    choose_file(dialog, "people.csv", content)
    for column in ("first_name", "last_name", "email", "status", "tags"):  # matched by field name
        expect(dialog.get_by_label(f"Column “{column}”")).to_have_value(column)
    summary = check_rows(dialog)
    expect(summary).to_contain_text("500 valid, 0 with errors")
    expect(dialog.locator(".csv-problems")).to_have_count(0)
    dialog.get_by_role("button", name="Import 500 contacts").click()
    expect(dialog).to_have_count(0, timeout=LIVE_MS)
    expect(a.page.locator("#notices")).to_contain_text("500 contacts imported")

    # B: the rows arrive live; the count rises by exactly 500 and they are searchable.
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", str(before + 500), timeout=LIVE_MS)
    b.page.get_by_label("Search contacts").fill(marker)
    expect(b.page.locator("[data-testid=count]")).to_have_attribute("data-total", "500")
    b.page.get_by_label("Search contacts").fill(f"{marker} Row123")
    expect(b.row(f"Person123 {marker} Row123")).to_have_count(1)
    assert b.page.evaluate("window.__noReload") == "still here"

    stored = rows_with(crm, "contacts", "last_name", marker)
    assert len(stored) == 500
    by_name = {r["first_name"]: r for r in stored}
    assert by_name["Person001"]["status"] == "prospect" and by_name["Person003"]["status"] == "churned"
    assert by_name["Person004"]["status"] == "lead"  # blank → the default
    assert by_name["Person007"]["tags"] == ["csv", "bulk"]
    assert {r["visibility"] for r in stored} == {"team"}
    priya = crm.rest("GET", "staff", params={"email": f"eq.{DEMO['manager'].email}"})[0]
    assert {r["owner_id"] for r in stored} == {priya["id"]}
    assert not [line for line in a.console + b.console if line.startswith("[pageerror]")]


def test_invalid_row_blocks_the_import_and_nothing_is_written(crm: CrmServer, machines: Any) -> None:
    marker = f"Bad{uuid.uuid4().hex[:6]}"
    content = csv_bytes(
        ["First name", "Last name", "Email", "Status"],
        [
            ["Ann", f"{marker} One", "ann@bad.example", "lead"],
            ["Ben", f"{marker} Two", "ben@bad.example", "customer"],
            ["Cat", f"{marker} Three", "not-an-email", "customer"],
            ["Dee", f"{marker} Four", "dee@bad.example", "lead"],
        ],
    )
    a = machines("A")
    a.sign_in(DEMO["diego"])  # a rep may import too (and becomes the owner)
    before = a.count()
    dialog = open_import(a)
    choose_file(dialog, "bad.csv", content)
    expect(dialog.get_by_label("Column “Email”")).to_have_value("email")
    summary = check_rows(dialog)
    expect(summary).to_contain_text("3 valid, 1 with errors")
    problem = dialog.locator(".csv-problems tbody tr")
    expect(problem).to_have_count(1)
    expect(problem).to_have_attribute("data-row", "4")  # the header is row 1
    expect(problem).to_have_attribute("data-field", "email")
    expect(problem.locator("td").nth(0)).to_have_text("4")
    expect(problem.locator("td").nth(1)).to_have_text("Email")
    expect(problem.locator("td").nth(2)).to_contain_text("“not-an-email” is not an email address")
    import_button = dialog.get_by_role("button", name="Import 3 contacts")
    expect(import_button).to_be_disabled()
    a.screenshot("csv-import-preview", crm.backend)
    # Even a forced submit (the disabled button clicked from script) writes nothing and stays on the preview.
    import_button.evaluate("(button) => button.closest('form').requestSubmit()")
    a.page.wait_for_timeout(500)  # long enough for an insert to have been sent, were the guard missing
    expect(problem).to_have_count(1)
    assert rows_with(crm, "contacts", "last_name", marker) == []

    # Ignoring the bad column makes every row valid; then all four are imported, without emails.
    dialog.get_by_role("button", name="Back").click()
    dialog.get_by_label("Column “Email”").select_option("")
    expect(check_rows(dialog)).to_contain_text("4 valid, 0 with errors")
    dialog.get_by_role("button", name="Import 4 contacts").click()
    expect(dialog).to_have_count(0)
    expect(a.page.locator("#notices")).to_contain_text("4 contacts imported")
    stored = rows_with(crm, "contacts", "last_name", marker)
    assert sorted(r["first_name"] for r in stored) == ["Ann", "Ben", "Cat", "Dee"]
    assert {r["email"] for r in stored} == {None}
    diego = crm.rest("GET", "staff", params={"email": f"eq.{DEMO['diego'].email}"})[0]
    assert {r["owner_id"] for r in stored} == {diego["id"]}
    expect(a.page.locator("[data-testid=count]")).to_have_attribute("data-total", str(before + 4))


def test_column_matching_and_company_resolution(crm: CrmServer, machines: Any) -> None:
    marker = f"Map{uuid.uuid4().hex[:6]}"
    company = crm.rest("POST", "companies", json={"name": f"Acme {marker}, Ltd", "visibility": "team"})[0]
    notes = 'Says "hi", often\nsecond line'
    content = csv_bytes(
        ["Given name", "Surname", "E-mail", "Company", "Remarks", "Shoe size"],
        [
            ["Grace", f"{marker} Hopper", "grace@map.example", f"acme {marker}, ltd", notes, "38"],
            ["Alan", f"{marker} Turing", "alan@map.example", "", "", "44"],
            ["Bad", f"{marker} Company", "bad@map.example", "No Such Company Inc", "", ""],
        ],
        bom=True,
    )
    a = machines("A")
    a.sign_in(DEMO["manager"])
    dialog = open_import(a)
    choose_file(dialog, "mapping.csv", content)
    expect(dialog.get_by_label("Column “Given name”")).to_have_value("first_name")
    expect(dialog.get_by_label("Column “Surname”")).to_have_value("last_name")
    expect(dialog.get_by_label("Column “E-mail”")).to_have_value("email")
    expect(dialog.get_by_label("Column “Company”")).to_have_value("company_id")
    expect(dialog.get_by_label("Column “Remarks”")).to_have_value("")  # not matched: ignored unless chosen
    expect(dialog.get_by_label("Column “Shoe size”")).to_have_value("")
    dialog.get_by_label("Column “Remarks”").select_option("notes")

    # The first name is required: the mapping step says so instead of going on.
    dialog.get_by_label("Column “Given name”").select_option("")
    dialog.get_by_role("button", name="Next: check rows").click()
    expect(dialog.get_by_role("alert")).to_contain_text("First name")
    dialog.get_by_label("Column “Given name”").select_option("first_name")

    expect(check_rows(dialog)).to_contain_text("2 valid, 1 with errors")
    problem = dialog.locator(".csv-problems tbody tr")
    expect(problem).to_have_attribute("data-row", "4")
    expect(problem).to_have_attribute("data-field", "company_id")
    expect(problem).to_contain_text("No company named “No Such Company Inc”")
    expect(dialog.locator(".csv-preview")).to_contain_text(f"Acme {marker}, Ltd")  # resolved, shown by name

    # Fix the file and choose it again: the column matching is kept.
    fixed = content.replace(b"No Such Company Inc", f'"{company["name"]}"'.encode())
    dialog.get_by_role("button", name="Back").click()
    dialog.get_by_role("button", name="Back").click()
    choose_file(dialog, "mapping.csv", fixed)
    expect(dialog.get_by_label("Column “Remarks”")).to_have_value("notes")
    expect(check_rows(dialog)).to_contain_text("3 valid, 0 with errors")
    dialog.get_by_role("button", name="Import 3 contacts").click()
    expect(dialog).to_have_count(0)

    stored = {r["first_name"]: r for r in rows_with(crm, "contacts", "last_name", marker)}
    assert set(stored) == {"Grace", "Alan", "Bad"}
    assert stored["Grace"]["company_id"] == company["id"]
    assert stored["Bad"]["company_id"] == company["id"]
    assert stored["Alan"]["company_id"] is None
    assert stored["Grace"]["email"] == "grace@map.example"
    assert stored["Grace"]["notes"] == notes.replace("\n", "\r\n") or stored["Grace"]["notes"] == notes
    assert stored["Alan"]["notes"] is None
    expect(a.row(f"Grace {marker} Hopper").locator("td[data-col='company_id']")).to_have_text(company["name"])


def test_companies_import_with_owner(crm: CrmServer, machines: Any) -> None:
    marker = f"Co{uuid.uuid4().hex[:6]}"
    content = csv_bytes(
        ["Company name", "Website", "Owner", "Visibility"],
        [
            [f"{marker} Alpha", "https://alpha.example", DEMO["diego"].email, ""],
            [f"{marker} Beta", "", DEMO["manager"].name, "private"],
            [f"{marker} Gamma", "", "", "Team"],
        ],
    )
    a = machines("A")
    a.sign_in(DEMO["admin"], path="/companies")
    dialog = open_import(a, "companies")
    dialog.get_by_label("Or paste CSV text").fill(content.decode())  # pasted instead of a file
    dialog.get_by_role("button", name="Next: match columns").click()
    expect(dialog.get_by_role("heading", name="Step 2 of 3")).to_be_visible()
    expect(dialog.get_by_label("Column “Company name”")).to_have_value("name")
    expect(dialog.get_by_label("Column “Owner”")).to_have_value("owner_id")
    expect(check_rows(dialog)).to_contain_text("3 valid, 0 with errors")
    dialog.get_by_role("button", name="Import 3 companies").click()
    expect(dialog).to_have_count(0)
    expect(a.page.locator("#notices")).to_contain_text("3 companies imported")

    staff = {s["email"]: s["id"] for s in crm.rest("GET", "staff", params={"select": "id,email"})}
    stored = {r["name"]: r for r in rows_with(crm, "companies", "name", marker)}
    assert stored[f"{marker} Alpha"]["owner_id"] == staff[DEMO["diego"].email]
    assert stored[f"{marker} Alpha"]["website"] == "https://alpha.example"
    assert stored[f"{marker} Beta"]["owner_id"] == staff[DEMO["manager"].email]
    assert stored[f"{marker} Beta"]["visibility"] == "private"
    assert stored[f"{marker} Gamma"]["owner_id"] == staff[DEMO["admin"].email]  # blank: the importer
    assert stored[f"{marker} Gamma"]["visibility"] == "team"


def test_export_the_searched_list(crm: CrmServer, machines: Any, tmp_path: Path) -> None:
    marker = f"Exp{uuid.uuid4().hex[:6]}"
    company = crm.rest("POST", "companies", json={"name": f"Export {marker} Co", "visibility": "team"})[0]
    tricky = f'{marker} O"Brien, Jr'
    blank = {"company_id": None, "tags": [], "notes": None, "phone": None, "email": None}
    crm.rest("POST", "contacts", json=[
        {**blank, "first_name": "Quote", "last_name": tricky, "company_id": company["id"], "tags": ["a", "b"],
         "notes": "line one\nline two", "phone": "+1 555 0199"},
        {**blank, "first_name": "Plain", "last_name": f"{marker} Smith",
         "email": f"plain.{marker.lower()}@export.example"},
        {**blank, "first_name": "Formula", "last_name": f"{marker} Calc", "notes": "=1+2"},
    ] + [{**blank, "first_name": f"Many{i:02d}", "last_name": f"{marker} Many"} for i in range(40)])  # fmt: skip
    crm.rest("POST", "contacts", json={"first_name": "Other", "last_name": f"Not{marker[3:]} Included"})

    a = machines("A")
    a.sign_in(DEMO["manager"], path=f"/contacts?q={marker}")
    expect(a.page.locator("[data-testid=count]")).to_have_attribute("data-total", "43")
    with a.page.expect_download() as info:
        a.page.get_by_role("button", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("contacts-") and download.suggested_filename.endswith(".csv")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for spreadsheet apps
    assert b"\r\n" in raw
    exported = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))

    expected = crm.rest("GET", "contacts", params={
        "or": f"(first_name.ilike.*{marker}*,last_name.ilike.*{marker}*,email.ilike.*{marker}*)",
        "order": "updated_at.desc.nullsfirst,id.asc",
    })  # fmt: skip
    assert len(exported) == len(expected) == 43  # every page, not only the 25 shown
    assert {r["id"] for r in exported} == {r["id"] for r in expected}
    assert [r["id"] for r in exported] == [r["id"] for r in expected]  # the list's order
    quote = next(r for r in exported if r["first_name"] == "Quote")
    assert quote["last_name"] == tricky
    assert quote["notes"] == "line one\nline two"
    assert quote["tags"] == "a, b"
    assert quote["phone"] == "+1 555 0199"
    assert quote["company_id"] == company["id"] and quote["company"] == company["name"]
    assert quote["owner"] == "" and quote["owner_id"] == ""
    assert next(r for r in exported if r["first_name"] == "Formula")["notes"] == "'=1+2"  # defused for spreadsheets
    assert next(r for r in exported if r["first_name"] == "Plain")["email"] == f"plain.{marker.lower()}@export.example"
    assert f'"{tricky.replace(chr(34), chr(34) * 2)}"'.encode() in raw  # quoted, inner quote doubled
    expect(a.page.locator("#notices")).to_contain_text("Exported 43 contacts")
    expect(a.page.get_by_role("button", name="Export CSV")).to_be_enabled()  # still on the list
    assert a.page.url.endswith(f"/contacts?q={marker}")


def test_server_refusal_writes_nothing_and_is_shown(crm: CrmServer, machines: Any) -> None:
    """The company a row points to is deleted between the check and the import: the server refuses the
    whole insert (one transaction), the dialog says so and stays open, and no row was written."""
    marker = f"Ref{uuid.uuid4().hex[:6]}"
    company = crm.rest("POST", "companies", json={"name": f"Doomed {marker}", "visibility": "team"})[0]
    content = csv_bytes(
        ["first_name", "last_name", "company"],
        [["Una", f"{marker} Fine", ""], ["Vic", f"{marker} Linked", company["name"]]],
    )
    a = machines("A")
    a.sign_in(DEMO["manager"])
    dialog = open_import(a)
    choose_file(dialog, "refs.csv", content)
    expect(check_rows(dialog)).to_contain_text("2 valid, 0 with errors")
    crm.rest("DELETE", "companies", params={"id": f"eq.{company['id']}"})
    dialog.get_by_role("button", name="Import 2 contacts").click()
    alert = dialog.get_by_role("alert")
    expect(alert).to_contain_text("Nothing was imported. The server refused")
    if crm.backend == "postgres":  # PostgreSQL names the column and the value: the row is found
        expect(alert).to_contain_text("Row 3, Company: The chosen company no longer exists.")
    expect(dialog.get_by_role("button", name="Import 2 contacts")).to_be_enabled()
    assert rows_with(crm, "contacts", "last_name", marker) == []
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)


def test_import_dialog_fits_a_phone(crm: CrmServer, machines: Any) -> None:
    phone = machines("Phone", viewport={"width": 390, "height": 844})
    phone.sign_in(DEMO["manager"])
    dialog = open_import(phone)
    header = ["Given name", "Surname", "A very long column name that goes on and on", "Company", "Status"]
    choose_file(dialog, "wide.csv", csv_bytes(header, [["Wendy", "Wide", "x" * 120, "", "nonsense"]]))
    assert dialog.evaluate("(d) => d.scrollWidth <= d.clientWidth && d.getBoundingClientRect().right <= 390")
    check_rows(dialog)
    expect(dialog.locator(".csv-problems tbody tr")).to_have_count(1)
    assert dialog.evaluate("(d) => d.scrollWidth <= d.clientWidth && d.getBoundingClientRect().right <= 390")
    phone.screenshot("csv-import-phone", crm.backend, full_page=False)
    # Keyboard only: Escape closes the dialog.
    phone.page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
