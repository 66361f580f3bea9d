"""Defaults, triggers and delete rules, exercised by writers OUTSIDE the server on both backends.

"Outside" means raw SQL with none of the server's bookkeeping: through the sync engine (``engine``)
and through a bare DB-API connection in autocommit mode (``shell``) — the stdlib ``sqlite3`` module
with ``PRAGMA foreign_keys=ON`` as the sqlite3 shell user has it, and psycopg2 as psql would be.
Whatever such a writer does, ids, timestamps, versions, ``updated_by``, ``closed_at`` and
``completed_at`` must come out as if the server had made the change.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from wexlot.crm import rules
from wexlot.crm import tables as t
from wexlot.storage.engine import dialect_of, sync_engine

TICK = 0.02  # seconds between writes whose timestamps must differ (SQLite's clock has ms resolution)
SLACK = dt.timedelta(milliseconds=5)
SQLITE_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
PAST = "2020-01-02T03:04:05.000000Z"
PAST_DT = dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

# A plain column per table that an outside writer might change.
PLAIN_COLUMN = {
    "staff": "title",
    "platforms": "url",
    "companies": "notes",
    "contacts": "notes",
    "deals": "title",
    "activities": "description",
    "interactions": "summary",
}


class Outside:
    """A writer outside the server: every statement is its own transaction, nothing is added to it."""

    def __init__(self, url: str, kind: str) -> None:
        self.url = url
        self.kind = kind
        self.dialect = dialect_of(url)
        self.rowcount = -1
        self._engine: Engine | None = None
        self._conn: Any = None
        if kind == "engine":
            self._engine = sync_engine(url)
        elif self.dialect == "sqlite":
            path = make_url(url).database
            assert path
            self._conn = sqlite3.connect(path, isolation_level=None)
            self._conn.execute("PRAGMA foreign_keys = ON")
        else:
            self._conn = psycopg2.connect(url)
            self._conn.autocommit = True

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self._conn is not None:
            self._conn.close()

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        params = params or {}
        if self._engine is not None:
            with self._engine.begin() as conn:
                result = conn.execute(text(sql), params)
                rows = [tuple(r) for r in result] if result.returns_rows else []
                self.rowcount = result.rowcount
                return rows
        if self.dialect == "sqlite":
            cur = self._conn.execute(sql, params)
            rows = cur.fetchall()
            self.rowcount = cur.rowcount
            return rows
        with self._conn.cursor() as cur:
            cur.execute(re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql), params)
            self.rowcount = cur.rowcount
            return list(cur.fetchall()) if cur.description is not None else []

    def insert(self, table: str, **values: Any) -> str:
        cols = ", ".join(values)
        marks = ", ".join(f":{c}" for c in values)
        ((new_id,),) = self.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks}) RETURNING id", values)
        return str(new_id)

    def update(self, table: str, row_id: str, **values: Any) -> None:
        sets = ", ".join(f"{c} = :{c}" for c in values)
        self.execute(f"UPDATE {table} SET {sets} WHERE id = :row_id", {**values, "row_id": row_id})
        assert self.rowcount == 1

    def delete(self, table: str, row_id: str) -> int:
        self.execute(f"DELETE FROM {table} WHERE id = :row_id", {"row_id": row_id})
        return self.rowcount

    # Minimal valid rows ---------------------------------------------------------------------

    def staff(self, role: str = "rep") -> str:
        n = uuid.uuid4().hex[:8]
        return self.insert("staff", full_name=f"Staff {n}", email=f"{n}@example.com", role=role)

    def minimal(self, table: str) -> str:
        if table == "staff":
            return self.staff()
        if table == "platforms":
            return self.insert("platforms", name=f"Platform {uuid.uuid4().hex[:8]}")
        if table == "companies":
            return self.insert("companies", name="Acme")
        if table == "contacts":
            return self.insert("contacts", first_name="Ann")
        if table == "deals":
            return self.insert("deals", title="Deal")
        if table == "activities":
            return self.insert("activities", subject="Call back")
        if table == "interactions":
            return self.insert("interactions", contact_id=self.minimal("contacts"))
        raise AssertionError(table)


@pytest.fixture(params=["engine", "shell"])
def out(request: pytest.FixtureRequest, database_url: str) -> Iterator[Outside]:
    writer = Outside(database_url, request.param)
    yield writer
    writer.close()


@pytest.fixture
def shell(database_url: str) -> Iterator[Outside]:
    writer = Outside(database_url, "shell")
    yield writer
    writer.close()


@pytest.fixture
def reader(database_url: str) -> Iterator[Engine]:
    engine = sync_engine(database_url)
    yield engine
    engine.dispose()


def get(engine: Engine, table: str, row_id: str) -> dict[str, Any] | None:
    tbl = t.CRM_TABLES[table]
    with engine.connect() as conn:
        row = conn.execute(select(tbl).where(tbl.c.id == row_id)).mappings().first()
    return dict(row) if row is not None else None


def must_get(engine: Engine, table: str, row_id: str) -> dict[str, Any]:
    row = get(engine, table, row_id)
    assert row is not None, f"{table} {row_id} is gone"
    return row


def raw_text(url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """One value straight from the SQLite file, bypassing the column types."""
    path = make_url(url).database
    assert path
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def server_update(url: str, table: str, row_id: str, values: dict[str, Any], actor: str | None) -> None:
    """An update made the way the server makes it: rules.update_values, plus the actor setting on PG."""
    tbl = t.CRM_TABLES[table]
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            if actor and conn.dialect.name == "postgresql":
                conn.execute(text("SELECT set_config('wexlot.actor', :a, true)"), {"a": actor})
            stmt = tbl.update().where(tbl.c.id == row_id).values(**rules.update_values(tbl, values, actor, now()))
            assert conn.execute(stmt).rowcount == 1
    finally:
        engine.dispose()


# --- inserts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("table", list(t.CRM_TABLES))
def test_bare_insert_gets_id_timestamps_and_version_1(
    out: Outside, reader: Engine, database_url: str, backend: str, table: str
) -> None:
    before = now()
    first, second = out.minimal(table), out.minimal(table)
    after = now()
    assert first != second
    for row_id in (first, second):
        assert str(uuid.UUID(row_id)) == row_id
        assert uuid.UUID(row_id).version == 4
        row = must_get(reader, table, row_id)
        assert row["version"] == 1
        assert row["updated_by"] is None
        assert row["created_at"] == row["updated_at"]
        assert before - SLACK <= row["created_at"] <= after + SLACK
        if backend == "sqlite":
            stamp = raw_text(database_url, f"SELECT created_at FROM {table} WHERE id = ?", (row_id,))
            assert SQLITE_STAMP.match(stamp), stamp


def test_insert_defaults(out: Outside, reader: Engine) -> None:
    staff_id = out.staff()
    company = out.insert("companies", name="Acme")
    deal = out.insert("deals", title="Deal")
    contact = out.insert("contacts", first_name="Ann")
    activity = out.insert("activities", subject="Todo")
    interaction = out.insert("interactions", contact_id=contact)
    assert {k: must_get(reader, "staff", staff_id)[k] for k in ("role", "is_active")} == {
        "role": "rep",
        "is_active": True,
    }
    assert must_get(reader, "companies", company)["visibility"] == "team"
    c = must_get(reader, "contacts", contact)
    assert (c["status"], c["tags"], c["visibility"]) == ("lead", [], "team")
    d = must_get(reader, "deals", deal)
    assert (str(d["amount"]), d["currency"], d["stage"], d["probability"], d["position"], d["closed_at"]) == (
        "0.00",
        "USD",
        "lead",
        10,
        0,
        None,
    )
    a = must_get(reader, "activities", activity)
    assert (a["type"], a["completed"], a["completed_at"]) == ("task", False, None)
    i = must_get(reader, "interactions", interaction)
    assert (i["kind"], i["direction"]) == ("other", "outbound")
    assert abs(i["occurred_at"] - i["created_at"]) < dt.timedelta(seconds=1)


# --- updates: version, updated_at, updated_by -------------------------------------------------


@pytest.mark.parametrize("table", list(t.CRM_TABLES))
def test_outside_update_bumps_version_once_and_clears_updated_by(
    out: Outside, reader: Engine, database_url: str, table: str
) -> None:
    actor = out.staff("admin")
    row_id = out.minimal(table)
    column = PLAIN_COLUMN[table]
    server_update(database_url, table, row_id, {column: "by the server"}, actor)
    served = must_get(reader, table, row_id)
    assert (served["version"], served["updated_by"]) == (2, actor)

    for expected_version in (3, 4, 5):
        time.sleep(TICK)
        before = now()
        out.update(table, row_id, **{column: f"outside {expected_version}"})
        row = must_get(reader, table, row_id)
        assert row[column] == f"outside {expected_version}"
        assert row["version"] == expected_version  # +1, never +2
        assert row["updated_by"] is None
        assert row["updated_at"] >= before - SLACK
        assert row["updated_at"] > served["updated_at"]
        assert row["created_at"] == served["created_at"]
        assert row["id"] == row_id
        served = row


def test_outside_update_cannot_forge_bookkeeping(out: Outside, reader: Engine) -> None:
    """Writing id-less bookkeeping columns from outside: updated_by and created_at are the trigger's."""
    actor = out.staff("admin")
    deal = out.insert("deals", title="Deal")
    created = must_get(reader, "deals", deal)
    time.sleep(TICK)
    out.update("deals", deal, title="forged", updated_by=actor, created_at=PAST, updated_at=PAST)
    row = must_get(reader, "deals", deal)
    assert row["version"] == 2
    assert row["updated_by"] is None
    assert row["created_at"] == created["created_at"]
    assert row["updated_at"] > created["updated_at"]


