"""The unmodified PyPI ``supabase`` client (2.34.1, sync API) against a live ``wexlot serve``.

Same coverage as the supabase-js tests in tests/compat/node: password sign-in for every role, token
refresh and sign-out, CRUD on all 7 tables, filters, ordering and paging, counts, ``.single()`` /
``.maybe_single()``, embedding, upserts, a conditional update on ``version``, PostgREST error codes and
the access rules. One server per backend is shared by the module (tests/compat/conftest.py); each
test tags its rows with a unique string so tests never see each other's data.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from postgrest import APIError, CountMethod, ReturnMethod
from supabase import Client, create_client
from supabase_auth.errors import AuthApiError, AuthError
from supabase_auth.types import Session, User

if TYPE_CHECKING:
    from conftest import CompatServer  # tests/compat/conftest.py; annotations only

pytestmark = [
    pytest.mark.compat,
    # supabase 2.34.1 itself passes these deprecated arguments to its postgrest client on every sign-in.
    pytest.mark.filterwarnings(r"ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning"),
]

TABLES = ("staff", "platforms", "companies", "contacts", "deals", "activities", "interactions")


@dataclass
class SignedIn:
    client: Client
    user: User
    session: Session
    staff: dict[str, Any]


def new_client(server: CompatServer, key: str | None = None) -> Client:
    return create_client(server.url, key or server.anon_key)


def sign_in(server: CompatServer, who: str) -> SignedIn:
    """A fresh client signed in through ``sign_in_with_password``, with the caller's staff row."""
    login = server.users[who]
    client = new_client(server)
    response = client.auth.sign_in_with_password({"email": login.email, "password": login.password})
    assert response.user is not None and response.session is not None
    staff = (
        client.table("staff").select("id, role, full_name, email").eq("user_id", response.user.id).single().execute()
    )
    return SignedIn(client, response.user, response.session, staff.data)


@pytest.fixture(scope="module")
def team(compat_server: CompatServer) -> dict[str, SignedIn]:
    """admin, manager, rep_a and rep_b, each signed in on their own client for the whole module."""
    return {who: sign_in(compat_server, who) for who in compat_server.users}


@pytest.fixture
def t() -> str:
    """A unique tag for this test's rows."""
    return uuid.uuid4().hex[:8]


def api_error(call: Callable[[], Any], code: str) -> APIError:
    with pytest.raises(APIError) as caught:
        call()
    assert caught.value.code == code, caught.value
    return caught.value


# --- auth ----------------------------------------------------------------------------------------


def test_every_role_signs_in_and_gets_its_staff_row(compat_server: CompatServer) -> None:
    for who, login in compat_server.users.items():
        me = sign_in(compat_server, who)
        assert me.user.email == login.email and me.user.aud == "authenticated"
        assert str(uuid.UUID(me.user.id)) == me.user.id
        assert me.session.token_type == "bearer" and me.session.expires_in > 120
        assert me.session.expires_at is not None and me.session.expires_at > time.time()
        assert me.session.refresh_token
        payload = me.session.access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["sub"] == me.user.id and claims["role"] == "authenticated"
        assert (me.staff["role"], me.staff["full_name"], me.staff["email"]) == (login.role, login.name, login.email)
        me.client.auth.sign_out({"scope": "local"})


def test_wrong_password_is_invalid_credentials(compat_server: CompatServer) -> None:
    client = new_client(compat_server)
    with pytest.raises(AuthApiError) as caught:
        client.auth.sign_in_with_password({"email": compat_server.users["rep_a"].email, "password": "not-it-at-all"})
    assert (caught.value.code, caught.value.status) == ("invalid_credentials", 400)
    assert client.auth.get_session() is None


