"""Choosing which tables broadcast, on both backends, and that a change applies without a restart.

On SQLite "applies" means the capture triggers write (or stop writing) ``wexlot_changes`` for the
next statement; on PostgreSQL it means pgoutput, read through a throwaway logical slot, includes (or
leaves out) the table for transactions committed after the change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from wexlot.crm.tables import TABLE_NAMES
from wexlot.realtime import publication
from wexlot.storage.database import Database
from wexlot.storage.engine import dialect_of, sync_engine

ALL = sorted(TABLE_NAMES)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = sync_engine(database_url)
    try:
        yield eng
    finally:
        eng.dispose()


def published(engine: Engine) -> list[str]:
    """What a fresh connection sees (i.e. what was committed)."""
    with engine.connect() as conn:
        return publication.published_tables_sync(conn, engine.dialect.name)


@pytest.mark.asyncio
async def test_set_enable_disable_through_the_async_api(database_url: str, engine: Engine) -> None:
    db = Database(database_url)
    dialect = dialect_of(database_url)
    try:
        async with db.read() as conn:
            assert await publication.published_tables(conn, dialect) == ALL
        async with db.write() as conn:
            assert await publication.set_published(conn, dialect, {"deals", "contacts"}) == ["contacts", "deals"]
        assert published(engine) == ["contacts", "deals"]
        async with db.write() as conn:
            assert await publication.enable(conn, dialect, ["companies", "deals"]) == ["companies", "contacts", "deals"]
        async with db.write() as conn:
            assert await publication.disable(conn, dialect, {"deals", "staff"}) == ["companies", "contacts"]
        assert published(engine) == ["companies", "contacts"]
        async with db.write() as conn:
            assert await publication.set_published(conn, dialect, set()) == []
        assert published(engine) == []
        async with db.write() as conn:
            assert await publication.set_published(conn, dialect, TABLE_NAMES) == ALL
        assert published(engine) == ALL
    finally:
        await db.close()


def test_sync_api_for_the_cli(engine: Engine) -> None:
    dialect = engine.dialect.name
    with engine.begin() as conn:
        assert publication.disable_sync(conn, dialect, {"activities", "interactions"}) == sorted(
            set(ALL) - {"activities", "interactions"}
        )
    with engine.begin() as conn:
        assert publication.enable_sync(conn, dialect, {"interactions"}) == sorted(set(ALL) - {"activities"})
    with engine.begin() as conn:
        assert publication.set_published_sync(conn, dialect, ["platforms"]) == ["platforms"]
    assert published(engine) == ["platforms"]
    with engine.begin() as conn:  # rolled back with the caller's transaction
        publication.set_published_sync(conn, dialect, ALL)
        conn.rollback()
    assert published(engine) == ["platforms"]


@pytest.mark.parametrize("bad", ["auth_users", "wexlot_changes", "pg_class", "Contacts"])
def test_only_crm_tables_can_be_published(engine: Engine, bad: str) -> None:
    dialect = engine.dialect.name
    for change in (publication.set_published_sync, publication.enable_sync, publication.disable_sync):
        with engine.begin() as conn, pytest.raises(ValueError, match=repr(bad)):
            change(conn, dialect, {"contacts", bad})
    with engine.begin() as conn, pytest.raises(TypeError):
        publication.enable_sync(conn, dialect, "contacts")
    assert published(engine) == ALL


def _count_changes(engine: Engine, table: str) -> int:
    sql = text("SELECT count(*) FROM wexlot_changes WHERE table_name = :t")
    with engine.connect() as conn:
        return int(conn.execute(sql, {"t": table}).scalar_one())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_toggle_applies_to_the_very_next_write(engine: Engine) -> None:
    with engine.begin() as conn:
        publication.disable_sync(conn, "sqlite", {"contacts"})
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO contacts (first_name) VALUES ('quiet')"))
        conn.execute(text("INSERT INTO companies (name) VALUES ('loud')"))
    assert (_count_changes(engine, "contacts"), _count_changes(engine, "companies")) == (0, 1)
    with engine.begin() as conn:
        publication.enable_sync(conn, "sqlite", {"contacts"})
    with engine.begin() as conn:
        conn.execute(text("UPDATE contacts SET notes = 'heard'"))
    assert _count_changes(engine, "contacts") == 1


# --- PostgreSQL -------------------------------------------------------------------------------------------


def _autocommit(engine: Engine) -> Engine:
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _decoded(engine: Engine, slot: str) -> bytes:
    """All pgoutput messages since the last call, concatenated (a relation message names its table)."""
    with _autocommit(engine).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT data FROM pg_logical_slot_get_binary_changes(:slot, NULL, NULL, 'proto_version', '1', "
                "'publication_names', 'supabase_realtime')"
            ),
            {"slot": slot},
        )
        return b"".join(bytes(r[0]) for r in rows)


def _flushed_write(engine: Engine, *statements: str) -> None:
    """Commit with a WAL flush: the test cluster runs synchronous_commit=off, and logical decoding
    through SQL only reads flushed WAL."""
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = on"))
        for sql in statements:
            conn.execute(text(sql))


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.postgres
def test_postgres_toggle_applies_to_the_replication_stream_without_a_restart(engine: Engine) -> None:
    slot = f"test_pub_{uuid.uuid4().hex[:12]}"
    with _autocommit(engine).connect() as conn:
        conn.execute(text("SELECT pg_create_logical_replication_slot(:s, 'pgoutput')"), {"s": slot})
    try:
        with engine.begin() as conn:
            publication.disable_sync(conn, "postgresql", {"contacts"})
        _flushed_write(engine, "INSERT INTO contacts (first_name) VALUES ('quiet')",
                       "INSERT INTO companies (name) VALUES ('loud')")  # fmt: skip
        stream = _decoded(engine, slot)
        assert b"public\x00companies\x00" in stream and b"public\x00contacts\x00" not in stream

        with engine.begin() as conn:
            publication.enable_sync(conn, "postgresql", {"contacts"})
        _flushed_write(engine, "UPDATE contacts SET notes = 'heard'")
        assert b"public\x00contacts\x00" in _decoded(engine, slot)
    finally:
        with _autocommit(engine).connect() as conn:
            conn.execute(text("SELECT pg_drop_replication_slot(:s)"), {"s": slot})


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.postgres
def test_postgres_published_tables_get_replica_identity_full(engine: Engine) -> None:
    def identity(table: str) -> str:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT relreplident FROM pg_class WHERE oid = CAST(:t AS regclass)"),
                                    {"t": f"public.{table}"}).scalar_one())  # fmt: skip

    with engine.begin() as conn:
        publication.disable_sync(conn, "postgresql", {"deals"})
        conn.execute(text("ALTER TABLE deals REPLICA IDENTITY DEFAULT"))
    assert identity("deals") == "d"
    with engine.begin() as conn:
        publication.enable_sync(conn, "postgresql", {"deals"})
    assert identity("deals") == "f"
    assert all(identity(t) == "f" for t in TABLE_NAMES)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
@pytest.mark.postgres
def test_postgres_leaves_other_published_tables_alone_and_recreates_a_dropped_publication(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE extra (id int PRIMARY KEY)"))
        conn.execute(text("ALTER PUBLICATION supabase_realtime ADD TABLE public.extra"))
    with engine.begin() as conn:
        assert publication.set_published_sync(conn, "postgresql", {"contacts"}) == ["contacts", "extra"]
    with engine.begin() as conn:
        conn.execute(text("DROP PUBLICATION supabase_realtime"))
    assert published(engine) == []
    with engine.begin() as conn:
        assert publication.enable_sync(conn, "postgresql", {"deals"}) == ["deals"]
    assert published(engine) == ["deals"]