def test_outside_update_of_many_rows_bumps_each_once(out: Outside, reader: Engine) -> None:
    deals = [out.insert("deals", title=f"Deal {n}") for n in range(4)]
    out.update("deals", deals[0], title="touched once")
    out.execute("UPDATE deals SET probability = 50")
    assert out.rowcount == 4
    versions = {d: must_get(reader, "deals", d)["version"] for d in deals}
    assert versions == {deals[0]: 3, deals[1]: 2, deals[2]: 2, deals[3]: 2}


def test_noop_outside_update_still_counts(out: Outside, reader: Engine) -> None:
    deal = out.insert("deals", title="Deal")
    out.execute("UPDATE deals SET title = title WHERE id = :id", {"id": deal})
    assert must_get(reader, "deals", deal)["version"] == 2


@pytest.mark.parametrize("table", ["deals", "companies", "staff"])
def test_server_update_is_one_row_update(out: Outside, reader: Engine, database_url: str, table: str) -> None:
    """The server writes version+1 itself (SQLite) or the BEFORE trigger does (PG): +1 either way."""
    actor = out.staff("manager")
    row_id = out.minimal(table)
    for expected in (2, 3):
        server_update(database_url, table, row_id, {PLAIN_COLUMN[table]: f"v{expected}"}, actor)
        row = must_get(reader, table, row_id)
        assert (row["version"], row["updated_by"]) == (expected, actor)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_actor_setting_names_updated_by(database_url: str, reader: Engine, shell: Outside) -> None:
    actor = shell.staff("rep")
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            with conn.begin():
                conn.execute(text("SELECT set_config('wexlot.actor', :a, true)"), {"a": actor})
                company = conn.execute(text("INSERT INTO companies (name) VALUES ('Acme') RETURNING id")).scalar_one()
                company = str(company)
                row = conn.execute(
                    text("SELECT version, updated_by FROM companies WHERE id = :id"), {"id": company}
                ).one()
                assert (row[0], str(row[1])) == (1, actor)
            assert must_get(reader, "companies", company)["updated_by"] == actor

            with conn.begin():
                conn.execute(text("SELECT set_config('wexlot.actor', :a, true)"), {"a": actor})
                conn.execute(text("UPDATE companies SET notes = 'actor' WHERE id = :id"), {"id": company})
            row_after = must_get(reader, "companies", company)
            assert (row_after["version"], row_after["updated_by"]) == (2, actor)

            # Same session, next transaction, no setting: the actor was transaction-local.
            with conn.begin():
                conn.execute(text("UPDATE companies SET notes = 'nobody' WHERE id = :id"), {"id": company})
                insert = text("INSERT INTO deals (title) VALUES ('anonymous') RETURNING id")
                deal = str(conn.execute(insert).scalar_one())
            row_after = must_get(reader, "companies", company)
            assert (row_after["version"], row_after["updated_by"]) == (3, None)
            assert must_get(reader, "deals", deal)["updated_by"] is None
    finally:
        engine.dispose()


