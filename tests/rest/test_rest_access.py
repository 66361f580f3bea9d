"""Access rules through REST: hidden rows are absent, forbidden writes are 42501, roles come from staff."""

from __future__ import annotations

from typing import Any

import pytest

from support.crm import OBJECT

REPR = {"Prefer": "return=representation"}


@pytest.fixture
def team(rest: Any) -> dict[str, Any]:
    rep_a, rep_b = rest.login("rep"), rest.login("rep")
    manager, admin = rest.login("manager"), rest.login("admin")
    private_deal, team_deal = rest.insert("deals", [
        {"title": "A private", "amount": 1, "owner_id": rep_a.staff_id, "visibility": "private"},
        {"title": "A team", "amount": 2, "owner_id": rep_a.staff_id, "visibility": "team"},
    ])  # fmt: skip
    (secret_company,) = rest.insert(
        "companies", {"name": "Secret", "owner_id": rep_a.staff_id, "visibility": "private"}
    )
    (contact,) = rest.insert("contacts", {"first_name": "Pat", "owner_id": rep_a.staff_id})
    rest.insert("activities", [
        {"subject": "on private deal", "deal_id": private_deal["id"], "owner_id": rep_a.staff_id},
        {"subject": "on team deal", "deal_id": team_deal["id"], "owner_id": rep_a.staff_id},
        {"subject": "on secret company", "company_id": secret_company["id"], "owner_id": rep_a.staff_id},
    ])  # fmt: skip
    rest.insert("interactions", {"contact_id": contact["id"], "staff_id": rep_a.staff_id, "summary": "hi"})
    return {"a": rep_a, "b": rep_b, "manager": manager, "admin": admin, "private": private_deal, "team": team_deal,
            "contact": contact}  # fmt: skip


def titles(resp: Any, key: str = "title") -> list[str]:
    assert resp.status_code == 200, resp.text
    return sorted(r[key] for r in resp.json())


def test_anon_reads_and_writes_nothing(rest: Any, team: dict[str, Any]) -> None:
    assert rest.get("deals?select=title").json() == []
    assert rest.get("staff?select=id").json() == []
    r = rest.post("contacts", {"first_name": "x"})
    assert r.status_code == 401 and r.json()["code"] == "42501"
    assert rest.delete(f"deals?id=eq.{team['team']['id']}").status_code == 401


def test_private_rows_visible_to_owner_managers_and_admins_only(rest: Any, team: dict[str, Any]) -> None:
    assert titles(rest.get("deals?select=title", team["a"].token)) == ["A private", "A team"]
    assert titles(rest.get("deals?select=title", team["b"].token)) == ["A team"]
    assert titles(rest.get("deals?select=title", team["manager"].token)) == ["A private", "A team"]
    assert titles(rest.get("deals?select=title", team["admin"].token)) == ["A private", "A team"]
    r = rest.get(f"deals?select=*&id=eq.{team['private']['id']}", team["b"].token, headers={"Accept": OBJECT})
    assert r.status_code == 406 and r.json()["code"] == "PGRST116"
    r = rest.get("deals?select=title", team["b"].token, headers={"Prefer": "count=exact"})
    assert r.headers["content-range"] == "0-0/1"


def test_children_of_hidden_parents_are_hidden(rest: Any, team: dict[str, Any]) -> None:
    assert titles(rest.get("activities?select=subject", team["b"].token), "subject") == ["on team deal"]
    assert len(rest.get("activities?select=subject", team["a"].token).json()) == 3
    r = rest.get("activities?select=subject,deal:deals(title)", team["manager"].token)
    assert len(r.json()) == 3
    # Embedding never leaks a hidden parent: the embed is null.
    rest.patch(f"deals?id=eq.{team['team']['id']}", {"visibility": "private"}, team["a"].token)
    assert rest.get("activities?select=subject", team["b"].token).json() == []


