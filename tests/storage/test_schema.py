"""The migrated database against ``wexlot.crm.tables``: columns, keys, indexes, checks — on both backends.

Every check here is done the way an outside writer meets the schema: raw SQL through the sync
engine, and on SQLite also through the stdlib ``sqlite3`` module with ``PRAGMA foreign_keys=ON``
(what the sqlite3 shell does). A check the database does not enforce is one that psql or the shell
can break, whatever the server validates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Boolean, Engine, Float, Integer, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator, TypeEngine

from wexlot.auth.tables import auth_tables
from wexlot.crm import tables as t
from wexlot.storage import migrate
from wexlot.storage.engine import sync_engine

AUTH_PG_SCHEMA = "auth"

# How each CRM-internal foreign key behaves on delete (None: NO ACTION, i.e. the delete is refused,
# or — for staff — turned into a deactivation by a trigger).
DELETE_RULES: dict[tuple[str, str], str | None] = {
    ("contacts", "company_id"): "SET NULL",
    ("deals", "contact_id"): "SET NULL",
    ("deals", "company_id"): "SET NULL",
    ("activities", "contact_id"): "SET NULL",
    ("activities", "company_id"): "SET NULL",
    ("activities", "deal_id"): "SET NULL",
    ("interactions", "contact_id"): "CASCADE",
    ("interactions", "platform_id"): "SET NULL",
}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = sync_engine(database_url)
    yield eng
    eng.dispose()


def _sqlite_path(url: str) -> str:
    path = make_url(url).database
    assert path
    return path


def _shell(url: str) -> sqlite3.Connection:
    """A connection as the sqlite3 shell user makes it: autocommit, foreign keys on."""
    conn = sqlite3.connect(_sqlite_path(url), isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _insert_sql(table: str, values: dict[str, Any]) -> str:
    cols = ", ".join(values)
    params = ", ".join(f":{c}" for c in values)
    return f"INSERT INTO {table} ({cols}) VALUES ({params}) RETURNING id"


# --- columns, keys and indexes ---------------------------------------------------------------


def test_migrated_to_head(database_url: str) -> None:
    assert migrate.head()
    assert migrate.current(database_url) == migrate.head()


def test_database_has_exactly_the_crm_tables(engine: Engine, backend: str) -> None:
    """The CRM tables, the auth tables (SQLite: ``auth_*``) and wexlot's own ``wexlot_*`` bookkeeping."""
    names = set(inspect(engine).get_table_names())
    internal = {n for n in names if n.startswith("wexlot_")}
    expected = {*t.CRM_TABLES, "alembic_version", *internal}
    if backend == "sqlite":
        expected |= {"auth_users", "auth_sessions", "auth_refresh_tokens"}
    assert names == expected


@pytest.mark.parametrize("table", sorted(t.CRM_TABLES))
def test_columns_match_the_table_definition(engine: Engine, table: str) -> None:
    reflected = {c["name"]: c for c in inspect(engine).get_columns(table)}
    declared = t.CRM_TABLES[table].c
    assert set(reflected) == {c.name for c in declared}
    nullability = {c.name: (c.nullable, reflected[c.name]["nullable"]) for c in declared}
    assert {name: pair for name, pair in nullability.items() if pair[0] != pair[1]} == {}


def _declared_impl(column_type: TypeEngine[Any], dialect: Any) -> TypeEngine[Any]:
    if isinstance(column_type, TypeDecorator):
        return column_type.load_dialect_impl(dialect)
    return column_type


@pytest.mark.parametrize("table", sorted(t.CRM_TABLES))
def test_column_types_match_the_table_definition(engine: Engine, table: str) -> None:
    """Same type family per column (SQLite: same storage class; Flag is an INTEGER 0/1 there)."""
    reflected = {c["name"]: c["type"] for c in inspect(engine).get_columns(table)}
    wrong = {}
    for column in t.CRM_TABLES[table].c:
        expected = _declared_impl(column.type, engine.dialect)
        got = reflected[column.name]
        want_affinity = expected._type_affinity
        if engine.dialect.name == "sqlite" and want_affinity is Boolean:
            want_affinity = Integer
        if got._type_affinity is not want_affinity:
            wrong[column.name] = (str(got), str(expected))
        elif want_affinity is Float and engine.dialect.name == "postgresql":
            # double precision, never real
            if str(got) != "DOUBLE PRECISION":
                wrong[column.name] = (str(got), "DOUBLE PRECISION")
        elif engine.dialect.name == "postgresql":
            for attr in ("timezone", "precision", "scale"):
                if hasattr(expected, attr) and getattr(got, attr, None) != getattr(expected, attr):
                    wrong[column.name] = (f"{got} {attr}={getattr(got, attr, None)}", str(expected))
    assert wrong == {}