# --- deals.closed_at --------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["won", "lost"])
def test_insert_closed_deal_sets_closed_at(out: Outside, reader: Engine, stage: str) -> None:
    deal = out.insert("deals", title="Closed", stage=stage)
    row = must_get(reader, "deals", deal)
    assert row["closed_at"] is not None
    assert abs(row["closed_at"] - row["created_at"]) < dt.timedelta(seconds=1)
    assert (row["version"], row["updated_by"]) == (1, None)


def test_insert_closed_deal_keeps_given_closed_at(out: Outside, reader: Engine) -> None:
    deal = out.insert("deals", title="Imported", stage="won", closed_at=PAST)
    row = must_get(reader, "deals", deal)
    assert (row["closed_at"], row["version"]) == (PAST_DT, 1)


@pytest.mark.parametrize("stage", ["lead", "qualified", "proposal", "negotiation"])
def test_insert_open_deal_has_no_closed_at(out: Outside, reader: Engine, stage: str) -> None:
    deal = out.insert("deals", title="Open", stage=stage)
    assert must_get(reader, "deals", deal)["closed_at"] is None
    # closed_at is NULL exactly when the deal is open, even when an outside writer supplies one.
    forged = out.insert("deals", title="Open with a date", stage=stage, closed_at=PAST)
    row = must_get(reader, "deals", forged)
    assert (row["stage"], row["closed_at"], row["version"]) == (stage, None, 1)


