"""The PostgreSQL change source against the real throwaway cluster (logical replication, pgoutput).

Writes go through plain psycopg2 connections, as psql would. The test cluster commits
asynchronously (``synchronous_commit = off``), and logical decoding reads only flushed WAL, so a
change may take a few hundred milliseconds to arrive; every wait has a timeout. Each test uses its
own node id, hence its own slot, and drops it at the end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
import pytest_asyncio
from sqlalchemy import select

from support.pg_cluster import PgCluster
from wexlot.crm.tables import CRM_TABLES
from wexlot.realtime.change import Change
from wexlot.realtime.sources.postgres import (
    PostgresChangeSource,
    RealtimeUnavailable,
    drop_slot,
    slot_name,
    wal_level_message,
)
from wexlot.storage.engine import sync_engine

TIMEOUT = 20.0
INSERT_PLATFORM = "INSERT INTO platforms (name) VALUES (%s)"
POSTGRES = pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


class Collector:
    """The handler: records each call; ``block`` (an Event) holds calls until it is set."""

    def __init__(self) -> None:
        self.batches: list[list[Change]] = []
        self.block: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self._arrived = asyncio.Event()

    @property
    def changes(self) -> list[Change]:
        return [c for batch in self.batches for c in batch]

    async def __call__(self, batch: Any) -> None:
        self.entered.set()
        if self.block is not None:
            await self.block.wait()
        self.batches.append(list(batch))
        self._arrived.set()

    async def wait_until(self, done: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
        async def loop() -> None:
            while not done():
                self._arrived.clear()
                if done():
                    return
                await self._arrived.wait()

        try:
            await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            tail = [(c.position, c.table, c.type) for c in self.changes[-5:]]
            raise AssertionError(f"{what} not within {timeout}s; {len(self.changes)} changes, last: {tail}") from None

    async def count(self, n: int, timeout: float = TIMEOUT) -> list[Change]:
        await self.wait_until(lambda: len(self.changes) >= n, f"{n} changes", timeout)
        return self.changes


class Shell:
    """A psql-like autocommit connection."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True

    def __call__(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description is not None else []

    def transaction(self, *statements: str | tuple[str, Any]) -> None:
        with self.conn.cursor() as cur:
            cur.execute("BEGIN")
            for stmt in statements:
                sql, params = stmt if isinstance(stmt, tuple) else (stmt, None)
                cur.execute(sql, params)
            cur.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def node_id() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def shell(database_url: str) -> Iterator[Shell]:
    sh = Shell(database_url)
    yield sh
    sh.close()


def make_source(url: str, node_id: str, **kw: Any) -> PostgresChangeSource:
    return PostgresChangeSource(url, node_id, feedback_interval=kw.pop("feedback_interval", 1.0), **kw)


@pytest_asyncio.fixture
async def running(database_url: str, node_id: str) -> AsyncIterator[tuple[PostgresChangeSource, Collector]]:
    source = make_source(database_url, node_id)
    collector = Collector()
    await source.start(collector)
    try:
        yield source, collector
    finally:
        await source.stop()
        drop_slot(database_url, node_id)


def rest_read(url: str, table: str, row_id: str) -> dict[str, Any]:
    """The row as a REST read returns it (the same SQLAlchemy types)."""
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            tbl = CRM_TABLES[table]
            return dict(conn.execute(select(tbl).where(tbl.c.id == row_id)).one()._mapping)
    finally:
        engine.dispose()


def new_staff(sh: Shell, name: str = "Sam") -> str:
    staff_id = str(uuid.uuid4())
    sh("INSERT INTO staff (id, full_name, email) VALUES (%s, %s, %s)", (staff_id, name, f"{staff_id}@example.com"))
    return staff_id


# --- pure bits ---------------------------------------------------------------------------------------


def test_slot_names_are_legal_and_distinct() -> None:
    assert slot_name("node1") == "wexlot_node1"
    assert slot_name("eu_2") == "wexlot_eu_2"
    odd = [slot_name(n) for n in ("Node-1", "node-1", "node_1", "x" * 80, "x" * 81, "ünï")]
    assert len(set(odd)) == len(odd)
    for name in odd:
        assert len(name) <= 63 and name.startswith("wexlot_") and name.replace("_", "").isalnum() and name.islower()


# --- delivery ----------------------------------------------------------------------------------------


@POSTGRES
@pytest.mark.asyncio
async def test_writes_arrive_in_commit_order_with_rest_typed_values(
    running: tuple[PostgresChangeSource, Collector], shell: Shell, database_url: str
) -> None:
    source, collector = running
    staff_id = new_staff(shell)
    company_id, deal_id = str(uuid.uuid4()), str(uuid.uuid4())
    shell("INSERT INTO companies (id, name, owner_id) VALUES (%s, 'Acme', %s)", (company_id, staff_id))
    shell(
        "INSERT INTO deals (id, title, amount, stage, probability, expected_close_date, position, company_id)"
        " VALUES (%s, 'Big', 125000.50, 'lead', 10, '2026-12-31', 2.5, %s)",
        (deal_id, company_id),
    )
    after_insert = rest_read(database_url, "deals", deal_id)
    shell("UPDATE deals SET stage = 'won', amount = 7 WHERE id = %s", (deal_id,))
    after_update = rest_read(database_url, "deals", deal_id)
    shell("DELETE FROM deals WHERE id = %s", (deal_id,))

    changes = await collector.count(5)
    assert [(c.table, c.type) for c in changes] == [
        ("staff", "INSERT"), ("companies", "INSERT"), ("deals", "INSERT"), ("deals", "UPDATE"), ("deals", "DELETE"),
    ]  # fmt: skip
    assert len(collector.batches) == 5  # one transaction each
    positions = [c.position for c in changes]
    assert positions == sorted(positions) and len(set(positions)) == 5
    stamps = [c.commit_timestamp for c in changes]
    assert stamps == sorted(stamps) and all(s.tzinfo is not None for s in stamps)

    insert, update, delete = changes[2:]
    assert insert.record == after_insert and insert.old_record is None
    assert isinstance(insert.record["amount"], Decimal) and insert.record["amount"] == Decimal("125000.50")
    assert insert.record["expected_close_date"] == dt.date(2026, 12, 31)
    assert isinstance(insert.record["created_at"], dt.datetime) and insert.record["created_at"].tzinfo is not None
    assert update.old_record == after_insert and update.record == after_update  # the whole old row
    assert update.record["closed_at"] is not None and update.record["version"] == 2
    assert delete.record is None and delete.old_record == after_update
    assert list(insert.record) == [c.name for c in CRM_TABLES["deals"].columns]

    # The history says the same, with the same positions: catch-up equals the live stream.
    assert await source.changes_since(0, ["*"], 100) == changes
    assert await source.changes_since(positions[1], ["deals"], 2) == changes[2:4]
    assert await source.changes_since(0, [], 100) == [] and await source.changes_since(0, ["*"], 0) == []
    assert await source.current_position() == positions[-1]
    assert await source.oldest_position() == positions[0]


@POSTGRES
@pytest.mark.asyncio
async def test_a_multi_statement_transaction_is_one_batch_with_one_commit_timestamp(
    running: tuple[PostgresChangeSource, Collector], shell: Shell
) -> None:
    _, collector = running
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    shell.transaction(
        ("INSERT INTO contacts (id, first_name, tags) VALUES (%s, 'Ann', ARRAY['vip', 'b c', 'with,comma'])", (a,)),
        ("INSERT INTO contacts (id, first_name) VALUES (%s, 'Bob')", (b,)),
        ("UPDATE contacts SET status = 'customer' WHERE id = %s", (a,)),
        ("DELETE FROM contacts WHERE id = %s", (b,)),
    )
    shell("INSERT INTO platforms (name) VALUES ('after')")
    await collector.count(5)
    first, second = collector.batches
    assert [(c.table, c.type) for c in first] == [
        ("contacts", "INSERT"), ("contacts", "INSERT"), ("contacts", "UPDATE"), ("contacts", "DELETE"),
    ]  # fmt: skip
    assert len({c.commit_timestamp for c in first}) == 1
    assert [c.position for c in first] == sorted(c.position for c in first)
    assert first[0].record is not None and first[0].record["tags"] == ["vip", "b c", "with,comma"]
    assert [(c.table, c.type) for c in second] == [("platforms", "INSERT")]
    assert second[0].commit_timestamp >= first[0].commit_timestamp and second[0].position > first[-1].position


@POSTGRES
@pytest.mark.asyncio
async def test_an_unchanged_toasted_10kb_notes_is_filled_from_the_old_row(
    running: tuple[PostgresChangeSource, Collector], shell: Shell
) -> None:
    source, collector = running
    notes = secrets.token_hex(5 * 1024)  # 10 KB that does not compress, so it is stored out of line
    row_id = str(uuid.uuid4())
    shell("INSERT INTO contacts (id, first_name, notes) VALUES (%s, 'Big', %s)", (row_id, notes))
    shell("UPDATE contacts SET status = 'prospect' WHERE id = %s", (row_id,))
    [(toast,)] = shell("SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'contacts'::regclass")
    assert shell(f"SELECT count(*) > 0 FROM {toast}") == [(True,)]  # stored out of line: pgoutput sends 'u'
    insert, update = await collector.count(2)
    assert insert.record is not None and insert.record["notes"] == notes
    assert update.record is not None and update.old_record is not None
    assert update.record["notes"] == notes
    assert update.old_record == insert.record
    assert (update.record["status"], update.record["version"]) == ("prospect", 2)
    [(_, stored_update)] = [(c.position, c) for c in await source.changes_since(insert.position, ["contacts"], 5)]
    assert stored_update == update


@POSTGRES
@pytest.mark.asyncio
async def test_a_10000_row_transaction_arrives_complete_and_in_order(
    running: tuple[PostgresChangeSource, Collector], shell: Shell
) -> None:
    _, collector = running
    shell(
        "INSERT INTO companies (name, notes) SELECT 'c' || lpad(i::text, 5, '0'), repeat('x', 200)"
        " FROM generate_series(1, 10000) AS i"
    )
    await collector.count(10000, timeout=120)
    [batch] = collector.batches
    assert [c.record["name"] for c in batch if c.record] == [f"c{i:05d}" for i in range(1, 10001)]
    positions = [c.position for c in batch]
    assert positions == list(range(positions[0], positions[0] + 10000))


@POSTGRES
@pytest.mark.asyncio
async def test_transactions_without_crm_changes_are_confirmed_without_history(
    running: tuple[PostgresChangeSource, Collector], shell: Shell, node_id: str
) -> None:
    source, collector = running
    shell("CREATE TABLE side (x int PRIMARY KEY)")
    shell("ALTER TABLE side REPLICA IDENTITY FULL")
    shell("ALTER PUBLICATION supabase_realtime ADD TABLE side")
    shell("INSERT INTO side VALUES (1)")
    shell("TRUNCATE contacts CASCADE")
    shell("INSERT INTO platforms (name) VALUES ('marker')")
    [marker] = await collector.count(1)
    assert marker.table == "platforms" and len(collector.batches) == 1
    [(count,)] = shell("SELECT count(*) FROM wexlot_changes")
    assert count == 1
    lsn = shell("SELECT pg_current_wal_insert_lsn()")[0][0]
    await wait_confirmed(shell, slot_name(node_id), lsn)
    assert source.status()["connected"] is True


async def wait_confirmed(shell: Shell, slot: str, lsn: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [(done,)] = shell(
            "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s", (lsn, slot)
        )
        if done:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"slot {slot} did not confirm {lsn} within {timeout}s")


# --- acknowledgement, restarts and recovery -------------------------------------------------------------


@POSTGRES
@pytest.mark.asyncio
async def test_the_slot_is_confirmed_only_after_the_handler_returned(
    database_url: str, node_id: str, shell: Shell
) -> None:
    slot = slot_name(node_id)
    collector = Collector()
    collector.block = asyncio.Event()
    source = make_source(database_url, node_id, stop_timeout=1.0)
    await source.start(collector)
    try:
        shell("INSERT INTO platforms (name) VALUES ('held')")
        after_commit = shell("SELECT pg_current_wal_insert_lsn()")[0][0]
        await asyncio.wait_for(collector.entered.wait(), TIMEOUT)
        await asyncio.sleep(2.5)  # several feedback intervals
        [(confirmed_past,)] = shell(
            "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
            (after_commit, slot),
        )
        assert not confirmed_past
        # Stopped while the handler is stuck: unconfirmed, so the server sends it again to the next run,
        # which stores nothing twice and leaves it to catch-up (it was in the history before it started).
        [held] = await source.changes_since(0, ["platforms"], 10)
        await source.stop()
        again = Collector()
        source = make_source(database_url, node_id)
        await source.start(again)
        await wait_confirmed(shell, slot, after_commit)
        assert source.resent == 1 and again.batches == []
        shell("INSERT INTO platforms (name) VALUES ('next')")
        [following] = await again.count(1)
        assert await source.changes_since(0, ["platforms"], 10) == [held, following]
    finally:
        await source.stop()
        drop_slot(database_url, node_id)


@POSTGRES
@pytest.mark.asyncio
async def test_restart_resumes_from_the_slot_and_history_survives(
    database_url: str, node_id: str, shell: Shell
) -> None:
    first = Collector()
    source = make_source(database_url, node_id)
    await source.start(first)
    try:
        for i in range(5):
            shell("INSERT INTO platforms (name) VALUES (%s)", (f"before {i}",))
        await first.count(5)
        await source.stop()
        for i in range(5):  # written while no server runs
            shell("INSERT INTO platforms (name) VALUES (%s)", (f"between {i}",))

        second = Collector()
        source = make_source(database_url, node_id)
        assert [c.position for c in await source.changes_since(0, ["platforms"], 100)] == [
            c.position for c in first.changes
        ]  # the history outlived the server
        await source.start(second)
        for i in range(3):
            shell("INSERT INTO platforms (name) VALUES (%s)", (f"after {i}",))
        got = await second.count(8)
        await asyncio.sleep(1.0)  # nothing more may come
        names = [c.record["name"] for c in second.changes if c.record]
        assert names == [f"between {i}" for i in range(5)] + [f"after {i}" for i in range(3)]
        everything = await source.changes_since(0, ["platforms"], 100)
        assert everything == first.changes + got
        positions = [c.position for c in everything]
        assert positions == sorted(set(positions))
    finally:
        await source.stop()
        drop_slot(database_url, node_id)


async def wait_for(done: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.05)


def terminate_walsender(shell: Shell, slot: str) -> int:
    rows = shell(
        "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a JOIN pg_replication_slots s"
        " ON s.active_pid = a.pid WHERE a.backend_type = 'walsender' AND s.slot_name = %s",
        (slot,),
    )
    return len(rows)


@POSTGRES
@pytest.mark.asyncio
async def test_a_killed_walsender_is_recovered_without_lost_or_duplicated_changes(
    running: tuple[PostgresChangeSource, Collector], database_url: str, node_id: str, shell: Shell,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    source, collector = running
    caplog.set_level(logging.WARNING, logger="wexlot.realtime.postgres")
    slot = slot_name(node_id)
    total = 400
    stop_writing = threading.Event()

    def write() -> None:
        sh = Shell(database_url)
        try:
            for i in range(total):
                if stop_writing.is_set():
                    return
                if i % 10 == 0:  # some multi-row transactions too
                    sh.transaction(
                        *[("INSERT INTO platforms (name) VALUES (%s)", (f"p{i:04d}-{j}",)) for j in range(3)]
                    )
                else:
                    sh(INSERT_PLATFORM, (f"p{i:04d}",))
                time.sleep(0.004)
        finally:
            sh.close()

    writer = asyncio.get_running_loop().run_in_executor(None, write)
    try:
        for kill in range(3):
            await wait_for(lambda k=kill: source.connected and source.restarts == k, f"stream #{kill} running")
            await asyncio.sleep(0.3)
            await wait_for(lambda: terminate_walsender(shell, slot) == 1, "a walsender to terminate")
            await wait_for(lambda k=kill: source.restarts == k + 1, f"restart #{kill + 1}")
        await asyncio.wait_for(writer, 60)
    finally:
        stop_writing.set()
        await asyncio.wait_for(writer, 60)

    expected = []
    for i in range(total):
        expected += [f"p{i:04d}-{j}" for j in range(3)] if i % 10 == 0 else [f"p{i:04d}"]
    await collector.count(len(expected), timeout=60)
    await asyncio.sleep(1.0)
    names = [c.record["name"] for c in collector.changes if c.record]
    assert len(names) == len(set(names)), "duplicated changes"
    assert names == expected
    positions = [c.position for c in collector.changes]
    assert positions == sorted(set(positions))
    assert source.restarts == 3
    assert sum("restart #" in r.getMessage() for r in caplog.records) == source.restarts


@POSTGRES
@pytest.mark.asyncio
async def test_two_node_ids_get_two_slots_and_share_the_history(database_url: str, shell: Shell) -> None:
    nodes = [f"a{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}"]
    sources = [make_source(database_url, n) for n in nodes]
    collectors = [Collector(), Collector()]
    try:
        for source, collector in zip(sources, collectors, strict=True):
            await source.start(collector)
        slots = {r[0] for r in shell("SELECT slot_name FROM pg_replication_slots WHERE plugin = 'pgoutput'")}
        assert {slot_name(n) for n in nodes} <= slots
        for i in range(4):
            shell("INSERT INTO platforms (name) VALUES (%s)", (f"shared {i}",))
        a, b = [await c.count(4) for c in collectors]
        assert a == b  # same changes, same positions
        [(count,)] = shell("SELECT count(*) FROM wexlot_changes")
        assert count == 4  # stored once, whichever node came first
    finally:
        for source, node in zip(sources, nodes, strict=True):
            await source.stop()
            drop_slot(database_url, node)


@POSTGRES
@pytest.mark.asyncio
async def test_transactions_sent_again_after_a_reconnect_are_skipped(
    running: tuple[PostgresChangeSource, Collector], node_id: str, shell: Shell
) -> None:
    source, collector = running
    collector.block = asyncio.Event()
    for i in range(3):
        shell(INSERT_PLATFORM, (f"q{i}",))
    await asyncio.wait_for(collector.entered.wait(), TIMEOUT)
    await wait_for(lambda: source.status()["queued"] == 2, "two transactions queued behind the stuck one")
    # Nothing is confirmed yet, so the new walsender sends all three again.
    await wait_for(lambda: terminate_walsender(shell, slot_name(node_id)) == 1, "a walsender to terminate")
    await wait_for(lambda: source.resent == 3, "the three re-sent transactions skipped")
    collector.block.set()
    shell(INSERT_PLATFORM, ("q3",))
    changes = await collector.count(4)
    await asyncio.sleep(0.5)
    assert [c.record["name"] for c in collector.changes if c.record] == ["q0", "q1", "q2", "q3"]
    assert [c.position for c in changes] == sorted({c.position for c in changes})


@POSTGRES
@pytest.mark.asyncio
async def test_a_full_queue_holds_the_stream_without_losing_anything(
    database_url: str, node_id: str, shell: Shell
) -> None:
    collector = Collector()
    collector.block = asyncio.Event()
    source = make_source(database_url, node_id, queue_size=1)
    await source.start(collector)
    try:
        for i in range(6):
            shell(INSERT_PLATFORM, (f"w{i}",))
        await asyncio.wait_for(collector.entered.wait(), TIMEOUT)
        await asyncio.sleep(3.0)  # the reader waits on the full queue, still sending status updates
        assert source.connected and source.status()["queued"] == 1
        collector.block.set()
        await collector.count(6)
        assert [c.record["name"] for c in collector.changes if c.record] == [f"w{i}" for i in range(6)]
    finally:
        await source.stop()
        drop_slot(database_url, node_id)


def restart_postgres(cluster: PgCluster) -> None:
    """A clean (fast) shutdown and start on the same port (PgCluster's ``_run`` runs pg_ctl as its user)."""
    pg_ctl, data = str(cluster.bindir / "pg_ctl"), str(cluster.data_dir)
    result = cluster._run(pg_ctl, "restart", "-D", data, "-m", "fast", "-w", "-t", "30", "-o", f"-p {cluster.port}",
                          "-l", str(cluster.log_path), timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr + cluster.server_log()[-2000:]


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_a_postgres_restart_loses_and_duplicates_nothing() -> None:
    from wexlot.storage.migrate import upgrade

    with PgCluster() as cluster:
        url = cluster.create_database("restarts")
        upgrade(url)
        shell = Shell(url)
        collector = Collector()
        source = make_source(url, "node1", max_backoff=1.0)
        await source.start(collector)
        try:
            for i in range(3):
                shell(INSERT_PLATFORM, (f"a{i}",))
            await collector.count(3)
            await wait_confirmed(shell, slot_name("node1"), shell("SELECT pg_current_wal_insert_lsn()")[0][0])
            shell.close()
            restart_postgres(cluster)  # under a running source: it reconnects
            shell = Shell(url)
            for i in range(3):
                shell(INSERT_PLATFORM, (f"b{i}",))
            await collector.count(6)
            await source.stop()  # and now both restart
            confirmed = "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'wexlot_node1'"
            [(before,)] = shell(confirmed)
            shell.close()
            restart_postgres(cluster)
            shell = Shell(url)
            [(after,)] = shell(confirmed)
            rewound = shell("SELECT %s::pg_lsn < %s::pg_lsn", (after, before))[0][0]
            second = Collector()
            source = make_source(url, "node1")
            await source.start(second)
            shell(INSERT_PLATFORM, ("c0",))
            await second.count(1)
            await asyncio.sleep(1.0)
            assert [c.record["name"] for c in collector.changes if c.record] == ["a0", "a1", "a2", "b0", "b1", "b2"]
            assert [c.record["name"] for c in second.changes if c.record] == ["c0"]
            assert source.resent == (6 if rewound else 0)  # PostgreSQL 15 rewinds to its last checkpoint
            history = await source.changes_since(0, ["*"], 100)
            assert history == collector.changes + second.changes
        finally:
            await source.stop()
            shell.close()


# --- setup --------------------------------------------------------------------------------------------


@POSTGRES
@pytest.mark.asyncio
async def test_a_missing_publication_is_created_but_removed_tables_stay_removed(
    database_url: str, node_id: str, shell: Shell
) -> None:
    def published() -> set[str]:
        return {r[0] for r in shell("SELECT tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'")}

    shell("DROP PUBLICATION supabase_realtime")
    source = make_source(database_url, node_id)
    try:
        source.prepare()
        assert published() == set(CRM_TABLES)
        shell("ALTER PUBLICATION supabase_realtime DROP TABLE platforms")
        collector = Collector()
        await source.start(collector)
        assert published() == set(CRM_TABLES) - {"platforms"}
        shell("INSERT INTO platforms (name) VALUES ('unpublished')")
        shell("INSERT INTO companies (name) VALUES ('published')")
        [change] = await collector.count(1)
        assert change.table == "companies"
    finally:
        await source.stop()
        drop_slot(database_url, node_id)


@POSTGRES
@pytest.mark.asyncio
async def test_a_slot_of_another_database_is_refused(
    pg_cluster: PgCluster, pg_template: str, database_url: str, node_id: str
) -> None:
    other = pg_cluster.create_database(f"other_{node_id}", template=pg_template)
    try:
        PostgresChangeSource(other, node_id).prepare()
        with pytest.raises(RealtimeUnavailable, match="own WEXLOT_NODE_ID"):
            await PostgresChangeSource(database_url, node_id).start(Collector())
    finally:
        pg_cluster.drop_database(f"other_{node_id}")


@pytest.mark.postgres
@pytest.mark.asyncio
async def test_wal_level_replica_is_refused_with_the_fix() -> None:
    with PgCluster(settings={"wal_level": "replica"}) as cluster:
        source = PostgresChangeSource(cluster.url, "node1")
        with pytest.raises(RealtimeUnavailable) as info:
            await source.start(Collector())
        assert str(info.value) == wal_level_message("replica")
        assert str(info.value) == (
            "wal_level is 'replica'; realtime needs wal_level=logical: "
            "run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL"
        )
        assert cluster.psql("SELECT count(*) FROM pg_replication_slots") == [(0,)]


@POSTGRES
@pytest.mark.asyncio
async def test_stop_is_prompt_and_keeps_the_slot(database_url: str, node_id: str, shell: Shell) -> None:
    source = make_source(database_url, node_id, feedback_interval=10.0)
    try:
        await source.start(Collector())
        await asyncio.sleep(0.5)
        began = time.monotonic()
        await source.stop()
        assert time.monotonic() - began < 3.0
        active = "SELECT active FROM pg_replication_slots WHERE slot_name = %s"
        await wait_for(lambda: shell(active, (slot_name(node_id),)) == [(False,)], "the walsender to exit")
    finally:
        await source.stop()
        assert drop_slot(database_url, node_id) is True
        assert drop_slot(database_url, node_id) is False


# --- history retention ----------------------------------------------------------------------------------


@POSTGRES
@pytest.mark.asyncio
async def test_prune_deletes_an_old_prefix_but_keeps_the_newest_and_undelivered(
    running: tuple[PostgresChangeSource, Collector], shell: Shell
) -> None:
    source, collector = running
    for i in range(4):
        shell("INSERT INTO platforms (name) VALUES (%s)", (f"p{i}",))
    changes = await collector.count(4)
    positions = [c.position for c in changes]
    shell("UPDATE wexlot_changes SET committed_at = now() - interval '8 days' WHERE id <= %s", (positions[2],))
    assert await source.prune() == 3
    assert await source.oldest_position() == positions[3]
    assert [c.position for c in await source.changes_since(0, ["*"], 10)] == positions[3:]

    shell("UPDATE wexlot_changes SET committed_at = now() - interval '8 days'")
    assert await source.prune() == 0  # the newest row stays: positions never go backwards
    assert await source.current_position() == positions[3]

    collector.block = asyncio.Event()
    collector.entered.clear()
    shell("INSERT INTO platforms (name) VALUES ('pending 1')")
    shell("INSERT INTO platforms (name) VALUES ('pending 2')")
    await asyncio.wait_for(collector.entered.wait(), TIMEOUT)  # 'pending 1' is stuck in the handler
    await asyncio.sleep(1.0)  # and 'pending 2' stored and queued behind it
    shell("UPDATE wexlot_changes SET committed_at = now() - interval '8 days'")
    assert await source.prune() == 1  # p3 goes; neither pending change was handed over yet
    collector.block.set()
    await collector.count(6)
    await asyncio.sleep(0.2)
    assert await source.prune() == 1  # 'pending 1'; 'pending 2' is the newest
    shell("DELETE FROM wexlot_changes")
    assert await source.current_position() >= positions[3] + 2  # an emptied log still knows its position
    assert await source.oldest_position() == await source.current_position() + 1
