"""GET/HEAD on /rest/v1: select, embedding, filters, ordering, paging, counts, aggregates."""

from __future__ import annotations

from typing import Any

import pytest

from support.crm import OBJECT, seed


@pytest.fixture
def data(rest: Any) -> dict[str, Any]:
    return seed(rest)


def names(resp: Any, key: str = "first_name") -> list[Any]:
    assert resp.status_code in (200, 206), resp.text
    return [r[key] for r in resp.json()]


def test_select_columns_alias_and_cast(rest: Any, data: dict[str, Any]) -> None:
    r = rest.get("deals?select=title,money:amount,probability::text&title=eq.Big", rest.service)
    assert r.json() == [{"title": "Big", "money": 125000.5, "probability": "60"}]


def test_embed_many_to_one_and_one_to_many(rest: Any, data: dict[str, Any]) -> None:
    r = rest.get("contacts?select=first_name,company:companies(name)&order=first_name", rest.service)
    assert r.json()[:2] == [
        {"first_name": "Ann", "company": {"name": "Acme"}},
        {"first_name": "Bob", "company": {"name": "Acme"}},
    ]
    assert {"first_name": "Eve", "company": None} in r.json()
    r = rest.get("companies?select=name,contacts(first_name)&contacts.order=first_name.desc&order=name", rest.service)
    assert r.json()[0] == {
        "name": "Acme",
        "contacts": [{"first_name": "Cid"}, {"first_name": "Bob"}, {"first_name": "Ann"}],
    }
    r = rest.get("companies?select=name,contacts(first_name)&contacts.limit=1&contacts.order=first_name&name=eq.Acme",
                 rest.service)  # fmt: skip
    assert r.json() == [{"name": "Acme", "contacts": [{"first_name": "Ann"}]}]


def test_embed_nested_and_star(rest: Any, data: dict[str, Any]) -> None:
    r = rest.get("deals?select=*,contact:contacts(first_name,company:companies(name))&title=eq.Big", rest.service)
    deal = r.json()[0]
    assert deal["contact"] == {"first_name": "Ann", "company": {"name": "Acme"}}
    assert deal["amount"] == 125000.5 and deal["stage"] == "proposal" and deal["version"] == 1


def test_inner_embed_filters_parents(rest: Any, data: dict[str, Any]) -> None:
    r = rest.get("contacts?select=first_name,companies!inner(name)&companies.name=eq.Beta", rest.service)
    assert r.json() == [{"first_name": "Dan", "companies": {"name": "Beta"}}]
    # Without !inner the embed is emptied, not the parent.
    r = rest.get("contacts?select=first_name,companies(name)&companies.name=eq.Beta&order=first_name", rest.service)
    assert len(r.json()) == 5 and r.json()[0] == {"first_name": "Ann", "companies": None}


def test_ambiguous_and_unknown_embeds(rest: Any, data: dict[str, Any]) -> None:
    r = rest.get("deals?select=title,staff(full_name)", rest.service)
    assert r.status_code == 300 and r.json()["code"] == "PGRST201"
    r = rest.get("deals?select=title,owner:staff!owner_id(full_name)&title=eq.Big", rest.service)
    assert r.json() == [{"title": "Big", "owner": {"full_name": data["owner_name"]}}]
    r = rest.get("deals?select=title,platforms(name)", rest.service)
    assert r.status_code == 400 and r.json()["code"] == "PGRST200"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("first_name=eq.Ann", ["Ann"]),
        ("first_name=neq.Ann", ["Bob", "Cid", "Dan", "Eve"]),
        ("first_name=gt.Cid", ["Dan", "Eve"]),
        ("first_name=gte.Cid", ["Cid", "Dan", "Eve"]),
        ("first_name=lt.Bob", ["Ann"]),
        ("first_name=lte.Bob", ["Ann", "Bob"]),
        ("email=like.*@acme.io", ["Ann", "Bob"]),
        ("email=like.*@ACME.io", []),
        ("email=ilike.*@ACME.IO", ["Ann", "Bob"]),
        ("email=is.null", ["Cid", "Eve"]),
        ("email=not.is.null", ["Ann", "Bob", "Dan"]),
        ("first_name=in.(Ann,Eve,Zed)", ["Ann", "Eve"]),
        ("first_name=not.in.(Ann,Eve)", ["Bob", "Cid", "Dan"]),
        ("tags=cs.{vip}", ["Ann", "Dan"]),
        ("tags=cs.{vip,west}", ["Ann"]),
        ("tags=cd.{vip,west,east}", ["Ann", "Bob", "Cid", "Dan", "Eve"]),
        ("tags=ov.{east}", ["Dan"]),
        ("or=(first_name.eq.Ann,first_name.eq.Eve)", ["Ann", "Eve"]),
        ("or=(first_name.eq.Ann,and(email.is.null,first_name.gt.Cid))", ["Ann", "Eve"]),
        ("not.or=(first_name.eq.Ann,first_name.eq.Eve)", ["Bob", "Cid", "Dan"]),
        ("and=(status.eq.customer,or(first_name.eq.Ann,first_name.eq.Dan))", ["Ann"]),
        ('or=(last_name.eq."Smith, Jr.",first_name.eq.Bob)', ["Bob", "Cid"]),
        ("first_name=match.^[AB]", ["Ann", "Bob"]),
        ("first_name=eq(any).{Ann,Bob}", ["Ann", "Bob"]),
        ("first_name=like(all).{*a*,D*}", ["Dan"]),
        ("status=eq.customer&first_name=neq.Ann", []),
        ("notes=wfts.quick fox", ["Cid"]),
    ],
)
def test_filters(rest: Any, data: dict[str, Any], query: str, expected: list[str]) -> None:
    r = rest.get(f"contacts?select=first_name&{query}&order=first_name", rest.service)
    assert names(r) == expected