def test_deal_closed_at_follows_the_stage(out: Outside, reader: Engine) -> None:
    deal = out.insert("deals", title="Deal")
    out.update("deals", deal, stage="proposal")
    assert must_get(reader, "deals", deal)["closed_at"] is None

    time.sleep(TICK)
    before = now()
    out.update("deals", deal, stage="won")
    won = must_get(reader, "deals", deal)
    assert won["closed_at"] is not None and won["closed_at"] >= before - SLACK
    assert won["version"] == 3

    time.sleep(TICK)
    out.update("deals", deal, title="Renamed", amount=5, probability=90)
    kept = must_get(reader, "deals", deal)
    assert kept["closed_at"] == won["closed_at"]
    assert kept["updated_at"] > won["updated_at"]
    assert kept["version"] == 4

    time.sleep(TICK)
    out.update("deals", deal, stage="lost")
    lost = must_get(reader, "deals", deal)
    assert lost["closed_at"] is not None and lost["closed_at"] > won["closed_at"]

    out.update("deals", deal, stage="negotiation")
    reopened = must_get(reader, "deals", deal)
    assert reopened["closed_at"] is None

    time.sleep(TICK)
    out.update("deals", deal, stage="won")
    again = must_get(reader, "deals", deal)
    assert again["closed_at"] is not None and again["closed_at"] > lost["closed_at"]
    assert again["version"] == 7


def test_deal_closed_at_cannot_be_cleared_or_set_against_the_stage(out: Outside, reader: Engine) -> None:
    won = out.insert("deals", title="Won", stage="won")
    out.update("deals", won, closed_at=None)
    assert must_get(reader, "deals", won)["closed_at"] is not None
    # An outside writer may backdate the close of a closed deal.
    out.update("deals", won, closed_at=PAST)
    assert must_get(reader, "deals", won)["closed_at"] == PAST_DT

    open_deal = out.insert("deals", title="Open")
    out.update("deals", open_deal, closed_at=PAST)
    row = must_get(reader, "deals", open_deal)
    assert (row["closed_at"], row["version"]) == (None, 2)


