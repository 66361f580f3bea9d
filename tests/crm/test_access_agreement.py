"""The access rules, compiled to SQL and evaluated in Python, agree on every row, table and principal.

``wexlot.crm.access`` writes each rule once; REST filters rows with the SQL predicate and realtime
checks single rows with the Python test. Random CRM data (seeded) goes into a real database of each
backend; for every table and principal the set of ids the SQL predicate selects must equal the set the
row test accepts — for reading and for writing. Both are also compared with an independent oracle
written from the rules as documented, so that two identical mistakes cannot agree their way through.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select

from wexlot.crm import access
from wexlot.crm import tables as t
from wexlot.crm.access import ANON, SERVICE, Principal
from wexlot.storage.engine import sync_engine

SEEDS = [1, 2, 3]
N_OWNED = 30  # companies, contacts, deals each
N_ACTIVITIES = 45
N_INTERACTIONS = 40
OWNED = ("companies", "contacts", "deals")
PARENT_COLUMNS = {
    "activities": (("company_id", "companies"), ("contact_id", "contacts"), ("deal_id", "deals")),
    "interactions": (("contact_id", "contacts"),),
}
RESPONSIBLE = {
    "companies": ("owner_id",),
    "contacts": ("owner_id",),
    "deals": ("owner_id",),
    "activities": ("owner_id", "assigned_to"),
    "interactions": ("staff_id",),
}
INSERT_ORDER = ("staff", "platforms", "companies", "contacts", "deals", "activities", "interactions")


@dataclass
class World:
    """The generated data, keyed by name, plus the principals and notable rows to assert on."""

    staff: dict[str, str] = field(default_factory=dict)  # admin, manager, rep1..3, inactive → staff id
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notable: dict[str, str] = field(default_factory=dict)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _maybe(rng: random.Random, ids: list[str], none_chance: float = 0.3) -> str | None:
    return None if rng.random() < none_chance else rng.choice(ids)


def generate(seed: int) -> World:
    rng = random.Random(seed)
    world = World()
    staff_rows = []
    for name, role, active in (
        ("admin", "admin", True),
        ("manager", "manager", True),
        ("rep1", "rep", True),
        ("rep2", "rep", True),
        ("rep3", "rep", True),
        ("inactive", "rep", False),
    ):
        sid = _uuid(rng)
        world.staff[name] = sid
        staff_rows.append(
            {"id": sid, "full_name": name.title(), "email": f"{name}@example.com", "role": role, "is_active": active}
        )
    world.rows["staff"] = staff_rows
    staff_ids = list(world.staff.values())
    reps = [world.staff[r] for r in ("rep1", "rep2", "rep3")]

    world.rows["platforms"] = [
        {"id": _uuid(rng), "name": name, "kind": "web", "is_active": True} for name in ("Email", "Phone", "Chat")
    ]
    platform_ids = [p["id"] for p in world.rows["platforms"]]

    def owned(table: str, n: int, extra: Any) -> list[dict[str, Any]]:
        out = []
        for i in range(n):
            row = {
                "id": _uuid(rng),
                "visibility": rng.choice(t.VISIBILITIES),
                "owner_id": _maybe(rng, staff_ids, 0.2),
                **extra(i),
            }
            # Fixed cases first: private nobody's, private per rep, team nobody's, private of the inactive rep.
            if i == 0:
                row.update(visibility="private", owner_id=None)
            elif 1 <= i <= 3:
                row.update(visibility="private", owner_id=reps[i - 1])
            elif i == 4:
                row.update(visibility="team", owner_id=None)
            elif i == 5:
                row.update(visibility="private", owner_id=world.staff["inactive"])
            elif i == 6:
                row.update(visibility="team", owner_id=reps[0])
            out.append(row)
        world.notable[f"{table}.private_nobody"] = out[0]["id"]
        for k in range(3):
            world.notable[f"{table}.private_rep{k + 1}"] = out[k + 1]["id"]
        return out

    world.rows["companies"] = owned("companies", N_OWNED, lambda i: {"name": f"Company {i}", "industry": "x"})
    company_ids = [r["id"] for r in world.rows["companies"]]
    world.rows["contacts"] = owned(
        "contacts",
        N_OWNED,
        lambda i: {
            "first_name": f"Contact {i}",
            "company_id": _maybe(rng, company_ids),
            "status": rng.choice(t.CONTACT_STATUSES),
            "tags": rng.sample(["vip", "cold", "warm"], rng.randint(0, 2)),
        },
    )
    contact_ids = [r["id"] for r in world.rows["contacts"]]
    world.rows["deals"] = owned(
        "deals",
        N_OWNED,
        lambda i: {
            "title": f"Deal {i}",
            "amount": Decimal(rng.randint(0, 10_000_000)) / 100,
            "currency": "USD",
            "stage": rng.choice(t.STAGES),
            "probability": rng.randint(0, 100),
            "position": rng.random(),
            "contact_id": _maybe(rng, contact_ids),
            "company_id": _maybe(rng, company_ids),
        },
    )
    deal_ids = [r["id"] for r in world.rows["deals"]]

    activities = []
    for i in range(N_ACTIVITIES):
        activities.append(
            {
                "id": _uuid(rng),
                "type": rng.choice(t.ACTIVITY_TYPES),
                "subject": f"Activity {i}",
                "completed": rng.random() < 0.3,
                "contact_id": _maybe(rng, contact_ids, 0.4),
                "company_id": _maybe(rng, company_ids, 0.4),
                "deal_id": _maybe(rng, deal_ids, 0.4),
                "owner_id": _maybe(rng, staff_ids, 0.2),
                "assigned_to": _maybe(rng, staff_ids, 0.4),
            }
        )
    # rep1's own activity on rep2's private deal: hidden from rep1 (and so not writable by rep1 either).
    activities[0].update(
        contact_id=None,
        company_id=None,
        deal_id=world.notable["deals.private_rep2"],
        owner_id=world.staff["rep1"],
        assigned_to=world.staff["rep1"],
    )
    # No parents at all: every active staff member reads it.
    activities[1].update(contact_id=None, company_id=None, deal_id=None, owner_id=None, assigned_to=None)
    # Only a team company referenced, owned by rep3: readable by all staff, writable by rep3.
    activities[2].update(
        contact_id=None, company_id=world.rows["companies"][4]["id"], deal_id=None, owner_id=reps[2], assigned_to=None
    )
    # A readable deal but a private company of somebody else: hidden from rep1.
    activities[3].update(
        contact_id=None,
        company_id=world.notable["companies.private_rep3"],
        deal_id=world.rows["deals"][6]["id"],
        owner_id=reps[0],
        assigned_to=None,
    )
    world.notable["activity.on_rep2_private_deal"] = activities[0]["id"]
    world.notable["activity.orphan"] = activities[1]["id"]
    world.notable["activity.rep3_on_team_company"] = activities[2]["id"]
    world.notable["activity.rep1_with_rep3_private_company"] = activities[3]["id"]
    world.rows["activities"] = activities

    interactions = []
    for i in range(N_INTERACTIONS):
        interactions.append(
            {
                "id": _uuid(rng),
                "contact_id": rng.choice(contact_ids),
                "platform_id": _maybe(rng, platform_ids),
                "kind": rng.choice(t.INTERACTION_KINDS),
                "direction": rng.choice(t.DIRECTIONS),
                "summary": f"Interaction {i}",
                "staff_id": _maybe(rng, staff_ids, 0.2),
            }
        )
    interactions[0].update(contact_id=world.notable["contacts.private_nobody"], staff_id=reps[0])
    world.notable["interaction.on_private_nobody_contact"] = interactions[0]["id"]
    world.rows["interactions"] = interactions
    return world


def principals(world: World) -> dict[str, Principal]:
    roles = {"admin": "admin", "manager": "manager", "inactive": "rep"}
    out = {"anon": ANON, "service": SERVICE}
    for name, sid in world.staff.items():
        out[name] = Principal(
            role="authenticated",
            user_id=str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
            staff_id=sid,
            staff_role=roles.get(name, "rep"),
            active=name != "inactive",
        )
    out["no_staff"] = Principal(role="authenticated", user_id=str(uuid.uuid4()))
    # The API role decides first: staff fields on an anon principal grant nothing.
    out["anon_with_staff_fields"] = Principal(
        role="anon", staff_id=world.staff["admin"], staff_role="admin", active=True
    )
    return out


# --- an independent oracle, from the rules as documented in wexlot.crm.access -----------------


def oracle_read(p: Principal, table: str, row: dict[str, Any], data: dict[str, dict[str, dict]]) -> bool:
    if p.role == "service_role":
        return True
    if p.role != "authenticated" or not p.active or p.staff_id is None:
        return False
    if p.staff_role in ("admin", "manager") or table in ("staff", "platforms"):
        return True
    if table in OWNED:
        return row["visibility"] == "team" or row["owner_id"] == p.staff_id
    return all(
        row[col] is None or row[col] not in data[parent] or oracle_read(p, parent, data[parent][row[col]], data)
        for col, parent in PARENT_COLUMNS[table]
    )


def oracle_write(p: Principal, table: str, row: dict[str, Any], data: dict[str, dict[str, dict]]) -> bool:
    if p.role == "service_role":
        return True
    if p.role != "authenticated" or not p.active or p.staff_id is None:
        return False
    if table in ("staff", "platforms"):
        return p.staff_role == "admin"
    if p.staff_role in ("admin", "manager"):
        return True
    return oracle_read(p, table, row, data) and p.staff_id in {row[c] for c in RESPONSIBLE[table]}


# --- the test ---------------------------------------------------------------------------------


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = sync_engine(database_url)
    yield eng
    eng.dispose()


def load(engine: Engine, world: World) -> dict[str, dict[str, dict[str, Any]]]:
    with engine.begin() as conn:
        for name in INSERT_ORDER:
            rows = world.rows[name]
            # executemany needs one key set per statement: group rows by their keys.
            by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in rows:
                by_keys.setdefault(tuple(sorted(row)), []).append(row)
            for group in by_keys.values():
                conn.execute(t.CRM_TABLES[name].insert(), group)
    with engine.connect() as conn:
        return {
            name: {r["id"]: dict(r) for r in conn.execute(select(tbl)).mappings()} for name, tbl in t.CRM_TABLES.items()
        }


@dataclass
class Verdicts:
    sql_read: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (principal, table) → ids
    sql_write: dict[tuple[str, str], set[str]] = field(default_factory=dict)


@pytest.mark.parametrize("seed", SEEDS)
def test_sql_predicates_and_row_tests_agree(engine: Engine, seed: int) -> None:
    world = generate(seed)
    data = load(engine, world)
    assert {n: len(rows) for n, rows in data.items()} == {n: len(world.rows[n]) for n in t.CRM_TABLES}

    def parents(table: str, row_id: Any) -> dict[str, Any] | None:
        return data[table].get(row_id)

    people = principals(world)
    verdicts = Verdicts()
    mismatches: list[str] = []
    with engine.connect() as conn:
        for pname, principal in people.items():
            for table, tbl in t.CRM_TABLES.items():
                for kind, predicate, row_test, oracle, store in (
                    ("read", access.read_predicate, access.can_read_row, oracle_read, verdicts.sql_read),
                    ("write", access.write_predicate, access.can_write_row, oracle_write, verdicts.sql_write),
                ):
                    query = select(tbl.c.id).where(predicate(principal, table))
                    by_sql = {str(i) for i in conn.execute(query).scalars()}
                    by_row = {i for i, row in data[table].items() if row_test(principal, table, row, parents)}
                    by_oracle = {i for i, row in data[table].items() if oracle(principal, table, row, data)}
                    store[(pname, table)] = by_sql
                    if not by_sql == by_row == by_oracle:
                        mismatches.append(
                            f"{kind} {table} as {pname}: sql-only={sorted(by_sql - by_row)} "
                            f"row-only={sorted(by_row - by_sql)} "
                            f"oracle-vs-sql +{sorted(by_oracle - by_sql)} -{sorted(by_sql - by_oracle)}"
                        )
    assert mismatches == []
    assert_facts(world, data, verdicts)


def assert_facts(world: World, data: dict[str, dict[str, dict[str, Any]]], v: Verdicts) -> None:
    """Facts that hold whatever the seed, so that the agreement above cannot be vacuous."""
    everything = {table: set(rows) for table, rows in data.items()}
    read, write = v.sql_read, v.sql_write
    for table in t.CRM_TABLES:
        assert read[("service", table)] == write[("service", table)] == everything[table]
        for nobody in ("anon", "inactive", "no_staff", "anon_with_staff_fields"):
            assert read[(nobody, table)] == write[(nobody, table)] == set(), (nobody, table)
        for elevated in ("admin", "manager"):
            assert read[(elevated, table)] == everything[table], (elevated, table)
        for rep in ("rep1", "rep2", "rep3"):
            assert write[(rep, table)] <= read[(rep, table)], (rep, table)
        assert write[("admin", table)] == everything[table]

    for table in ("staff", "platforms"):
        for rep in ("rep1", "rep2", "rep3"):
            assert read[(rep, table)] == everything[table]
            assert write[(rep, table)] == set()
        assert write[("manager", table)] == set()

    for table in ("companies", "contacts", "deals", "activities", "interactions"):
        assert write[("manager", table)] == everything[table]

    for table in OWNED:
        team = {i for i, r in data[table].items() if r["visibility"] == "team"}
        nobody_private = world.notable[f"{table}.private_nobody"]
        for k, rep in enumerate(("rep1", "rep2", "rep3"), start=1):
            seen = read[(rep, table)]
            assert team <= seen
            assert seen < read[("manager", table)], f"{rep} must see strictly fewer {table} than the manager"
            assert nobody_private not in seen
            assert world.notable[f"{table}.private_rep{k}"] in seen
            assert world.notable[f"{table}.private_rep{k}"] in write[(rep, table)]
            others = {world.notable[f"{table}.private_rep{j}"] for j in (1, 2, 3) if j != k}
            assert not others & seen
            owned_by_rep = {i for i, r in data[table].items() if r["owner_id"] == world.staff[rep]}
            assert write[(rep, table)] == owned_by_rep
            assert write[(rep, table)] < seen  # team rows of others: readable, not writable

    on_private_deal = world.notable["activity.on_rep2_private_deal"]
    assert on_private_deal not in read[("rep1", "activities")]
    assert on_private_deal not in write[("rep1", "activities")]  # although rep1 owns it
    assert on_private_deal in read[("rep2", "activities")]
    assert on_private_deal not in read[("rep3", "activities")]
    orphan = world.notable["activity.orphan"]
    for rep in ("rep1", "rep2", "rep3"):
        assert orphan in read[(rep, "activities")]
        assert orphan not in write[(rep, "activities")]
    on_team_company = world.notable["activity.rep3_on_team_company"]
    assert on_team_company in read[("rep1", "activities")]
    assert on_team_company in write[("rep3", "activities")]
    assert on_team_company not in write[("rep1", "activities")]
    mixed = world.notable["activity.rep1_with_rep3_private_company"]
    assert mixed not in read[("rep1", "activities")]
    assert mixed in read[("rep3", "activities")]
    hidden_interaction = world.notable["interaction.on_private_nobody_contact"]
    for rep in ("rep1", "rep2", "rep3"):
        assert hidden_interaction not in read[(rep, "interactions")]
    assert hidden_interaction in read[("manager", "interactions")]
    # Reps see some but not all activities and interactions.
    for table in ("activities", "interactions"):
        for rep in ("rep1", "rep2", "rep3"):
            assert set() < read[(rep, table)] < everything[table], (rep, table)


def test_parent_lookup_missing_parent_counts_as_readable() -> None:
    """A reference to a row that is gone (realtime sees the delete first) hides nothing."""
    rep = Principal(role="authenticated", staff_id=str(uuid.uuid4()), staff_role="rep", active=True)
    row = {"id": "x", "contact_id": str(uuid.uuid4()), "company_id": None, "deal_id": None}
    assert access.can_read_row(rep, "activities", row, lambda table, row_id: None)
    private = {"id": row["contact_id"], "visibility": "private", "owner_id": None}
    assert not access.can_read_row(rep, "activities", row, lambda table, row_id: private)
    assert not access.can_read_row(ANON, "activities", row, lambda table, row_id: None)