def _delete_rules(engine: Engine, table: str) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(table, column) → (referred table, ON DELETE action or None for NO ACTION/RESTRICT)."""
    out: dict[tuple[str, str], tuple[str, str | None]] = {}
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            for row in conn.exec_driver_sql(f"PRAGMA foreign_key_list({table})"):
                action = row[6] if row[6] not in ("NO ACTION", "RESTRICT") else None
                out[(table, row[3])] = (row[2], action)
        else:
            for fk in inspect(conn).get_foreign_keys(table):
                assert len(fk["constrained_columns"]) == 1
                action = fk["options"].get("ondelete")
                if action in ("NO ACTION", "RESTRICT"):
                    action = None
                out[(table, fk["constrained_columns"][0])] = (fk["referred_table"], action)
    return out


@pytest.mark.parametrize("table", sorted(t.CRM_TABLES))
def test_foreign_keys_and_delete_rules(engine: Engine, table: str) -> None:
    found = _delete_rules(engine, table)
    # staff.user_id points into the auth tables, which wexlot.crm.tables does not model.
    crm_found = {k: v for k, v in found.items() if v[0] in t.CRM_TABLES}
    declared = {(table, fk.parent.name): fk.column.table.name for fk in t.CRM_TABLES[table].foreign_keys}
    assert {k: v[0] for k, v in crm_found.items()} == declared
    assert {k: v[1] for k, v in crm_found.items()} == {k: DELETE_RULES.get(k) for k in declared}
    if table == "staff":
        assert found[("staff", "user_id")] == ("auth_users" if engine.dialect.name == "sqlite" else "users", "SET NULL")


def _indexed_leading_columns(engine: Engine, table: str, schema: str | None = None) -> set[str]:
    insp = inspect(engine)
    leading = {ix["column_names"][0] for ix in insp.get_indexes(table, schema=schema) if ix["column_names"]}
    leading |= {uc["column_names"][0] for uc in insp.get_unique_constraints(table, schema=schema)}
    pk = insp.get_pk_constraint(table, schema=schema)["constrained_columns"]
    if pk:
        leading.add(pk[0])
    return leading


def _fk_columns(engine: Engine, table: str, schema: str | None = None) -> set[str]:
    cols = set()
    for fk in inspect(engine).get_foreign_keys(table, schema=schema):
        assert len(fk["constrained_columns"]) == 1
        cols.add(fk["constrained_columns"][0])
    return cols


@pytest.mark.parametrize("table", sorted(t.CRM_TABLES))
def test_every_foreign_key_column_is_indexed(engine: Engine, table: str) -> None:
    fk_columns = _fk_columns(engine, table)
    assert fk_columns, table  # every CRM table has at least updated_by
    assert "updated_by" in fk_columns
    assert fk_columns - _indexed_leading_columns(engine, table) == set()


def _auth_location(engine: Engine) -> tuple[str | None, str]:
    return (None, "auth_") if engine.dialect.name == "sqlite" else (AUTH_PG_SCHEMA, "")


def test_every_foreign_key_column_in_the_database_is_indexed(engine: Engine) -> None:
    """The same rule for the auth tables and anything else a migration adds."""
    auth_schema, _ = _auth_location(engine)
    missing = []
    for schema in {None, auth_schema}:
        for table in inspect(engine).get_table_names(schema=schema):
            for column in sorted(_fk_columns(engine, table, schema) - _indexed_leading_columns(engine, table, schema)):
                missing.append(f"{schema + '.' if schema else ''}{table}.{column}")
    assert missing == [], f"foreign-key columns without an index: {missing}"


def test_auth_tables_match_their_definition(engine: Engine) -> None:
    schema, prefix = _auth_location(engine)
    insp = inspect(engine)
    assert {n for n in insp.get_table_names(schema=schema) if n.startswith(prefix)} >= {
        prefix + n for n in ("users", "sessions", "refresh_tokens")
    }
    for table in vars(auth_tables(engine.dialect.name)).values():
        # An INTEGER PRIMARY KEY is SQLite's rowid: reflected as nullable, but NULL there means "assign one".
        reflected = {
            c["name"]: bool(c["nullable"] and not c.get("primary_key"))
            for c in insp.get_columns(table.name, schema=schema)
        }
        assert reflected == {c.name: c.nullable for c in table.c}, table.name


# --- check constraints: raw INSERTs that must fail -------------------------------------------


def _base_row(table: str, run: Callable[[str, dict[str, Any]], Any]) -> dict[str, Any]:
    """The smallest valid row for ``table``; parents are created through ``run``."""
    if table == "staff":
        return {"full_name": "Check Person", "email": "check@example.com"}
    if table == "platforms":
        return {"name": "Check Platform"}
    if table == "companies":
        return {"name": "Check Co"}
    if table == "contacts":
        return {"first_name": "Check"}
    if table == "deals":
        return {"title": "Check deal"}
    if table == "activities":
        return {"subject": "Check activity"}
    if table == "interactions":
        contact_id = run(_insert_sql("contacts", {"first_name": "Parent"}), {"first_name": "Parent"})
        return {"contact_id": contact_id}
    raise AssertionError(table)


# (table, column, values the database must reject, a value it must accept)
CHECKS: list[tuple[str, str, list[Any], Any]] = [
    ("staff", "role", ["owner", "Admin", "", "REP"], "manager"),
    ("companies", "visibility", ["public", "Team", ""], "private"),
    ("contacts", "visibility", ["public", "PRIVATE"], "private"),
    ("deals", "visibility", ["public", "everyone"], "private"),
    ("contacts", "status", ["won", "Lead", ""], "customer"),
    ("deals", "stage", ["closed", "WON", "Lead", ""], "won"),
    ("activities", "type", ["visit", "Call", ""], "meeting"),
    ("interactions", "kind", ["fax", "Email", ""], "chat"),
    ("interactions", "direction", ["both", "Inbound", ""], "inbound"),
    ("deals", "probability", [-1, 101, 1000], 100),
    ("deals", "currency", ["usd", "Usd", "US", "USDX", "", "123", "U$D", "US ", " US", "E-R"], "EUR"),
    ("staff", "full_name", [""], "Somebody"),
    ("staff", "email", ["", "a@"], "a@b.c"),
    ("platforms", "name", [""], "Fax"),
    ("companies", "name", [""], "Acme"),
    ("contacts", "first_name", [""], "Ann"),
    ("deals", "title", [""], "Big one"),
    ("activities", "subject", [""], "Call back"),
]
SQLITE_CHECKS: list[tuple[str, str, list[Any], Any]] = [
    # integer cents only: a REAL or a text amount is not money
    ("deals", "amount", [12.5, 0.01, "12.50", "abc", "", "12,50", 100_000_000_000_000, -100_000_000_000_000], 1250),
    ("staff", "is_active", [2, -1, "yes", "true"], 0),
    ("platforms", "is_active", [2, "no"], 1),
    ("activities", "completed", [2, "t"], 1),
    ("contacts", "tags", ["vip", '{"a": 1}', '"vip"', "[1"], '["vip"]'),
    ("companies", "id", ["short", "x" * 37], "00000000-0000-4000-8000-000000000001"),
]


def _check_id(case: tuple[str, str, list[Any], Any]) -> str:
    return f"{case[0]}.{case[1]}"


def _rejected_through_engine(url: str, table: str, column: str, bad: list[Any], good: Any) -> list[Any]:
    """Insert each value in its own rolled-back transaction; return the bad ones the database accepted."""
    accepted = []
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            for value in [*bad, good]:
                trans = conn.begin()
                try:
                    row = {
                        **_base_row(table, lambda sql, params: conn.execute(text(sql), params).scalar_one()),
                        column: value,
                    }
                    assert conn.execute(text(_insert_sql(table, row)), row).scalar_one()
                except IntegrityError:
                    if value is good:
                        raise
                    continue
                finally:
                    trans.rollback()
                if value is not good:
                    accepted.append(value)
    finally:
        engine.dispose()
    return accepted


def _rejected_through_shell(url: str, table: str, column: str, bad: list[Any], good: Any) -> list[Any]:
    accepted = []
    conn = _shell(url)
    try:
        for value in [*bad, good]:
            conn.execute("BEGIN")
            try:
                row = {**_base_row(table, lambda sql, params: conn.execute(sql, params).fetchone()[0]), column: value}
                assert conn.execute(_insert_sql(table, row), row).fetchone()[0]
            except sqlite3.IntegrityError:
                if value is good:
                    raise
                continue
            finally:
                conn.execute("ROLLBACK")
            if value is not good:
                accepted.append(value)
    finally:
        conn.close()
    return accepted


@pytest.mark.parametrize("case", CHECKS, ids=_check_id)
def test_check_constraints_reject_bad_values(database_url: str, backend: str, case: tuple) -> None:
    table, column, bad, good = case
    assert _rejected_through_engine(database_url, table, column, bad, good) == [], (
        f"{table}.{column}: the database accepted these values from a raw INSERT"
    )
    if backend == "sqlite":
        assert _rejected_through_shell(database_url, table, column, bad, good) == [], (
            f"{table}.{column}: the sqlite3 shell could insert these values"
        )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("case", SQLITE_CHECKS, ids=_check_id)
def test_sqlite_storage_class_checks(database_url: str, case: tuple) -> None:
    table, column, bad, good = case
    assert _rejected_through_engine(database_url, table, column, bad, good) == []
    assert _rejected_through_shell(database_url, table, column, bad, good) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_amount_is_stored_as_integer_cents(database_url: str) -> None:
    conn = _shell(database_url)
    try:
        conn.execute("INSERT INTO deals (title, amount) VALUES ('cents', 1999)")
        conn.execute("INSERT INTO deals (title) VALUES ('default')")
        rows = dict(conn.execute("SELECT title, typeof(amount) || ':' || amount FROM deals").fetchall())
    finally:
        conn.close()
    assert rows == {"cents": "integer:1999", "default": "integer:0"}


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_amount_is_exact_numeric(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO deals (title, amount) VALUES ('exact', 0.1 + 0.2)"))
        amount = conn.execute(text("SELECT amount::text FROM deals")).scalar_one()
        assert amount == "0.30"