def test_closing_a_deal_with_closed_at_equal_to_created_at_is_still_an_update(out: Outside, reader: Engine) -> None:
    """``SET stage='won', closed_at=created_at`` on a fresh deal is an ordinary outside update."""
    deal = out.insert("deals", title="Backfilled")
    created = must_get(reader, "deals", deal)
    time.sleep(TICK)
    out.execute("UPDATE deals SET stage = 'won', closed_at = created_at WHERE id = :id", {"id": deal})
    row = must_get(reader, "deals", deal)
    assert row["stage"] == "won" and row["closed_at"] is not None
    assert row["version"] == 2
    assert row["updated_at"] > created["updated_at"]


# --- activities.completed_at ------------------------------------------------------------------


def test_insert_completed_activity_sets_completed_at(out: Outside, reader: Engine) -> None:
    done = out.insert("activities", subject="Done", completed=True)
    row = must_get(reader, "activities", done)
    assert row["completed"] is True and row["completed_at"] is not None
    assert abs(row["completed_at"] - row["created_at"]) < dt.timedelta(seconds=1)
    assert row["version"] == 1

    given = out.insert("activities", subject="Imported", completed=True, completed_at=PAST)
    assert must_get(reader, "activities", given)["completed_at"] == PAST_DT


def test_insert_open_activity_has_no_completed_at(out: Outside, reader: Engine) -> None:
    todo = out.insert("activities", subject="Todo")
    assert must_get(reader, "activities", todo)["completed_at"] is None
    forged = out.insert("activities", subject="Todo with a date", completed=False, completed_at=PAST)
    row = must_get(reader, "activities", forged)
    assert (row["completed"], row["completed_at"], row["version"]) == (False, None, 1)


def test_activity_completed_at_follows_completed(out: Outside, reader: Engine) -> None:
    act = out.insert("activities", subject="Todo")
    time.sleep(TICK)
    before = now()
    out.update("activities", act, completed=True)
    done = must_get(reader, "activities", act)
    assert done["completed_at"] is not None and done["completed_at"] >= before - SLACK
    assert done["version"] == 2

    time.sleep(TICK)
    out.update("activities", act, subject="Renamed", description="more")
    kept = must_get(reader, "activities", act)
    assert kept["completed_at"] == done["completed_at"] and kept["version"] == 3

    out.update("activities", act, completed_at=None)
    assert must_get(reader, "activities", act)["completed_at"] is not None

    out.update("activities", act, completed=False)
    undone = must_get(reader, "activities", act)
    assert undone["completed_at"] is None

    out.update("activities", act, completed_at=PAST)
    assert must_get(reader, "activities", act)["completed_at"] is None

    time.sleep(TICK)
    out.update("activities", act, completed=True)
    redone = must_get(reader, "activities", act)
    assert redone["completed_at"] is not None and redone["completed_at"] > done["completed_at"]
    assert redone["version"] == 7


def test_completing_with_completed_at_equal_to_created_at_is_still_an_update(out: Outside, reader: Engine) -> None:
    act = out.insert("activities", subject="Backfilled")
    created = must_get(reader, "activities", act)
    time.sleep(TICK)
    out.execute("UPDATE activities SET completed = true, completed_at = created_at WHERE id = :id", {"id": act})
    row = must_get(reader, "activities", act)
    assert row["completed"] is True and row["completed_at"] is not None
    assert row["version"] == 2
    assert row["updated_at"] > created["updated_at"]


# --- delete rules -----------------------------------------------------------------------------


def test_deleting_a_company_detaches_its_records(out: Outside, reader: Engine) -> None:
    company = out.insert("companies", name="Acme")
    other = out.insert("companies", name="Other")
    contact = out.insert("contacts", first_name="Ann", company_id=company)
    deal = out.insert("deals", title="Deal", company_id=company, stage="won")
    activity = out.insert("activities", subject="Call", company_id=company, completed=True)
    bystander = out.insert("contacts", first_name="Bob", company_id=other)
    closed_at = must_get(reader, "deals", deal)["closed_at"]

    assert out.delete("companies", company) == 1
    assert get(reader, "companies", company) is None
    for table, row_id in (("contacts", contact), ("deals", deal), ("activities", activity)):
        row = must_get(reader, table, row_id)
        assert row["company_id"] is None, table
        assert (row["version"], row["updated_by"]) == (2, None), table
    assert must_get(reader, "deals", deal)["closed_at"] == closed_at
    assert must_get(reader, "activities", activity)["completed_at"] is not None
    assert must_get(reader, "contacts", bystander)["company_id"] == other