def test_get_user_refresh_and_sign_out(compat_server: CompatServer) -> None:
    me = sign_in(compat_server, "rep_b")
    other = sign_in(compat_server, "rep_b")  # a second session of the same user
    fetched = me.client.auth.get_user()
    assert fetched is not None and fetched.user.id == me.user.id

    time.sleep(1.1)  # iat has one-second resolution: the refreshed access token must differ
    refreshed = me.client.auth.refresh_session()
    assert refreshed.session is not None and refreshed.user is not None
    assert refreshed.user.id == me.user.id
    assert refreshed.session.refresh_token != me.session.refresh_token
    assert refreshed.session.access_token != me.session.access_token
    current = me.client.auth.get_session()
    assert current is not None and current.access_token == refreshed.session.access_token
    # REST now runs with the refreshed token.
    assert me.client.table("staff").select("id").eq("user_id", me.user.id).execute().data == [{"id": me.staff["id"]}]

    me.client.auth.sign_out({"scope": "local"})
    assert me.client.auth.get_session() is None
    # Signed out, the client is anonymous again: it reads nothing.
    assert me.client.table("staff").select("id").execute().data == []
    with pytest.raises(AuthError) as dead:
        me.client.auth.refresh_session(refreshed.session.refresh_token)
    assert dead.value.status == 400
    # A local sign-out ends only that session.
    assert other.client.auth.get_user() is not None
    assert other.client.table("staff").select("id").eq("id", other.staff["id"]).execute().data
    other.client.auth.sign_out({"scope": "local"})


# --- CRUD on all 7 tables ------------------------------------------------------------------------