def test_rep_writes_own_records_only(rest: Any, team: dict[str, Any]) -> None:
    a, b = team["a"], team["b"]
    deal_id = team["team"]["id"]
    r = rest.patch(f"deals?id=eq.{deal_id}&select=title", {"title": "hijack"}, b.token, headers=REPR)
    assert r.status_code == 200 and r.json() == []
    assert rest.delete(f"deals?id=eq.{deal_id}", b.token).status_code == 204
    assert titles(rest.get("deals?select=title", a.token)) == ["A private", "A team"]
    r = rest.patch(f"deals?id=eq.{deal_id}&select=title,updated_by", {"title": "renamed"}, a.token, headers=REPR)
    assert r.json() == [{"title": "renamed", "updated_by": a.staff_id}]
    r = rest.patch(f"deals?id=eq.{deal_id}&select=title", {"title": "by manager"}, team["manager"].token, headers=REPR)
    assert r.json() == [{"title": "by manager"}]


def test_rep_creates_records_owned_by_themselves(rest: Any, team: dict[str, Any]) -> None:
    b = team["b"]
    r = rest.post("contacts?select=owner_id", {"first_name": "Mine"}, b.token, headers=REPR)
    assert r.status_code == 201 and r.json() == [{"owner_id": b.staff_id}]
    r = rest.post("contacts", {"first_name": "Theirs", "owner_id": team["a"].staff_id}, b.token)
    assert r.status_code == 403 and r.json()["code"] == "42501"
    # An activity on a deal the rep cannot see would be invisible to them: refused.
    r = rest.post("activities", {"subject": "sneaky", "deal_id": team["private"]["id"]}, b.token)
    assert r.status_code == 403 and r.json()["code"] == "42501"
    assert titles(rest.get("contacts?select=first_name", rest.service), "first_name") == ["Mine", "Pat"]


def test_only_admins_write_staff_and_platforms(rest: Any, team: dict[str, Any]) -> None:
    for who in ("a", "manager"):
        r = rest.post("staff", {"full_name": "X", "email": f"x-{who}@y.z"}, team[who].token)
        assert r.status_code == 403 and r.json()["code"] == "42501", r.text
        r = rest.patch("platforms?name=eq.x", {"kind": "y"}, team[who].token)
        assert r.status_code == 403
    r = rest.post("platforms?select=name", {"name": "Fax"}, team["admin"].token, headers=REPR)
    assert r.status_code == 201
    assert len(rest.get("staff?select=id", team["b"].token).json()) == 4


def test_inactive_staff_can_do_nothing(rest: Any, team: dict[str, Any]) -> None:
    ghost = rest.login("manager", active=False)
    assert rest.get("deals?select=title", ghost.token).json() == []
    assert rest.post("contacts", {"first_name": "x"}, ghost.token).status_code == 403
    # Deactivation takes effect on the very next request.
    b = team["b"]
    assert rest.get("deals?select=title", b.token).json() != []
    rest.patch(f"staff?id=eq.{b.staff_id}", {"is_active": False}, team["admin"].token)
    assert rest.get("deals?select=title", b.token).json() == []


def test_upsert_cannot_take_over_foreign_rows(rest: Any, team: dict[str, Any]) -> None:
    r = rest.post("contacts", {"id": team["contact"]["id"], "first_name": "Taken"}, team["b"].token,
                  headers={"Prefer": "resolution=merge-duplicates"})  # fmt: skip
    assert r.status_code == 403 and r.json()["code"] == "42501"
    assert rest.get("contacts?select=first_name", rest.service).json() == [{"first_name": "Pat"}]


def test_a_signed_out_session_token_reads_nothing(rest: Any, team: dict[str, Any]) -> None:
    b = team["b"]
    assert rest.get("deals?select=title", b.token).json() != []
    r = rest.client.post(
        "/auth/v1/logout?scope=local", headers={"apikey": rest.anon, "Authorization": f"Bearer {b.token}"}
    )
    assert r.status_code == 204
    assert rest.get("deals?select=title", b.token).json() == []
    assert rest.post("contacts", {"first_name": "after sign-out"}, b.token).status_code == 403