def test_deleting_a_contact_deletes_its_interactions_and_detaches_the_rest(out: Outside, reader: Engine) -> None:
    contact = out.insert("contacts", first_name="Ann")
    other = out.insert("contacts", first_name="Bob")
    interactions = [out.insert("interactions", contact_id=contact, kind=k) for k in ("email", "call")]
    kept_interaction = out.insert("interactions", contact_id=other)
    deal = out.insert("deals", title="Deal", contact_id=contact)
    activity = out.insert("activities", subject="Call", contact_id=contact)

    assert out.delete("contacts", contact) == 1
    assert get(reader, "contacts", contact) is None
    assert [get(reader, "interactions", i) for i in interactions] == [None, None]
    assert must_get(reader, "interactions", kept_interaction)["version"] == 1
    for table, row_id in (("deals", deal), ("activities", activity)):
        row = must_get(reader, table, row_id)
        assert (row["contact_id"], row["version"]) == (None, 2), table


def test_deleting_a_deal_detaches_its_activities(out: Outside, reader: Engine) -> None:
    contact = out.insert("contacts", first_name="Ann")
    deal = out.insert("deals", title="Deal", contact_id=contact)
    activity = out.insert("activities", subject="Call", deal_id=deal, contact_id=contact)
    assert out.delete("deals", deal) == 1
    row = must_get(reader, "activities", activity)
    assert (row["deal_id"], row["contact_id"], row["version"]) == (None, contact, 2)


def test_deleting_a_platform_detaches_its_interactions(out: Outside, reader: Engine) -> None:
    platform = out.insert("platforms", name="Fax")
    contact = out.insert("contacts", first_name="Ann")
    interaction = out.insert("interactions", contact_id=contact, platform_id=platform)
    assert out.delete("platforms", platform) == 1
    assert get(reader, "platforms", platform) is None
    row = must_get(reader, "interactions", interaction)
    assert (row["platform_id"], row["contact_id"], row["version"]) == (None, contact, 2)


def test_deleting_a_whole_graph_leaves_detached_activities(out: Outside, reader: Engine) -> None:
    """A whole graph goes away in the right order without FK errors (outside writers clean up)."""
    company = out.insert("companies", name="Acme")
    contact = out.insert("contacts", first_name="Ann", company_id=company)
    deal = out.insert("deals", title="Deal", contact_id=contact, company_id=company)
    out.insert("activities", subject="Call", deal_id=deal, contact_id=contact, company_id=company)
    out.insert("interactions", contact_id=contact)
    for table in ("deals", "contacts", "companies"):
        out.execute(f"DELETE FROM {table}")
    with reader.connect() as conn:
        counts = {n: conn.execute(text(f"SELECT count(*) FROM {n}")).scalar_one() for n in t.CRM_TABLES}
    assert counts == {**dict.fromkeys(t.CRM_TABLES, 0), "activities": 1}


# (table, column) that may point at a staff member, and how to make one do so.
STAFF_REFERENCES = [
    ("companies", "owner_id"),
    ("contacts", "owner_id"),
    ("deals", "owner_id"),
    ("activities", "owner_id"),
    ("activities", "assigned_to"),
    ("interactions", "staff_id"),
    ("platforms", "updated_by"),
    ("staff", "updated_by"),
    ("deals", "updated_by"),
]


@pytest.mark.parametrize(("table", "column"), STAFF_REFERENCES, ids=[f"{a}.{b}" for a, b in STAFF_REFERENCES])
def test_deleting_referenced_staff_deactivates_it(
    out: Outside, reader: Engine, database_url: str, table: str, column: str
) -> None:
    member = out.staff("rep")
    bystander = out.staff("rep")
    row_id = out.minimal(table)
    if column == "updated_by":
        server_update(database_url, table, row_id, {PLAIN_COLUMN[table]: "touched"}, member)
    else:
        out.update(table, row_id, **{column: member})
    referencing = must_get(reader, table, row_id)
    assert referencing[column] == member
    before = must_get(reader, "staff", member)

    out.delete("staff", member)
    after = must_get(reader, "staff", member)
    assert after["is_active"] is False
    assert after["version"] == before["version"] + 1
    assert {k: after[k] for k in ("full_name", "email", "role")} == {
        k: before[k] for k in ("full_name", "email", "role")
    }
    assert must_get(reader, table, row_id) == referencing  # the reference is untouched

    # Deleting it again changes nothing and raises nothing.
    out.delete("staff", member)
    assert must_get(reader, "staff", member) == after
    # The unreferenced bystander really goes.
    assert out.delete("staff", bystander) == 1
    assert get(reader, "staff", bystander) is None


