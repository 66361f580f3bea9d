"""POST/PATCH/DELETE on /rest/v1: inserts, bulk, upserts, updates, deletes, bookkeeping and atomicity."""

from __future__ import annotations

from typing import Any

from support.crm import OBJECT

REPR = {"Prefer": "return=representation"}


def test_insert_minimal_and_representation(rest: Any) -> None:
    r = rest.post("companies", {"name": "Acme"}, rest.service)
    assert r.status_code == 201 and r.content == b""
    r = rest.post("companies?select=name,visibility,version", {"name": "Beta"}, rest.service,
                  headers={**REPR, "Accept": OBJECT})  # fmt: skip
    assert r.status_code == 201 and r.json() == {"name": "Beta", "visibility": "team", "version": 1}


def test_bulk_insert_with_columns_and_missing_default(rest: Any) -> None:
    r = rest.post('contacts?columns="first_name","status"&select=first_name,status', [
        {"first_name": "A", "status": "customer"}, {"first_name": "B"}], rest.service, headers=REPR)  # fmt: skip
    # Without missing=default a key absent from one object is NULL, which status does not allow.
    assert r.status_code == 400 and r.json()["code"] == "23502"
    r = rest.post('contacts?columns="first_name","status"&select=first_name,status', [
        {"first_name": "A", "status": "customer"}, {"first_name": "B"}], rest.service,
        headers={"Prefer": "return=representation,missing=default"})  # fmt: skip
    assert r.status_code == 201
    assert r.json() == [{"first_name": "A", "status": "customer"}, {"first_name": "B", "status": "lead"}]


def test_bulk_insert_keeps_order_and_is_atomic(rest: Any) -> None:
    rows = [{"first_name": f"P{i:03}", "status": "lead"} for i in range(300)]
    r = rest.post("contacts?select=first_name", rows, rest.service, headers=REPR)
    assert [x["first_name"] for x in r.json()] == [x["first_name"] for x in rows]
    bad = [{"first_name": "ok", "status": "lead"}, {"first_name": "bad", "status": "nonsense"}]
    r = rest.post("contacts", bad, rest.service)
    assert r.status_code == 400 and r.json()["code"] == "23514"
    assert rest.get("contacts?select=id&first_name=eq.ok", rest.service).json() == []


def test_server_managed_columns_are_ignored(rest: Any) -> None:
    admin = rest.login("admin")
    r = rest.post("companies?select=*", {"name": "X", "version": 99, "updated_by": admin.staff_id,
                                         "created_at": "2000-01-01T00:00:00Z"}, admin.token, headers=REPR)  # fmt: skip
    row = r.json()[0]
    assert row["version"] == 1 and row["created_at"] > "2020" and row["updated_by"] == admin.staff_id
    r = rest.patch(f"companies?id=eq.{row['id']}&select=version,updated_by,updated_at", {"name": "Y", "version": 7},
                   admin.token, headers=REPR)  # fmt: skip
    assert r.json()[0]["version"] == 2 and r.json()[0]["updated_by"] == admin.staff_id
    assert r.json()[0]["updated_at"] >= row["updated_at"]
    # A service_role write is not a staff member's: updated_by is NULL.
    r = rest.patch(f"companies?id=eq.{row['id']}&select=version,updated_by", {"name": "Z"}, rest.service, headers=REPR)
    assert r.json() == [{"version": 3, "updated_by": None}]


def test_conditional_update_on_version(rest: Any) -> None:
    (row,) = rest.insert("contacts", {"first_name": "V"})
    ok = rest.patch(f"contacts?id=eq.{row['id']}&version=eq.1&select=version", {"last_name": "1"}, rest.service,
                    headers=REPR)  # fmt: skip
    stale = rest.patch(f"contacts?id=eq.{row['id']}&version=eq.1&select=version", {"last_name": "2"}, rest.service,
                       headers=REPR)  # fmt: skip
    assert ok.json() == [{"version": 2}] and stale.json() == []


def test_upsert_merge_and_ignore(rest: Any) -> None:
    (p,) = rest.insert("platforms", {"name": "Email", "kind": "email"})
    r = rest.post("platforms?on_conflict=name&select=name,kind,version", [{"name": "Email", "kind": "mail"},
                  {"name": "Phone", "kind": "phone"}], rest.service,
                  headers={"Prefer": "resolution=merge-duplicates, return=representation"})  # fmt: skip
    assert r.status_code == 201
    assert r.json() == [
        {"name": "Email", "kind": "mail", "version": 2},
        {"name": "Phone", "kind": "phone", "version": 1},
    ]
    rows = [{"name": "Email", "kind": "x"}, {"name": "Chat", "kind": "chat"}]
    r = rest.post("platforms?on_conflict=name&select=name", rows, rest.service,
                  headers={"Prefer": "resolution=ignore-duplicates,return=representation"})  # fmt: skip
    assert r.json() == [{"name": "Chat"}]
    assert rest.get("platforms?select=kind&name=eq.Email", rest.service).json() == [{"kind": "mail"}]
    r = rest.post("platforms?select=name,version", {"id": p["id"], "name": "E-mail"}, rest.service,
                  headers={"Prefer": "resolution=merge-duplicates,return=representation"})  # fmt: skip
    assert r.status_code == 200 and r.json() == [{"name": "E-mail", "version": 3}]
    r = rest.post("platforms?on_conflict=kind", {"name": "Q", "kind": "x"}, rest.service,
                  headers={"Prefer": "resolution=merge-duplicates"})  # fmt: skip
    assert r.status_code == 400 and r.json()["code"] == "42P10"


