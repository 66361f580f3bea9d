"""Which CRM tables broadcast changes: the ``supabase_realtime`` publication, on either backend.

* PostgreSQL: the real publication (``pg_publication_tables``). Added tables get ``REPLICA IDENTITY
  FULL`` so UPDATE/DELETE carry the whole old row; pgoutput re-reads the publication, so a change
  applies to transactions committed after it, without a restart.
* SQLite: the ``wexlot_publication`` table, which the capture triggers read at write time.

Only the CRM tables (:data:`wexlot.crm.tables.TABLE_NAMES`) are managed; anything else an operator
put in the PostgreSQL publication is reported by :func:`published_tables` but never touched.
Every function runs in the caller's transaction (commit to apply). Each operation is written once
as a generator of SQL steps and driven by the async or the sync (CLI) wrapper.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection

from wexlot.crm.tables import TABLE_NAMES

PUBLICATION = "supabase_realtime"

Rows = list[tuple[Any, ...]]
Step = tuple[str, dict[str, Any]]
Plan = Generator[Step, Rows, list[str]]


def _dialect(dialect: str) -> str:
    if dialect in ("postgresql", "postgres"):
        return "postgresql"
    if dialect == "sqlite":
        return "sqlite"
    raise ValueError(f"unsupported dialect {dialect!r}")


def check_tables(tables: Iterable[str]) -> set[str]:
    """The given names as a set; ValueError naming the first one that is not a CRM table."""
    if isinstance(tables, str):
        raise TypeError("tables must be a collection of table names, not a string")
    out = set()
    for table in tables:
        if table not in TABLE_NAMES:
            raise ValueError(f"{table!r} cannot be published; the CRM tables are: {', '.join(sorted(TABLE_NAMES))}")
        out.add(table)
    return out


# --- plans ----------------------------------------------------------------------------------------


def _published(dialect: str) -> Plan:
    if _dialect(dialect) == "postgresql":
        rows = yield (
            "SELECT tablename FROM pg_publication_tables WHERE pubname = :pub AND schemaname = 'public'",
            {"pub": PUBLICATION},
        )
    else:
        rows = yield ("SELECT table_name FROM wexlot_publication", {})
    return sorted(str(r[0]) for r in rows)


def _set(dialect: str, tables: Iterable[str]) -> Plan:
    wanted = check_tables(tables)
    dialect = _dialect(dialect)
    current = set((yield from _published(dialect)))
    add = sorted(wanted - current)
    drop = sorted((current & set(TABLE_NAMES)) - wanted)
    if dialect == "sqlite":
        for table in drop:
            yield ("DELETE FROM wexlot_publication WHERE table_name = :t", {"t": table})
        for table in add:
            yield ("INSERT OR IGNORE INTO wexlot_publication (table_name) VALUES (:t)", {"t": table})
    else:
        yield from _postgres_set(wanted, add, drop)
    return sorted((current - set(drop)) | set(add))


def _postgres_set(wanted: set[str], add: list[str], drop: list[str]) -> Generator[Step, Rows, None]:
    exists = yield ("SELECT puballtables FROM pg_publication WHERE pubname = :pub", {"pub": PUBLICATION})
    if not exists:
        yield (f"CREATE PUBLICATION {PUBLICATION}", {})
    elif exists[0][0]:
        raise ValueError(f"publication {PUBLICATION} is FOR ALL TABLES; its tables cannot be chosen")
    # Whole old rows for every published table; checked first so that no lock is taken needlessly.
    for table in sorted(wanted):
        ident = yield ("SELECT relreplident FROM pg_class WHERE oid = CAST(:t AS regclass)", {"t": f"public.{table}"})
        if ident[0][0] != "f":
            yield (f"ALTER TABLE public.{table} REPLICA IDENTITY FULL", {})
    if add:
        yield (f"ALTER PUBLICATION {PUBLICATION} ADD TABLE {', '.join(f'public.{t}' for t in add)}", {})
    if drop:
        yield (f"ALTER PUBLICATION {PUBLICATION} DROP TABLE {', '.join(f'public.{t}' for t in drop)}", {})


def _enable(dialect: str, tables: Iterable[str]) -> Plan:
    more = check_tables(tables)
    current = yield from _published(dialect)
    return (yield from _set(dialect, (set(current) & set(TABLE_NAMES)) | more))


def _disable(dialect: str, tables: Iterable[str]) -> Plan:
    fewer = check_tables(tables)
    current = yield from _published(dialect)
    return (yield from _set(dialect, (set(current) & set(TABLE_NAMES)) - fewer))


# --- drivers ----------------------------------------------------------------------------------------


async def _run_async(conn: AsyncConnection, plan: Plan) -> list[str]:
    try:
        sql, params = next(plan)
        while True:
            result = await conn.execute(text(sql), params)
            sql, params = plan.send([tuple(r) for r in result] if result.returns_rows else [])
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _run_sync(conn: Connection, plan: Plan) -> list[str]:
    try:
        sql, params = next(plan)
        while True:
            result = conn.execute(text(sql), params)
            sql, params = plan.send([tuple(r) for r in result] if result.returns_rows else [])
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def published_tables(conn: AsyncConnection, dialect: str) -> list[str]:
    """The published tables in the public schema, sorted."""
    return await _run_async(conn, _published(dialect))


async def set_published(conn: AsyncConnection, dialect: str, tables: Iterable[str]) -> list[str]:
    """Publish exactly ``tables`` among the CRM tables; returns the published tables afterwards."""
    return await _run_async(conn, _set(dialect, tables))


async def enable(conn: AsyncConnection, dialect: str, tables: Iterable[str]) -> list[str]:
    """Add ``tables`` to the publication; returns the published tables afterwards."""
    return await _run_async(conn, _enable(dialect, tables))


async def disable(conn: AsyncConnection, dialect: str, tables: Iterable[str]) -> list[str]:
    """Remove ``tables`` from the publication; returns the published tables afterwards."""
    return await _run_async(conn, _disable(dialect, tables))


def published_tables_sync(conn: Connection, dialect: str) -> list[str]:
    return _run_sync(conn, _published(dialect))


def set_published_sync(conn: Connection, dialect: str, tables: Iterable[str]) -> list[str]:
    return _run_sync(conn, _set(dialect, tables))


def enable_sync(conn: Connection, dialect: str, tables: Iterable[str]) -> list[str]:
    return _run_sync(conn, _enable(dialect, tables))


def disable_sync(conn: Connection, dialect: str, tables: Iterable[str]) -> list[str]:
    return _run_sync(conn, _disable(dialect, tables))