def test_deleting_unreferenced_staff_deletes_it(out: Outside, reader: Engine, database_url: str) -> None:
    lonely = out.staff("manager")
    assert out.delete("staff", lonely) == 1
    assert get(reader, "staff", lonely) is None

    # A staff row that only its own updated_by points at is unreferenced, too.
    selfish = out.staff("admin")
    server_update(database_url, "staff", selfish, {"title": "edited myself"}, selfish)
    assert must_get(reader, "staff", selfish)["updated_by"] == selfish
    assert out.delete("staff", selfish) == 1
    assert get(reader, "staff", selfish) is None


def test_deleting_all_staff_keeps_the_referenced_ones(out: Outside, reader: Engine) -> None:
    owner, assignee, idle = out.staff("rep"), out.staff("rep"), out.staff("rep")
    out.insert("deals", title="Deal", owner_id=owner)
    out.insert("activities", subject="Call", assigned_to=assignee)
    out.execute("DELETE FROM staff")
    with reader.connect() as conn:
        left = dict(conn.execute(select(t.staff.c.id, t.staff.c.is_active)).all())
    assert left == {owner: False, assignee: False}
    assert idle not in left


def test_foreign_keys_are_enforced_for_outside_writers(out: Outside) -> None:
    missing = str(uuid.uuid4())
    for table, values in (
        ("contacts", {"first_name": "Ann", "company_id": missing}),
        ("deals", {"title": "Deal", "owner_id": missing}),
        ("interactions", {"contact_id": missing}),
        ("staff", {"full_name": "X", "email": "x@example.com", "user_id": missing}),
    ):
        with pytest.raises((IntegrityError, sqlite3.IntegrityError, psycopg2.IntegrityError)):
            out.insert(table, **values)


# --- auth tables ------------------------------------------------------------------------------


def test_auth_tables_are_separate(reader: Engine, backend: str) -> None:
    insp = inspect(reader)
    public = set(insp.get_table_names())
    assert set(t.CRM_TABLES) <= public
    assert not {"users", "sessions", "refresh_tokens"} & public
    if backend == "postgres":
        assert "auth" in insp.get_schema_names()
        assert set(insp.get_table_names(schema="auth")) == {"users", "sessions", "refresh_tokens"}
        assert not {n for n in public if n.startswith("auth")}
    else:
        assert {n for n in public if n.startswith("auth")} == {"auth_users", "auth_sessions", "auth_refresh_tokens"}


def test_deleting_an_auth_user_unlinks_staff_and_drops_sessions(
    out: Outside, reader: Engine, database_url: str, backend: str
) -> None:
    prefix = "auth." if backend == "postgres" else "auth_"
    user = out.insert(f"{prefix}users", email="ann@example.com")
    session = out.insert(f"{prefix}sessions", user_id=user)
    out.execute(
        f"INSERT INTO {prefix}refresh_tokens (token_hash, user_id, session_id) VALUES ('h1', :u, :s)",
        {"u": user, "s": session},
    )
    member = out.insert("staff", full_name="Ann", email="ann@example.com", user_id=user)
    assert must_get(reader, "staff", member)["user_id"] == user

    assert out.delete(f"{prefix}users", user) == 1
    row = must_get(reader, "staff", member)
    assert (row["user_id"], row["version"], row["is_active"]) == (None, 2, True)
    with reader.connect() as conn:
        sessions = conn.execute(text(f"SELECT count(*) FROM {prefix}sessions")).scalar_one()
        tokens = conn.execute(text(f"SELECT count(*) FROM {prefix}refresh_tokens")).scalar_one()
    assert (sessions, tokens) == (0, 0)
