"""The SQLite change source against a real database file, written by the server and by outsiders.

"Server" writes go through ``Database.write()`` and call ``source.wake()`` as the app does; "shell"
writes use a bare stdlib ``sqlite3`` connection with ``PRAGMA foreign_keys=ON``, like the sqlite3
shell, and are only noticed through ``PRAGMA data_version`` polling.

To assert *exactly* which changes a write produced, each step ends with a sentinel insert from the
shell and waits for it: changes arrive in commit order, so everything between the previous sentinel
and this one is what the step produced. Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import shutil
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import delete, insert, update
from sqlalchemy.sql import Executable

from wexlot.crm import rules
from wexlot.crm import tables as t
from wexlot.realtime import publication
from wexlot.realtime.change import Change
from wexlot.realtime.sources.sqlite import SqliteChangeSource
from wexlot.storage.database import Database

TIMEOUT = 10.0
SENTINEL = "sentinel-"
_sentinels = itertools.count(1)


@pytest.fixture
def url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "wexlot.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


class Collector:
    """The handler: records every call; ``block`` (an Event) makes calls wait until it is set."""

    def __init__(self) -> None:
        self.batches: list[list[Change]] = []
        self.changes: list[Change] = []
        self.calls = 0
        self.block: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self._arrived = asyncio.Event()
        self._taken = 0

    async def __call__(self, batch: Any) -> None:
        self.calls += 1
        self.entered.set()
        if self.block is not None:
            await self.block.wait()
        self.batches.append(list(batch))
        self.changes.extend(batch)
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

    async def next(self, count: int, timeout: float = TIMEOUT) -> list[Change]:
        """The next ``count`` changes not taken yet (sentinels included)."""
        await self.wait_until(lambda: len(self.changes) >= self._taken + count, f"{count} more changes", timeout)
        out = self.changes[self._taken : self._taken + count]
        self._taken += count
        return out

    def take_through(self, position: int) -> list[Change]:
        out = [c for c in self.changes[self._taken :] if c.position <= position]
        self._taken += len(out)
        return out


class Harness:
    def __init__(self, url: str, source: SqliteChangeSource) -> None:
        self.url = url
        self.path = url.removeprefix("sqlite:///")
        self.source = source
        self.collector = Collector()
        self.db = Database(url)
        self.shell = sqlite3.connect(self.path, isolation_level=None)
        self.shell.execute("PRAGMA foreign_keys = ON")
        self.shell.execute("PRAGMA busy_timeout = 5000")

    async def server(self, stmt: Executable) -> list[Any]:
        async with self.db.write() as conn:
            result = await conn.execute(stmt)
            rows = [tuple(r) for r in result] if result.returns_rows else []
        self.source.wake()
        return rows

    def sh(self, sql: str, params: Any = ()) -> list[Any]:
        return self.shell.execute(sql, params).fetchall()

    async def step(self) -> list[Change]:
        """Every change committed since the last step, in order (waits for a sentinel)."""
        name = f"{SENTINEL}{next(_sentinels)}"
        self.sh("INSERT INTO platforms (name) VALUES (?)", (name,))

        def seen() -> bool:
            return any(c.table == "platforms" and c.record and c.record["name"] == name for c in self.collector.changes)

        await self.collector.wait_until(seen, f"sentinel {name}")
        sentinel = next(c for c in self.collector.changes if c.record and c.record.get("name") == name)
        changes = self.collector.take_through(sentinel.position)
        assert changes[-1] is sentinel
        return changes[:-1]

    async def close(self) -> None:
        await self.source.stop()
        await self.db.close()
        self.shell.close()


@pytest_asyncio.fixture
async def h(url: str) -> AsyncIterator[Harness]:
    harness = Harness(url, SqliteChangeSource(url, retention_seconds=3600, retry_delay=0.05))
    await harness.source.start(harness.collector)
    try:
        yield harness
    finally:
        await harness.close()


def new_id() -> str:
    return str(uuid.uuid4())


def assert_aware_utc(value: Any) -> None:
    assert isinstance(value, dt.datetime) and value.utcoffset() == dt.timedelta(0), value


# --- ordering and values ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_server_and_shell_writes_arrive_in_commit_order_with_typed_values(h: Harness) -> None:
    company, deal = new_id(), new_id()
    await h.server(insert(t.companies).values(id=company, name="Acme"))
    h.sh("INSERT INTO contacts (first_name, company_id, tags) VALUES ('Ann', ?, '[\"vip\", \"west\"]')", (company,))
    await h.server(insert(t.deals).values(id=deal, title="Big", amount=Decimal("1234.56"), company_id=company))
    h.sh("INSERT INTO platforms (name, is_active) VALUES ('LinkedIn', 0)")
    h.sh("BEGIN")
    h.sh("INSERT INTO activities (subject, completed, due_at) VALUES ('Call', 1, '2026-01-02T03:04:05.000000Z')")
    h.sh("UPDATE deals SET stage = 'won' WHERE id = ?", (deal,))
    h.sh("COMMIT")

    changes = await h.step()
    assert [(c.table, c.type) for c in changes] == [
        ("companies", "INSERT"), ("contacts", "INSERT"), ("deals", "INSERT"), ("platforms", "INSERT"),
        ("activities", "INSERT"), ("deals", "UPDATE"),
    ]  # fmt: skip
    positions = [c.position for c in changes]
    assert positions == sorted(set(positions)) and positions[0] > 0

    by_table = {(c.table, c.type): c for c in changes}
    contact = by_table["contacts", "INSERT"].record
    assert contact is not None and contact["tags"] == ["vip", "west"] and contact["company_id"] == company
    deal_row = by_table["deals", "INSERT"].record
    assert deal_row is not None and deal_row["amount"] == Decimal("1234.56") and isinstance(deal_row["amount"], Decimal)
    assert deal_row["version"] == 1 and isinstance(deal_row["position"], float) and deal_row["closed_at"] is None
    assert by_table["platforms", "INSERT"].record["is_active"] is False  # type: ignore[index]
    activity = by_table["activities", "INSERT"].record
    assert activity is not None and activity["completed"] is True
    assert activity["due_at"] == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert activity["completed_at"] == activity["created_at"]
    won = by_table["deals", "UPDATE"]
    assert won.record is not None and won.old_record == deal_row
    assert won.record["stage"] == "won" and won.record["version"] == 2 and won.record["amount"] == Decimal("1234.56")
    assert_aware_utc(won.record["closed_at"])
    for change in changes:
        assert_aware_utc(change.commit_timestamp)
        assert_aware_utc(change.row["created_at"])
        assert_aware_utc(change.row["updated_at"])


@pytest.mark.asyncio
async def test_wake_delivers_at_once_without_polling(url: str) -> None:
    harness = Harness(url, SqliteChangeSource(url, retention_seconds=3600, poll_interval=60.0))
    await harness.source.start(harness.collector)
    try:
        started = time.monotonic()
        await harness.server(insert(t.companies).values(id=new_id(), name="Woken"))
        [change] = await harness.collector.next(1, timeout=5.0)
        assert change.record is not None and change.record["name"] == "Woken"
        assert time.monotonic() - started < 5.0
    finally:
        await harness.close()


@pytest.mark.asyncio
async def test_shell_writes_are_noticed_by_polling_within_milliseconds(h: Harness) -> None:
    latencies = []
    for i in range(5):
        started = time.monotonic()
        h.sh("INSERT INTO companies (name) VALUES (?)", (f"Outside {i}",))
        [change] = await h.collector.next(1)
        latencies.append(time.monotonic() - started)
        assert change.record is not None and change.record["name"] == f"Outside {i}"
    assert sorted(latencies)[2] < 0.5, latencies  # poll interval 50 ms; generous for a loaded CI box


@pytest.mark.asyncio
async def test_an_idle_source_does_not_spin(h: Harness) -> None:
    await h.server(insert(t.companies).values(id=new_id(), name="woken"))
    h.sh("INSERT INTO companies (name) VALUES ('polled')")
    await h.collector.next(2)
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(1.0)
    used = time.process_time() - cpu
    # Polling data_version every 50 ms costs a few ms per second; a busy loop would use ~1 s or more.
    assert used < 0.3 * (time.monotonic() - wall), used


# --- one change per write ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("writer", ["server", "shell"])
async def test_insert_update_delete_each_produce_exactly_one_change(h: Harness, writer: str) -> None:
    cid = new_id()
    if writer == "server":
        await h.server(insert(t.contacts).values(id=cid, first_name="Ann", tags=["a"], notes="before"))
    else:
        h.sh("INSERT INTO contacts (id, first_name, tags, notes) VALUES (?, 'Ann', '[\"a\"]', 'before')", (cid,))
    [ins] = await h.step()
    assert ins.type == "INSERT" and ins.table == "contacts" and ins.old_record is None
    assert ins.record is not None and ins.record["id"] == cid and ins.record["version"] == 1
    assert ins.record["notes"] == "before" and ins.record["tags"] == ["a"]

    await asyncio.sleep(0.01)  # updated_at has millisecond resolution on the shell path
    if writer == "server":
        values = rules.update_values(t.contacts, {"notes": "after"}, None, rules.now())
        await h.server(update(t.contacts).where(t.contacts.c.id == cid).values(values))
    else:
        h.sh("UPDATE contacts SET notes = 'after' WHERE id = ?", (cid,))
    [upd] = await h.step()
    assert upd.type == "UPDATE" and upd.record is not None
    assert upd.old_record == ins.record  # the true old row, also when the stamp trigger re-stamps
    assert upd.record["notes"] == "after" and upd.record["version"] == 2
    assert upd.record["updated_at"] > ins.record["updated_at"] and upd.record["created_at"] == ins.record["created_at"]
    assert h.sh("SELECT count(*) FROM wexlot_pending_old") == [(0,)]

    if writer == "server":
        await h.server(delete(t.contacts).where(t.contacts.c.id == cid))
    else:
        h.sh("DELETE FROM contacts WHERE id = ?", (cid,))
    [dele] = await h.step()
    assert dele.type == "DELETE" and dele.record is None and dele.old_record == upd.record


@pytest.mark.asyncio
async def test_shell_insert_fixups_and_rule_updates_are_single_changes(h: Harness) -> None:
    deal, activity = new_id(), new_id()
    h.sh("INSERT INTO deals (id, title, stage) VALUES (?, 'Won at once', 'won')", (deal,))
    h.sh("INSERT INTO activities (id, subject, completed) VALUES (?, 'Done', 1)", (activity,))
    ins_deal, ins_activity = await h.step()
    assert ins_deal.record is not None and ins_deal.record["closed_at"] == ins_deal.record["created_at"]
    assert ins_deal.record["version"] == 1
    assert ins_activity.record is not None and ins_activity.record["completed_at"] == ins_activity.record["created_at"]
    assert h.sh("SELECT version FROM deals WHERE id = ?", (deal,)) == [(1,)]

    await asyncio.sleep(0.01)
    h.sh("UPDATE deals SET stage = 'negotiation' WHERE id = ?", (deal,))
    [reopened] = await h.step()
    assert reopened.old_record == ins_deal.record
    assert reopened.record is not None and reopened.record["closed_at"] is None and reopened.record["version"] == 2


@pytest.mark.asyncio
async def test_cascaded_deletes_and_set_null_are_captured(h: Harness) -> None:
    company, contact, deal, staff = new_id(), new_id(), new_id(), new_id()
    h.sh("INSERT INTO staff (id, full_name, email) VALUES (?, 'Sam', 'sam@x.io')", (staff,))
    h.sh("INSERT INTO companies (id, name, owner_id) VALUES (?, 'Acme', ?)", (company, staff))
    h.sh("INSERT INTO contacts (id, first_name, company_id) VALUES (?, 'Ann', ?)", (contact, company))
    h.sh("INSERT INTO interactions (contact_id) VALUES (?)", (contact,))
    h.sh("INSERT INTO deals (id, title, contact_id) VALUES (?, 'D', ?)", (deal, contact))
    h.sh("INSERT INTO activities (subject, contact_id, deal_id) VALUES ('Call', ?, ?)", (contact, deal))
    created = {(c.table): c.record for c in await h.step()}

    h.sh("DELETE FROM contacts WHERE id = ?", (contact,))
    changes = await h.step()
    assert sorted((c.table, c.type) for c in changes) == [
        ("activities", "UPDATE"), ("contacts", "DELETE"), ("deals", "UPDATE"), ("interactions", "DELETE"),
    ]  # fmt: skip
    assert len({id(b) for b in h.collector.batches for c in b if c in changes}) == 1, "one transaction, one call"
    by_table = {c.table: c for c in changes}
    assert by_table["interactions"].old_record == created["interactions"]
    for child in ("deals", "activities"):
        change = by_table[child]
        assert change.old_record == created[child]
        assert change.record is not None and change.record["contact_id"] is None and change.record["version"] == 2

    await h.server(delete(t.companies).where(t.companies.c.id == company))
    changes = await h.step()
    assert [(c.table, c.type) for c in changes] == [("companies", "DELETE")]  # the contact is gone already

    # Deleting referenced staff deactivates it instead: captured as one UPDATE, no DELETE.
    h.sh("INSERT INTO companies (name, owner_id) VALUES ('Beta', ?)", (staff,))
    await h.step()
    h.sh("DELETE FROM staff WHERE id = ?", (staff,))
    [deactivated] = await h.step()
    assert deactivated.table == "staff" and deactivated.type == "UPDATE"
    assert deactivated.record is not None and deactivated.record["is_active"] is False
    assert deactivated.old_record is not None and deactivated.old_record["is_active"] is True


@pytest.mark.asyncio
async def test_set_null_from_a_company_delete_is_an_update_with_the_old_row(h: Harness) -> None:
    company, contact = new_id(), new_id()
    await h.server(insert(t.companies).values(id=company, name="Acme"))
    await h.server(insert(t.contacts).values(id=contact, first_name="Ann", company_id=company))
    _, ins = await h.step()
    await h.server(delete(t.companies).where(t.companies.c.id == company))
    upd, dele = await h.step()
    assert (upd.table, upd.type, dele.table, dele.type) == ("contacts", "UPDATE", "companies", "DELETE")
    assert upd.old_record == ins.record
    assert upd.record is not None and upd.record["company_id"] is None and upd.record["version"] == 2


@pytest.mark.asyncio
async def test_ten_kilobyte_notes_round_trip(h: Harness) -> None:
    notes = ("Zoë said \"ok\" — 'quotes', \\ backslash, emoji 🎉\n" * 200)[:10_240]
    cid = new_id()
    await h.server(insert(t.contacts).values(id=cid, first_name="Big", notes=notes))
    h.sh("UPDATE contacts SET notes = ? WHERE id = ?", (notes[::-1], cid))
    ins, upd = await h.step()
    assert ins.record is not None and ins.record["notes"] == notes
    assert upd.old_record is not None and upd.old_record["notes"] == notes
    assert upd.record is not None and upd.record["notes"] == notes[::-1]


@pytest.mark.asyncio
async def test_ten_thousand_row_transaction_arrives_complete_and_in_order(h: Harness) -> None:
    rows = [(f"c{i:05d}",) for i in range(10_000)]
    h.sh("BEGIN")
    h.shell.executemany("INSERT INTO contacts (first_name) VALUES (?)", rows)
    h.sh("COMMIT")
    changes = await h.collector.next(10_000, timeout=60.0)
    assert [c.record["first_name"] for c in changes] == [r[0] for r in rows]  # type: ignore[index]
    assert all(c.type == "INSERT" and c.table == "contacts" for c in changes)
    positions = [c.position for c in changes]
    assert positions == list(range(positions[0], positions[0] + 10_000))
    assert all(len(b) <= 1000 for b in h.collector.batches)
    assert await h.step() == []


@pytest.mark.asyncio
async def test_infinite_position_and_undecodable_rows(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(sqlite3.IntegrityError):  # JSON has no Infinity: the schema refuses it
        h.sh("INSERT INTO deals (title, position) VALUES ('far', 1e999)")
    h.sh("INSERT INTO wexlot_changes (table_name, type, record) VALUES ('contacts', 'INSERT', 'not json')")
    h.sh("INSERT INTO wexlot_changes (table_name, type, record) VALUES ('no_such_table', 'INSERT', '{}')")
    h.sh("INSERT INTO companies (name) VALUES ('after the poison')")
    (company,) = await h.step()
    assert company.record is not None and company.record["name"] == "after the poison"
    assert caplog.text.count("undecodable change") == 2


# --- delivery guarantees ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_failing_handler_gets_the_same_batch_again(url: str, caplog: pytest.LogCaptureFixture) -> None:
    received: list[list[int]] = []
    fail = [True]

    async def handler(batch: Any) -> None:
        received.append([c.position for c in batch])
        if fail[0]:
            fail[0] = False
            raise RuntimeError("subscriber exploded")

    source = SqliteChangeSource(url, retention_seconds=3600, retry_delay=0.05)
    shell = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    await source.start(handler)
    try:
        shell.executescript(
            "BEGIN; INSERT INTO companies (name) VALUES ('A'); INSERT INTO companies (name) VALUES ('B'); COMMIT;"
        )

        async def until(count: int) -> None:
            while sum(map(len, received)) < count:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(until(4), TIMEOUT)  # 2 changes, failed once, then delivered
        assert received[0] == received[1] and len(received[0]) == 2
        shell.execute("INSERT INTO companies (name) VALUES ('C')")
        await asyncio.wait_for(until(5), TIMEOUT)
        delivered = [p for batch in received[1:] for p in batch]
        assert delivered == sorted(set(delivered)) and len(delivered) == 3
        assert source.delivered_position == delivered[-1]
        assert "subscriber exploded" in caplog.text and "retrying the same changes" in caplog.text
    finally:
        await source.stop()
        shell.close()


@pytest.mark.asyncio
async def test_an_always_failing_handler_backs_off_instead_of_spinning(url: str) -> None:
    calls = 0

    async def handler(batch: Any) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("down")

    source = SqliteChangeSource(url, retention_seconds=3600, retry_delay=0.05, max_retry_delay=0.4)
    shell = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    await source.start(handler)
    try:
        shell.execute("INSERT INTO companies (name) VALUES ('A')")
        await asyncio.sleep(1.2)
        # 0.05 + 0.1 + 0.2 + 0.4 + 0.4 … → about 5 tries in 1.2 s; a spinning loop would make thousands.
        assert 2 <= calls <= 8, calls
        assert source.delivered_position == await source.current_position() - 1
    finally:
        await source.stop()
        shell.close()


@pytest.mark.asyncio
async def test_start_delivers_only_new_changes_and_stop_ends_delivery(url: str) -> None:
    harness = Harness(url, SqliteChangeSource(url, retention_seconds=3600))
    try:
        harness.sh("INSERT INTO companies (name) VALUES ('before start')")
        await harness.source.start(harness.collector)
        with pytest.raises(RuntimeError):
            await harness.source.start(harness.collector)
        harness.sh("INSERT INTO companies (name) VALUES ('after start')")
        [change] = await harness.collector.next(1)
        assert change.record is not None and change.record["name"] == "after start"

        await harness.source.stop()
        harness.source.wake()  # a no-op once stopped
        harness.sh("INSERT INTO companies (name) VALUES ('while stopped')")
        await asyncio.sleep(0.3)
        assert len(harness.collector.changes) == 1

        await harness.source.start(harness.collector)  # restart: live from the current position again
        harness.sh("INSERT INTO companies (name) VALUES ('restarted')")
        [change] = await harness.collector.next(1)
        assert change.record is not None and change.record["name"] == "restarted"
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("wexlot-sqlite") and t.done()]
    finally:
        await harness.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("wexlot-sqlite")]


# --- catch-up queries and retention ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_changes_since_returns_exactly_the_later_changes_of_the_given_tables(url: str) -> None:
    source = SqliteChangeSource(url, retention_seconds=3600)
    shell = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        assert await source.current_position() == 0
        assert await source.oldest_position() == 1
        shell.execute("INSERT INTO companies (name) VALUES ('early')")
        shell.execute("INSERT INTO contacts (first_name) VALUES ('early')")
        mark = await source.current_position()
        for i in range(4):
            shell.execute("INSERT INTO companies (name) VALUES (?)", (f"co{i}",))
            shell.execute("INSERT INTO contacts (first_name) VALUES (?)", (f"ct{i}",))
            shell.execute("INSERT INTO deals (title) VALUES (?)", (f"d{i}",))
        truth = shell.execute(
            "SELECT id FROM wexlot_changes WHERE id > ? AND table_name IN ('contacts', 'deals') ORDER BY id", (mark,)
        ).fetchall()

        got = await source.changes_since(mark, ["contacts", "deals"], 100)
        assert [c.position for c in got] == [r[0] for r in truth] and len(got) == 8
        assert [c.record["first_name"] for c in got if c.table == "contacts"] == ["ct0", "ct1", "ct2", "ct3"]  # type: ignore[index]
        first_three = await source.changes_since(mark, ["deals", "contacts"], 3)
        assert [c.position for c in first_three] == [r[0] for r in truth[:3]]
        assert await source.changes_since(mark, [], 100) == []
        assert await source.changes_since(mark, ["no_such_table"], 100) == []
        assert await source.changes_since(mark, ["contacts"], 0) == []
        assert len(await source.changes_since(mark, ["*"], 100)) == 12
        assert await source.changes_since(await source.current_position(), ["contacts"], 100) == []
        assert await source.current_position() == mark + 12
        assert await source.oldest_position() == 1
    finally:
        await source.stop()
        shell.close()


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.mark.asyncio
async def test_retention_prunes_old_changes_but_never_undelivered_ones(url: str) -> None:
    clock = Clock()
    source = SqliteChangeSource(url, retention_seconds=3600, prune_batch=7, clock=clock)
    harness = Harness(url, source)
    await source.start(harness.collector)
    try:
        for i in range(20):
            harness.sh("INSERT INTO companies (name) VALUES (?)", (f"old {i}",))
        delivered = await harness.collector.next(20)
        first = delivered[0].position

        assert await source.prune() == 0  # nothing is older than an hour yet
        clock.now += dt.timedelta(minutes=59)
        assert await source.prune() == 0

        harness.collector.block = asyncio.Event()
        harness.collector.entered.clear()
        for i in range(5):
            harness.sh("INSERT INTO companies (name) VALUES (?)", (f"pending {i}",))
        await asyncio.wait_for(harness.collector.entered.wait(), TIMEOUT)  # stuck in the handler

        clock.now += dt.timedelta(days=8)
        assert await source.prune() == 20  # in batches of 7; the 5 undelivered ones stay
        assert await source.oldest_position() == first + 20
        kept = await source.changes_since(0, ["companies"], 100)
        assert [c.position for c in kept] == list(range(first + 20, first + 25))

        harness.collector.block.set()
        await harness.collector.next(5)
        assert await source.prune() == 5
        assert harness.sh("SELECT count(*) FROM wexlot_changes") == [(0,)]
        assert await source.current_position() == first + 24  # positions survive an empty log
        assert await source.oldest_position() == first + 25
        harness.sh("INSERT INTO companies (name) VALUES ('after pruning')")
        [after] = await harness.collector.next(1)
        assert after.position == first + 25
    finally:
        await harness.close()


@pytest.mark.asyncio
async def test_pruning_runs_by_itself(url: str) -> None:
    clock = Clock()
    clock.now += dt.timedelta(days=30)
    harness = Harness(url, SqliteChangeSource(url, retention_seconds=3600, prune_interval=0.05, clock=clock))
    await harness.source.start(harness.collector)
    try:
        harness.sh("INSERT INTO companies (name) VALUES ('soon gone')")
        await harness.collector.next(1)

        async def emptied() -> None:
            while harness.sh("SELECT count(*) FROM wexlot_changes") != [(0,)]:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(emptied(), TIMEOUT)
    finally:
        await harness.close()


@pytest.mark.asyncio
async def test_orphaned_pending_old_rows_are_removed_after_a_minute(url: str, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    source = SqliteChangeSource(url, retention_seconds=3600, clock=clock)
    shell = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        shell.execute("INSERT INTO wexlot_pending_old VALUES ('contacts', 'lost-row', '{}')")
        with caplog.at_level(logging.WARNING, logger="wexlot.realtime.sqlite"):
            await source.prune()
            clock.now += dt.timedelta(seconds=30)
            await source.prune()
            assert shell.execute("SELECT count(*) FROM wexlot_pending_old").fetchone() == (1,)
            assert "orphaned" not in caplog.text
            clock.now += dt.timedelta(seconds=31)
            await source.prune()
        assert shell.execute("SELECT count(*) FROM wexlot_pending_old").fetchone() == (0,)
        assert "deleted 1 orphaned wexlot_pending_old rows" in caplog.text
    finally:
        await source.stop()
        shell.close()


# --- the publication ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_disabling_a_table_stops_capture_at_once_and_enabling_resumes(h: Harness) -> None:
    async with h.db.write() as conn:
        await publication.disable(conn, "sqlite", {"contacts"})
    cid = new_id()
    h.sh("INSERT INTO contacts (id, first_name) VALUES (?, 'Hidden')", (cid,))
    h.sh("UPDATE contacts SET notes = 'still hidden' WHERE id = ?", (cid,))
    h.sh("INSERT INTO companies (name) VALUES ('Visible')")
    changes = await h.step()
    assert [(c.table, c.type) for c in changes] == [("companies", "INSERT")]
    assert h.sh("SELECT count(*) FROM wexlot_pending_old") == [(0,)]

    async with h.db.write() as conn:
        await publication.enable(conn, "sqlite", {"contacts"})
    h.sh("UPDATE contacts SET notes = 'seen' WHERE id = ?", (cid,))
    [upd] = await h.step()
    assert upd.table == "contacts" and upd.type == "UPDATE"
    assert upd.old_record is not None and upd.old_record["notes"] == "still hidden" and upd.old_record["version"] == 2
    assert upd.record is not None and upd.record["notes"] == "seen" and upd.record["version"] == 3