def crud(me: SignedIn, table: str, row: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """insert → read by id → update → delete → gone, as ``me``; returns the inserted row."""
    db = me.client
    created = db.table(table).insert(row).single().execute().data
    assert str(uuid.UUID(created["id"])) == created["id"] and created["version"] == 1
    assert {k: created[k] for k in row} == row

    assert db.table(table).select("*").eq("id", created["id"]).single().execute().data == created

    updated = db.table(table).update(change).eq("id", created["id"]).execute().data
    assert len(updated) == 1, updated
    assert {k: updated[0][k] for k in change} == change
    assert updated[0]["version"] == 2 and updated[0]["updated_by"] == me.staff["id"]
    assert updated[0]["updated_at"] >= created["updated_at"]

    minimal = db.table(table).update(change, returning=ReturnMethod.minimal).eq("id", created["id"]).execute()
    assert minimal.data == []

    deleted = db.table(table).delete().eq("id", created["id"]).execute().data
    assert [r["id"] for r in deleted] == [created["id"]]
    assert db.table(table).select("id").eq("id", created["id"]).maybe_single().execute() is None
    return created


def test_crud_staff_as_admin(team: dict[str, SignedIn], t: str) -> None:
    row = {"full_name": f"Temp {t}", "email": f"temp-{t}@example.com", "role": "rep", "title": None}
    created = crud(team["admin"], "staff", row, {"title": "Intern", "phone": "+1 555 0100"})
    assert created["is_active"] is True and created["user_id"] is None


def test_crud_platforms_as_admin(team: dict[str, SignedIn], t: str) -> None:
    crud(team["admin"], "platforms", {"name": f"Fax {t}", "kind": "fax", "url": None},
         {"url": "https://fax.example", "is_active": False})  # fmt: skip


def test_crud_crm_tables_as_owning_rep(team: dict[str, SignedIn], t: str) -> None:
    rep, admin = team["rep_a"], team["admin"]
    db = rep.client
    platform = admin.client.table("platforms").insert({"name": f"Chat {t}"}).single().execute().data
    company = db.table("companies").insert({"name": f"Parent Co {t}"}).single().execute().data
    contact = db.table("contacts").insert({"first_name": "Parent", "last_name": t, "company_id": company["id"]})
    contact = contact.single().execute().data
    deal = db.table("deals").insert({"title": f"Parent deal {t}", "amount": 10, "contact_id": contact["id"]})
    deal = deal.single().execute().data

    c = crud(rep, "companies", {"name": f"Acme {t}", "domain": "acme.example", "visibility": "private"},
             {"industry": "Tools", "notes": "renamed"})  # fmt: skip
    assert c["owner_id"] == rep.staff["id"]
    p = crud(rep, "contacts", {"first_name": "Ann", "last_name": t, "email": f"ann-{t}@example.com",
                               "company_id": company["id"], "tags": ["vip", "west"]},
             {"status": "customer", "tags": ["vip"]})  # fmt: skip
    assert p["status"] == "lead" and p["owner_id"] == rep.staff["id"]
    d = crud(rep, "deals", {"title": f"Deal {t}", "amount": 1234.5, "currency": "EUR", "contact_id": contact["id"],
                            "company_id": company["id"]},
             {"stage": "won", "probability": 100, "expected_close_date": "2030-01-31"})  # fmt: skip
    assert d["stage"] == "lead" and d["closed_at"] is None
    a = crud(rep, "activities", {"subject": f"Call {t}", "type": "call", "deal_id": deal["id"],
                                 "contact_id": contact["id"], "completed": False},
             {"completed": True, "description": "done"})  # fmt: skip
    assert a["owner_id"] == rep.staff["id"]
    i = crud(rep, "interactions", {"contact_id": contact["id"], "platform_id": platform["id"], "kind": "chat",
                                   "direction": "inbound", "summary": f"Hi {t}"},
             {"summary": "edited", "direction": "outbound"})  # fmt: skip
    assert i["staff_id"] == rep.staff["id"] and i["occurred_at"]

    for table, parent in (("deals", deal), ("contacts", contact), ("companies", company)):
        assert db.table(table).delete().eq("id", parent["id"]).execute().data
    assert admin.client.table("platforms").delete().eq("id", platform["id"]).execute().data


def test_bulk_insert_and_filtered_delete(team: dict[str, SignedIn], t: str) -> None:
    db = team["rep_a"].client
    rows = [{"first_name": name, "last_name": f"bulk {t}"} for name in ("One", "Two", "Three")]
    inserted = db.table("contacts").insert(rows).select("first_name, last_name").execute().data
    assert inserted == rows
    gone = db.table("contacts").delete().eq("last_name", f"bulk {t}").execute().data
    assert sorted(r["first_name"] for r in gone) == ["One", "Three", "Two"]
    assert db.table("contacts").select("id").eq("last_name", f"bulk {t}").execute().data == []


# --- reads ---------------------------------------------------------------------------------------


@dataclass
class Dataset:
    db: Client
    t: str
    acme: dict[str, Any]
    beta: dict[str, Any]
    ids: dict[str, str]

    def names(self, build: Callable[[Any], Any]) -> list[str]:
        query = build(self.db.table("contacts").select("first_name").eq("last_name", self.t))
        return [r["first_name"] for r in query.order("first_name").execute().data]


@pytest.fixture(scope="module")
def crm(team: dict[str, SignedIn]) -> Dataset:
    """Two companies, five contacts and two deals owned by the manager, tagged for this module."""
    db, t = team["manager"].client, uuid.uuid4().hex[:8]
    acme, beta = db.table("companies").insert([{"name": f"Acme Corp {t}"}, {"name": f"Beta Ltd {t}"}]).execute().data
    contacts = [
        {"first_name": "Ann", "email": f"ann-{t}@acme.io", "company_id": acme["id"], "tags": ["vip", "west"],
         "status": "customer"},
        {"first_name": "Bob", "email": f"bob-{t}@acme.io", "company_id": acme["id"], "tags": [], "status": "lead"},
        {"first_name": "Cid", "email": None, "company_id": acme["id"], "tags": ["west"], "status": "lead"},
        {"first_name": "Dan", "email": f"dan-{t}@beta.io", "company_id": beta["id"], "tags": ["vip", "east"],
         "status": "prospect"},
        {"first_name": "Eve", "email": None, "company_id": None, "tags": [], "status": "lead"},
    ]  # fmt: skip
    inserted = db.table("contacts").insert([{**c, "last_name": t} for c in contacts]).execute().data
    ids = {c["first_name"]: c["id"] for c in inserted}
    deals = [
        {"title": f"Big {t}", "amount": 125000.5, "stage": "proposal", "contact_id": ids["Ann"]},
        {"title": f"Small {t}", "amount": 999.99, "stage": "lead", "contact_id": None},
    ]
    companies = (acme["id"], beta["id"])
    rows = [{**deal, "company_id": company} for deal, company in zip(deals, companies, strict=True)]
    db.table("deals").insert(rows, returning=ReturnMethod.minimal).execute()
    return Dataset(db, t, acme, beta, ids)


def test_comparison_filters(crm: Dataset) -> None:
    assert crm.names(lambda q: q.eq("first_name", "Ann")) == ["Ann"]
    assert crm.names(lambda q: q.neq("first_name", "Ann")) == ["Bob", "Cid", "Dan", "Eve"]
    assert crm.names(lambda q: q.gt("first_name", "Cid")) == ["Dan", "Eve"]
    assert crm.names(lambda q: q.gte("first_name", "Cid")) == ["Cid", "Dan", "Eve"]
    assert crm.names(lambda q: q.lt("first_name", "Bob")) == ["Ann"]
    assert crm.names(lambda q: q.lte("first_name", "Bob")) == ["Ann", "Bob"]
    assert crm.names(lambda q: q.match({"status": "lead", "company_id": crm.acme["id"]})) == ["Bob", "Cid"]


def test_pattern_filters(crm: Dataset) -> None:
    assert crm.names(lambda q: q.like("email", "%@acme.io")) == ["Ann", "Bob"]
    assert crm.names(lambda q: q.like("email", "*@acme.io")) == ["Ann", "Bob"]
    assert crm.names(lambda q: q.like("email", "%@ACME.io")) == []
    assert crm.names(lambda q: q.ilike("email", "%@ACME.IO")) == ["Ann", "Bob"]


def test_null_in_array_and_not_filters(crm: Dataset) -> None:
    assert crm.names(lambda q: q.is_("email", None)) == ["Cid", "Eve"]
    assert crm.names(lambda q: q.in_("first_name", ["Ann", "Eve", "Zed"])) == ["Ann", "Eve"]
    assert crm.names(lambda q: q.in_("status", ["customer", "prospect"])) == ["Ann", "Dan"]
    assert crm.names(lambda q: q.contains("tags", ["vip"])) == ["Ann", "Dan"]
    assert crm.names(lambda q: q.contains("tags", ["vip", "west"])) == ["Ann"]
    assert crm.names(lambda q: q.contained_by("tags", ["west", "east"])) == ["Bob", "Cid", "Eve"]
    assert crm.names(lambda q: q.overlaps("tags", ["east"])) == ["Dan"]
    assert crm.names(lambda q: q.not_.is_("email", None)) == ["Ann", "Bob", "Dan"]
    assert crm.names(lambda q: q.not_.in_("first_name", ["Ann", "Eve"])) == ["Bob", "Cid", "Dan"]
    assert crm.names(lambda q: q.not_.contains("tags", ["vip"])) == ["Bob", "Cid", "Eve"]


def test_regex_filters_match_and_imatch(crm: Dataset) -> None:
    assert crm.names(lambda q: q.filter("first_name", "match", "^[AB]")) == ["Ann", "Bob"]
    assert crm.names(lambda q: q.filter("first_name", "imatch", "^[ab]")) == ["Ann", "Bob"]
    assert crm.names(lambda q: q.filter("email", "imatch", r"@ACME\.IO$")) == ["Ann", "Bob"]
    assert crm.names(lambda q: q.not_.filter("first_name", "imatch", "^[ab]")) == ["Cid", "Dan", "Eve"]


ODD_VALUES = ["Smith, Jr.", "(paren)", "a+b", "x&y=z", "100%", "Zoë 東京", "back\\slash", "colon:x", "dot.ted", "it's",
              'Robert "Bob" Smith']  # fmt: skip


def test_values_with_reserved_and_non_ascii_characters(crm: Dataset) -> None:
    odd = f"odd {crm.t}"
    crm.db.table("contacts").insert([{"first_name": v, "last_name": odd} for v in ODD_VALUES]).execute()
    for value in ODD_VALUES:
        base = crm.db.table("contacts").select("first_name").eq("last_name", odd)
        assert base.eq("first_name", value).execute().data == [{"first_name": value}], value
        base = crm.db.table("contacts").select("first_name").eq("last_name", odd)
        assert len(base.neq("first_name", value).execute().data) == len(ODD_VALUES) - 1, value
        # supabase-py double-quotes (and backslash-escapes) in_() elements containing ,:()"\ .
        base = crm.db.table("contacts").select("first_name").eq("last_name", odd)
        assert base.in_("first_name", [value, "zzz"]).execute().data == [{"first_name": value}], value
    both = crm.db.table("contacts").select("first_name").eq("last_name", odd)
    both = both.or_('first_name.eq."Smith, Jr.",first_name.eq."(paren)"').execute().data
    assert sorted(r["first_name"] for r in both) == ["(paren)", "Smith, Jr."]


def test_or_filters_and_values_with_spaces(crm: Dataset) -> None:
    assert crm.names(lambda q: q.or_("first_name.eq.Ann,email.ilike.*@beta.io")) == ["Ann", "Dan"]
    assert crm.names(lambda q: q.or_("first_name.eq.Ann,and(email.is.null,first_name.gt.Cid)")) == ["Ann", "Eve"]
    assert crm.names(lambda q: q.not_.or_("first_name.eq.Ann,first_name.eq.Eve")) == ["Bob", "Cid", "Dan"]
    rows = crm.db.table("companies").select("name").or_(f'name.eq."Acme Corp {crm.t}",name.eq.nothing').execute()
    assert rows.data == [{"name": f"Acme Corp {crm.t}"}]
    rows = crm.db.table("companies").select("id").eq("name", f"Beta Ltd {crm.t}").execute()
    assert rows.data == [{"id": crm.beta["id"]}]


def test_order_range_and_limit(crm: Dataset) -> None:
    base = crm.db.table("contacts").select("first_name").eq("last_name", crm.t)
    ordered = base.order("email", desc=True, nullsfirst=True).order("first_name").execute().data
    assert [r["first_name"] for r in ordered] == ["Cid", "Eve", "Dan", "Bob", "Ann"]
    page = crm.db.table("contacts").select("first_name").eq("last_name", crm.t).order("first_name").range(1, 3)
    assert [r["first_name"] for r in page.execute().data] == ["Bob", "Cid", "Dan"]
    top = crm.db.table("contacts").select("first_name").eq("last_name", crm.t).order("first_name", desc=True).limit(2)
    assert [r["first_name"] for r in top.execute().data] == ["Eve", "Dan"]


def test_count_exact_with_head_and_with_a_page(crm: Dataset) -> None:
    head = crm.db.table("contacts").select("*", count=CountMethod.exact, head=True).eq("last_name", crm.t).execute()
    assert head.count == 5 and head.data == []
    none = crm.db.table("contacts").select("*", count=CountMethod.exact, head=True).eq("last_name", "none").execute()
    assert none.count == 0
    page = (
        crm.db.table("contacts")
        .select("first_name", count=CountMethod.exact)
        .eq("last_name", crm.t)
        .order("first_name")
        .limit(2)
        .execute()
    )
    assert page.count == 5 and page.data == [{"first_name": "Ann"}, {"first_name": "Bob"}]


def test_single_and_maybe_single(crm: Dataset) -> None:
    contacts = crm.db.table("contacts")
    ann = contacts.select("first_name, tags").eq("id", crm.ids["Ann"]).single().execute()
    assert ann.data == {"first_name": "Ann", "tags": ["vip", "west"]}
    error = api_error(lambda: contacts.select("*").eq("last_name", crm.t).eq("first_name", "Nobody").single().execute(),
                      "PGRST116")  # fmt: skip
    assert "0 rows" in str(error.details)
    api_error(lambda: contacts.select("*").eq("last_name", crm.t).eq("status", "lead").single().execute(), "PGRST116")
    nobody = contacts.select("first_name").eq("last_name", crm.t).eq("first_name", "Nobody")
    assert nobody.maybe_single().execute() is None
    eve = contacts.select("first_name").eq("id", crm.ids["Eve"]).maybe_single().execute()
    assert eve is not None and eve.data == {"first_name": "Eve"}


def test_embedding_many_to_one(crm: Dataset) -> None:
    deals = (
        crm.db.table("deals")
        .select("title, amount, company:companies(name), contact:contacts(*)")
        .in_("title", [f"Big {crm.t}", f"Small {crm.t}"])
        .order("title")
        .execute()
        .data
    )
    big, small = deals
    assert (big["title"], big["amount"], big["company"]) == (f"Big {crm.t}", 125000.5, {"name": f"Acme Corp {crm.t}"})
    assert big["contact"]["id"] == crm.ids["Ann"] and big["contact"]["first_name"] == "Ann"
    assert big["contact"]["tags"] == ["vip", "west"] and big["contact"]["company_id"] == crm.acme["id"]
    assert (small["amount"], small["company"], small["contact"]) == (999.99, {"name": f"Beta Ltd {crm.t}"}, None)
    eve = crm.db.table("contacts").select("first_name, company:companies(name)").eq("id", crm.ids["Eve"]).single()
    assert eve.execute().data == {"first_name": "Eve", "company": None}


def test_embedding_one_to_many_and_inner(crm: Dataset) -> None:
    companies = (
        crm.db.table("companies")
        .select("name, contacts(first_name)")
        .in_("id", [crm.acme["id"], crm.beta["id"]])
        .order("name")
        .order("first_name", desc=True, foreign_table="contacts")
        .execute()
        .data
    )
    assert companies == [
        {"name": f"Acme Corp {crm.t}", "contacts": [{"first_name": n} for n in ("Cid", "Bob", "Ann")]},
        {"name": f"Beta Ltd {crm.t}", "contacts": [{"first_name": "Dan"}]},
    ]
    inner = (
        crm.db.table("contacts")
        .select("first_name, companies!inner(name)")
        .eq("last_name", crm.t)
        .eq("companies.name", f"Beta Ltd {crm.t}")
        .execute()
    )
    assert inner.data == [{"first_name": "Dan", "companies": {"name": f"Beta Ltd {crm.t}"}}]


# --- writes and errors ---------------------------------------------------------------------------


def test_upsert_on_conflict_merge_and_ignore_duplicates(team: dict[str, SignedIn], t: str) -> None:
    platforms = team["admin"].client.table("platforms")
    mail = platforms.insert({"name": f"Mail {t}", "kind": "email"}).single().execute().data
    merged = platforms.upsert({"name": f"Mail {t}", "kind": "mail"}, on_conflict="name").execute().data
    assert [(r["id"], r["kind"], r["version"]) for r in merged] == [(mail["id"], "mail", 2)]
    ignored = platforms.upsert(
        [{"name": f"Mail {t}", "kind": "ignored"}, {"name": f"Phone {t}", "kind": "phone"}],
        on_conflict="name",
        ignore_duplicates=True,
    ).execute()
    assert [(r["name"], r["kind"]) for r in ignored.data] == [(f"Phone {t}", "phone")]
    kinds = platforms.select("name, kind").in_("name", [f"Mail {t}", f"Phone {t}"]).order("name").execute().data
    assert kinds == [{"name": f"Mail {t}", "kind": "mail"}, {"name": f"Phone {t}", "kind": "phone"}]
    # On the primary key (the default conflict target), asking for no rows back.
    bare = platforms.upsert({"id": mail["id"], "name": f"E-mail {t}", "kind": "mail"}, returning=ReturnMethod.minimal)
    assert bare.execute().data == []
    renamed = platforms.select("name, version").eq("id", mail["id"]).single().execute().data
    assert renamed == {"name": f"E-mail {t}", "version": 3}


def test_conditional_update_on_stale_version_touches_nothing(team: dict[str, SignedIn], t: str) -> None:
    contacts = team["rep_a"].client.table("contacts")
    row = contacts.insert({"first_name": "Vera", "last_name": t}).single().execute().data
    assert row["version"] == 1
    first = contacts.update({"notes": "first"}).eq("id", row["id"]).eq("version", 1).select("notes, version").execute()
    assert first.data == [{"notes": "first", "version": 2}]
    stale = contacts.update({"notes": "second"}, count=CountMethod.exact).eq("id", row["id"]).eq("version", 1).execute()
    assert stale.data == [] and stale.count == 0
    assert contacts.select("notes, version").eq("id", row["id"]).single().execute().data == {"notes": "first",
                                                                                            "version": 2}  # fmt: skip


def test_duplicate_platform_name_is_23505(team: dict[str, SignedIn], t: str) -> None:
    platforms = team["admin"].client.table("platforms")
    platforms.insert({"name": f"Dup {t}"}).execute()
    error = api_error(lambda: platforms.insert({"name": f"Dup {t}"}).execute(), "23505")
    assert "duplicate key" in str(error.message) and "name" in str(error.details)


def test_unknown_columns_are_42703_or_pgrst204(team: dict[str, SignedIn], t: str) -> None:
    contacts = team["rep_a"].client.table("contacts")
    api_error(lambda: contacts.select("first_name, nope").execute(), "42703")
    api_error(lambda: contacts.select("id").eq("nope", 1).execute(), "42703")
    api_error(lambda: contacts.select("id").order("nope").execute(), "42703")
    api_error(lambda: contacts.insert({"first_name": "X", "nope": 1}).execute(), "PGRST204")
    api_error(lambda: contacts.update({"nope": 1}).eq("last_name", t).execute(), "PGRST204")


def test_unknown_table_is_pgrst205(team: dict[str, SignedIn]) -> None:
    for name in ("nope", "users"):
        api_error(lambda name=name: team["rep_a"].client.table(name).select("*").execute(), "PGRST205")


def test_rep_writing_staff_or_platforms_is_42501(team: dict[str, SignedIn], t: str) -> None:
    db = team["rep_a"].client
    api_error(lambda: db.table("staff").insert({"full_name": "Sneaky", "email": f"sneaky-{t}@example.com"}).execute(),
              "42501")  # fmt: skip
    api_error(lambda: db.table("platforms").insert({"name": f"Sneaky {t}"}).execute(), "42501")
    api_error(lambda: db.table("deals").insert({"amount": 1}).execute(), "23502")
    api_error(lambda: db.table("deals").insert({"title": "x", "stage": "maybe"}).execute(), "23514")
    api_error(lambda: db.table("contacts").select("id").eq("id", "not-a-uuid").execute(), "22P02")


# --- access rules --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deals_of_rep_a(team: dict[str, SignedIn]) -> dict[str, Any]:
    """A private and a team deal owned by rep A, plus a row in every table."""
    rep_a, admin = team["rep_a"].client, team["admin"].client
    t = uuid.uuid4().hex[:8]
    private, shared = (
        rep_a.table("deals")
        .insert(
            [
                {"title": f"Private {t}", "amount": 100, "visibility": "private"},
                {"title": f"Team {t}", "amount": 200, "visibility": "team"},
            ]
        )
        .execute()
        .data
    )
    platform = admin.table("platforms").insert({"name": f"Web {t}"}).single().execute().data
    company = rep_a.table("companies").insert({"name": f"Anon Co {t}"}).single().execute().data
    contact = rep_a.table("contacts").insert({"first_name": "Pat", "last_name": t, "company_id": company["id"]})
    contact = contact.single().execute().data
    rep_a.table("activities").insert({"subject": f"Private follow-up {t}", "deal_id": private["id"]}).execute()
    rep_a.table("activities").insert({"subject": f"Team follow-up {t}", "deal_id": shared["id"]}).execute()
    rep_a.table("interactions").insert({"contact_id": contact["id"], "platform_id": platform["id"]}).execute()
    return {"t": t, "private": private, "team": shared}


def deal_titles(client: Client, t: str) -> list[str]:
    return sorted(r["title"] for r in client.table("deals").select("title").like("title", f"% {t}").execute().data)


def test_owner_manager_admin_see_private_deal(team: dict[str, SignedIn], deals_of_rep_a: dict[str, Any]) -> None:
    t = deals_of_rep_a["t"]
    for who in ("rep_a", "manager", "admin"):
        assert deal_titles(team[who].client, t) == [f"Private {t}", f"Team {t}"], who
    own = team["rep_a"].client.table("deals").select("owner_id").eq("id", deals_of_rep_a["private"]["id"]).single()
    assert own.execute().data == {"owner_id": team["rep_a"].staff["id"]}


def test_rep_b_cannot_read_rep_a_private_deal(team: dict[str, SignedIn], deals_of_rep_a: dict[str, Any]) -> None:
    t, db = deals_of_rep_a["t"], team["rep_b"].client
    assert deal_titles(db, t) == [f"Team {t}"]
    private_id = deals_of_rep_a["private"]["id"]
    api_error(lambda: db.table("deals").select("*").eq("id", private_id).single().execute(), "PGRST116")
    assert db.table("deals").select("*").eq("id", private_id).maybe_single().execute() is None
    counted = db.table("deals").select("*", count=CountMethod.exact, head=True).like("title", f"% {t}").execute()
    assert counted.count == 1
    activities = db.table("activities").select("subject, deal:deals(title)").like("subject", f"% {t}").execute()
    assert activities.data == [{"subject": f"Team follow-up {t}", "deal": {"title": f"Team {t}"}}]


def test_rep_b_cannot_change_rep_a_rows(team: dict[str, SignedIn], deals_of_rep_a: dict[str, Any]) -> None:
    rep_b, team_id = team["rep_b"], deals_of_rep_a["team"]["id"]
    assert rep_b.client.table("deals").update({"title": "hijacked"}).eq("id", team_id).execute().data == []
    assert rep_b.client.table("deals").delete().eq("id", team_id).execute().data == []
    forged = {"title": f"Forged {deals_of_rep_a['t']}", "owner_id": team["rep_a"].staff["id"]}
    api_error(lambda: rep_b.client.table("deals").insert(forged).execute(), "42501")
    still = team["admin"].client.table("deals").select("title, version").eq("id", team_id).single().execute()
    assert still.data == {"title": deals_of_rep_a["team"]["title"], "version": 1}


def test_anon_sees_nothing_on_every_table(compat_server: CompatServer, deals_of_rep_a: dict[str, Any]) -> None:
    service = new_client(compat_server, compat_server.service_key)
    anon = new_client(compat_server)
    for table in TABLES:
        everything = service.table(table).select("*", count=CountMethod.exact, head=True).execute()
        assert everything.count, f"service_role sees no {table}"
        assert anon.table(table).select("*").execute().data == [], table
        assert anon.table(table).select("*", count=CountMethod.exact, head=True).execute().count == 0, table
    api_error(lambda: anon.table("contacts").insert({"first_name": "Anon"}).execute(), "42501")
    api_error(lambda: anon.table("deals").delete().eq("id", deals_of_rep_a["team"]["id"]).execute(), "42501")
    api_error(lambda: anon.table("deals").select("*").eq("id", deals_of_rep_a["team"]["id"]).single().execute(),
              "PGRST116")  # fmt: skip