def test_filter_on_typed_columns(rest: Any, data: dict[str, Any]) -> None:
    assert names(rest.get("deals?select=title&amount=gt.1000&order=title", rest.service), "title") == ["Big", "Won"]
    assert names(rest.get("deals?select=title&amount=eq.999.99", rest.service), "title") == ["Small"]
    assert names(rest.get(f"deals?select=title&contact_id=eq.{data['ann']}", rest.service), "title") == ["Big"]
    r = rest.get(
        "deals?select=title&created_at=gt.2000-01-01T00:00:00Z&expected_close_date=lt.2100-01-01", rest.service
    )
    assert len(r.json()) == 1
    assert names(rest.get("activities?select=subject&completed=is.true", rest.service), "subject") == ["Done"]


def test_order_nulls_limit_offset_and_range(rest: Any, data: dict[str, Any]) -> None:
    assert names(rest.get("contacts?select=first_name&order=email.asc.nullsfirst,first_name", rest.service))[:2] == [
        "Cid",
        "Eve",
    ]
    assert (
        names(rest.get("contacts?select=first_name&order=email.desc.nullslast,first_name", rest.service))[-1] == "Eve"
    )
    assert names(rest.get("contacts?select=first_name&order=first_name&limit=2&offset=1", rest.service)) == [
        "Bob",
        "Cid",
    ]
    r = rest.get("contacts?select=first_name&order=first_name", rest.service, headers={"Range": "3-4"})
    assert names(r) == ["Dan", "Eve"]


def test_count_content_range_and_head(rest: Any, data: dict[str, Any]) -> None:
    r = rest.get("contacts?select=first_name&order=first_name&limit=2", rest.service, headers={"Prefer": "count=exact"})
    assert r.status_code == 206 and r.headers["content-range"] == "0-1/5"
    r = rest.get("contacts?select=*", rest.service, headers={"Prefer": "count=planned"})
    assert r.status_code == 200 and r.headers["content-range"] == "0-4/5"
    r = rest.request("HEAD", "contacts?select=*&first_name=eq.Nobody", rest.service, headers={"Prefer": "count=exact"})
    assert r.status_code == 200 and r.headers["content-range"] == "*/0" and r.content == b""
    r = rest.get("contacts?select=*&offset=10", rest.service, headers={"Prefer": "count=exact"})
    assert r.status_code == 416 and r.json()["code"] == "PGRST103"
    assert rest.get("contacts?select=*", rest.service).headers["content-range"] == "0-4/*"


def test_single_object(rest: Any, data: dict[str, Any]) -> None:
    r = rest.get("contacts?select=first_name&first_name=eq.Ann", rest.service, headers={"Accept": OBJECT})
    assert r.status_code == 200 and r.json() == {"first_name": "Ann"}
    assert r.headers["content-type"].startswith("application/vnd.pgrst.object+json")
    for query in ("first_name=eq.Nobody", "status=eq.lead"):
        r = rest.get(f"contacts?select=first_name&{query}", rest.service, headers={"Accept": OBJECT})
        assert r.status_code == 406 and r.json()["code"] == "PGRST116"


def test_aggregates(rest: Any, data: dict[str, Any]) -> None:
    r = rest.get("deals?select=stage,amount.sum(),count()&order=stage", rest.service)
    assert r.json() == [
        {"stage": "lead", "sum": 999.99, "count": 1},
        {"stage": "proposal", "sum": 125000.5, "count": 1},
        {"stage": "won", "sum": 5000, "count": 1},
    ]
    r = rest.get("deals?select=total:amount.sum(),n:count(),top:amount.max()", rest.service)
    assert r.json() == [{"total": 131000.49, "n": 3, "top": 125000.5}]
    r = rest.get("deals?select=amount.avg()&stage=eq.won", rest.service)
    assert r.json() == [{"avg": 5000}]


def test_values_are_the_same_json_on_both_backends(rest: Any, data: dict[str, Any]) -> None:
    deal = rest.get("deals?select=*&title=eq.Won", rest.service).json()[0]
    assert deal["amount"] == 5000 and deal["currency"] == "EUR"
    assert deal["expected_close_date"] == "2026-12-31"
    assert deal["closed_at"].endswith("+00:00") and "T" in deal["closed_at"]
    contact = rest.get("contacts?select=*&first_name=eq.Ann", rest.service).json()[0]
    assert contact["tags"] == ["vip", "west"]
    assert len(contact["id"]) == 36 and contact["created_at"].endswith("+00:00")


def test_imatch_is_case_insensitive_and_csv_output(rest: Any, data: dict[str, Any]) -> None:
    assert names(rest.get("contacts?select=first_name&first_name=imatch.^[ab]&order=first_name", rest.service)) == [
        "Ann",
        "Bob",
    ]
    r = rest.get("contacts?select=first_name,tags&first_name=in.(Ann,Bob)&order=first_name", rest.service,
                 headers={"Accept": "text/csv"})  # fmt: skip
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text == 'first_name,tags\nAnn,"[""vip"", ""west""]"\nBob,[]\n'