def test_update_and_delete_need_filters(rest: Any) -> None:
    rest.insert("contacts", {"first_name": "K"})
    for r in (rest.patch("contacts", {"last_name": "x"}, rest.service), rest.delete("contacts", rest.service)):
        assert r.status_code == 400 and r.json()["code"] == "21000"
    assert rest.get("contacts?select=last_name", rest.service).json() == [{"last_name": None}]


def test_update_and_delete_statuses(rest: Any) -> None:
    rest.insert("contacts", [{"first_name": "D1"}, {"first_name": "D2"}])
    r = rest.patch("contacts?first_name=like.D*", {"status": "customer"}, rest.service,
                   headers={"Prefer": "count=exact"})  # fmt: skip
    assert r.status_code == 204 and r.headers["content-range"] == "0-1/2"
    r = rest.delete("contacts?first_name=eq.D1&select=first_name", rest.service, headers=REPR)
    assert r.status_code == 200 and r.json() == [{"first_name": "D1"}]
    r = rest.delete("contacts?first_name=eq.D2", rest.service)
    assert r.status_code == 204
    r = rest.delete("contacts?first_name=eq.Nobody", rest.service, headers={"Accept": OBJECT, **REPR})
    assert r.status_code == 406 and r.json()["code"] == "PGRST116"


def test_single_object_write_rolls_back_when_not_one_row(rest: Any) -> None:
    rest.insert("contacts", [{"first_name": "S"}, {"first_name": "S"}])
    r = rest.patch("contacts?first_name=eq.S&select=*", {"last_name": "T"}, rest.service,
                   headers={**REPR, "Accept": OBJECT})  # fmt: skip
    assert r.status_code == 406
    assert rest.get("contacts?select=last_name", rest.service).json() == [{"last_name": None}] * 2


def test_deal_closed_at_and_activity_completed_at_rules(rest: Any) -> None:
    (deal,) = rest.insert("deals", {"title": "D", "amount": 10})
    assert deal["closed_at"] is None
    won = rest.patch(f"deals?id=eq.{deal['id']}&select=closed_at", {"stage": "won"}, rest.service, headers=REPR).json()
    assert won[0]["closed_at"] is not None
    again = rest.patch(f"deals?id=eq.{deal['id']}&select=closed_at", {"stage": "won", "title": "D2"}, rest.service,
                       headers=REPR).json()  # fmt: skip
    assert again == won
    reopened = rest.patch(f"deals?id=eq.{deal['id']}&select=closed_at", {"stage": "proposal"}, rest.service,
                          headers=REPR).json()  # fmt: skip
    assert reopened == [{"closed_at": None}]
    (act,) = rest.insert("activities", {"subject": "Call back", "type": "call"})
    done = rest.patch(f"activities?id=eq.{act['id']}&select=completed_at", {"completed": True}, rest.service,
                      headers=REPR).json()  # fmt: skip
    assert done[0]["completed_at"] is not None
    undone = rest.patch(f"activities?id=eq.{act['id']}&select=completed_at", {"completed": False}, rest.service,
                        headers=REPR).json()  # fmt: skip
    assert undone == [{"completed_at": None}]


def test_amount_is_exact(rest: Any) -> None:
    rest.insert(
        "deals",
        [{"title": f"d{i}", "amount": "0.10"} for i in range(10)] + [{"title": "big", "amount": "9999999999.99"}],
    )
    r = rest.get("deals?select=amount.sum()", rest.service)
    assert r.json() == [{"sum": 10000000000.99}]
    r = rest.post("deals", {"title": "x", "amount": "1e13"}, rest.service)
    assert r.status_code == 400 and r.json()["code"] == "22003"


def test_delete_rules_through_rest(rest: Any) -> None:
    (company,) = rest.insert("companies", {"name": "Gone"})
    (contact,) = rest.insert("contacts", {"first_name": "C", "company_id": company["id"]})
    rest.insert("interactions", {"contact_id": contact["id"], "kind": "call", "direction": "inbound"})
    assert rest.delete(f"companies?id=eq.{company['id']}", rest.service).status_code == 204
    assert rest.get("contacts?select=company_id,version", rest.service).json() == [{"company_id": None, "version": 2}]
    assert rest.delete(f"contacts?id=eq.{contact['id']}", rest.service).status_code == 204
    assert rest.get("interactions?select=id", rest.service).json() == []
    admin = rest.login("admin")
    rest.insert("companies", {"name": "Owned", "owner_id": admin.staff_id})
    r = rest.delete(f"staff?id=eq.{admin.staff_id}&select=id", rest.service, headers=REPR)
    assert r.json() == []  # deactivated instead of deleted
    assert rest.get(f"staff?id=eq.{admin.staff_id}&select=is_active", rest.service).json() == [{"is_active": False}]
