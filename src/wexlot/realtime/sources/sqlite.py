"""SQLite change source: tail the trigger-filled ``wexlot_changes`` log (migration 0002).

Why this is correct
  The capture triggers append each change to ``wexlot_changes`` inside the writer's own
  transaction, so a change becomes visible exactly when its transaction commits. SQLite has one
  writer at a time, so ``id`` order is commit order and a committed transaction's ids are
  contiguous (``AUTOINCREMENT``: ids are never reused, not even after pruning). Reading
  ``id > last`` in id order therefore never misses a later-committed lower id, and one ``SELECT``
  reads one WAL snapshot: a transaction is seen whole or not at all. Only a backlog larger than
  ``batch_size`` is cut into several handler calls, in order. (The log has no transaction id, so
  several transactions committed between two reads may share one call.)

Wake-ups
  This process calls :meth:`SqliteChangeSource.wake` after its own commits. Anything else (the
  sqlite3 shell, another server process) is noticed through ``PRAGMA data_version``, which changes
  whenever another connection commits; it is polled every ``poll_interval`` on the reader's own
  connection and the ``SELECT`` runs only when it moved.

Delivery
  A batch counts as delivered once the handler returns. If the handler raises, the error is logged
  and the same batch is retried after a growing delay: nothing is skipped or delivered twice.

Retention
  Every ``prune_interval`` the oldest rows whose ``committed_at`` is older than ``retention_seconds``
  are deleted, a small batch per write transaction, always a prefix of the log (so
  :meth:`~SqliteChangeSource.oldest_position` is exact) and never past the last delivered position.

Connections
  Stdlib ``sqlite3``, each connection confined to its own one-thread executor: the live reader,
  queries (catch-up) and maintenance (pruning). A large catch-up read or a prune waiting for the
  write lock never delays live delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

from wexlot.crm.tables import CRM_TABLES
from wexlot.crm.types import format_sqlite_timestamp, parse_timestamp
from wexlot.realtime.change import Change, TransactionHandler, row_from_json

log = logging.getLogger("wexlot.realtime.sqlite")

T = TypeVar("T")
Clock = Callable[[], dt.datetime]

COLUMNS = "id, table_name, type, record, old_record, committed_at"
BUSY_TIMEOUT_MS = 10_000  # as the server's own connections (storage/engine.py)
ORPHAN_AGE = dt.timedelta(minutes=1)
STOP_TIMEOUT = 10.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sqlite_path(url: str) -> str:
    """The database file of a ``sqlite:///path`` URL (an in-memory database cannot be tailed)."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        raise ValueError(f"the SQLite change source needs a database file, not {url!r}")
    return str(Path(path).expanduser().absolute())


class _Worker:
    """One sqlite3 connection used only from one worker thread (sqlite3 objects are not thread-safe).

    The connection opens lazily, read-write on an existing file only (never creating an empty
    database), with the server's pragmas. After an error it is closed and reopened on next use.
    """

    def __init__(self, path: str, name: str, *, query_only: bool) -> None:
        self._path = path
        self._name = name
        self._query_only = query_only
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"wexlot-{self._name}")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = self._connect()
        try:
            return fn(self._conn)
        except sqlite3.Error:
            self._close_conn()
            raise

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(f"{Path(self._path).as_uri()}?mode=rw", uri=True, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            if self._query_only:
                conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _close_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_conn)
        finally:
            executor.shutdown(wait=False)


# --- work done on the worker threads ----------------------------------------------------------------


# SQLite's json_object() writes an infinite REAL (deals.position = 1e999 from the shell) as a bare
# Inf, which is not JSON; string literals are matched first so that their content is left alone.
_INF = re.compile(r'"(?:[^"\\]|\\.)*"|(-?)\bInf\b')


def _load(data: str | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        return json.loads(data)  # type: ignore[no-any-return]
    except json.JSONDecodeError:
        fixed = _INF.sub(lambda m: m.group(0) if m.group(0).startswith('"') else f"{m.group(1)}Infinity", data)
        return json.loads(fixed)  # type: ignore[no-any-return]


def _decode(rows: list[tuple[Any, ...]]) -> list[Change]:
    out = []
    for pos, table, typ, record, old_record, committed_at in rows:
        try:
            out.append(
                Change(
                    table=table,
                    type=typ,
                    record=row_from_json(table, _load(record), sqlite=True),
                    old_record=row_from_json(table, _load(old_record), sqlite=True),
                    commit_timestamp=parse_timestamp(committed_at),
                    position=pos,
                )
            )
        except Exception:
            # A row that cannot be decoded (not written by our triggers) would otherwise stall
            # realtime for everyone forever; it is reported and passed over.
            log.exception("undecodable change at position %d (table %r); skipped", pos, table)
    return out


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _read_batch(conn: sqlite3.Connection, after: int, limit: int) -> tuple[int, int, list[Change]]:
    """``(data_version, last id read, changes)``; the version is taken first, so a commit racing
    the SELECT is either in the result or changes the version the idle loop compares against."""
    version = _data_version(conn)
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM wexlot_changes WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
    ).fetchall()
    return version, (rows[-1][0] if rows else after), _decode(rows)


def _current_position(conn: sqlite3.Connection) -> int:
    # sqlite_sequence remembers the highest id ever handed out, even once pruning emptied the log.
    row = conn.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'wexlot_changes'), 0),"
        " coalesce((SELECT max(id) FROM wexlot_changes), 0))"
    ).fetchone()
    return int(row[0])


def _oldest_position(conn: sqlite3.Connection) -> int:
    oldest = conn.execute("SELECT min(id) FROM wexlot_changes").fetchone()[0]
    return int(oldest) if oldest is not None else _current_position(conn) + 1


def _changes_since(conn: sqlite3.Connection, position: int, tables: list[str] | None, limit: int) -> list[Change]:
    if tables is None:
        sql, params = f"SELECT {COLUMNS} FROM wexlot_changes WHERE id > ? ORDER BY id LIMIT ?", [position, limit]
    else:
        marks = ", ".join("?" * len(tables))
        sql = f"SELECT {COLUMNS} FROM wexlot_changes WHERE id > ? AND table_name IN ({marks}) ORDER BY id LIMIT ?"
        params = [position, *tables, limit]
    return _decode(conn.execute(sql, params).fetchall())


def _prune_batch(conn: sqlite3.Connection, threshold: str, upto: int, limit: int) -> tuple[int, bool]:
    """Delete the oldest ≤ ``limit`` rows older than ``threshold`` with ``id <= upto``, as a prefix.

    Returns ``(deleted, more)``; ``more`` is False once the first remaining row is too new.
    """
    rows = conn.execute(
        "SELECT id, committed_at FROM wexlot_changes WHERE id <= ? ORDER BY id LIMIT ?", (upto, limit)
    ).fetchall()
    cut = None
    for pos, committed_at in rows:
        if committed_at >= threshold:
            break
        cut = pos
    if cut is None:
        return 0, False
    deleted = conn.execute("DELETE FROM wexlot_changes WHERE id <= ?", (cut,)).rowcount
    return deleted, cut == rows[-1][0] and len(rows) == limit


def _pending_old_keys(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(t, r) for t, r in conn.execute("SELECT table_name, row_id FROM wexlot_pending_old LIMIT 1000")]


def _delete_pending_old(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> int:
    deleted = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for key in keys:
            deleted += conn.execute("DELETE FROM wexlot_pending_old WHERE table_name = ? AND row_id = ?", key).rowcount
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return deleted


class SqliteChangeSource:
    """Delivers the SQLite change log to one handler, in commit order (a :class:`ChangeSource`).

    ``clock`` (aware UTC ``datetime``) is what retention measures age against; tests inject it.
    """

    def __init__(
        self,
        url: str,
        retention_seconds: int,
        poll_interval: float = 0.05,
        *,
        batch_size: int = 1000,
        prune_interval: float = 60.0,
        prune_batch: int = 500,
        retry_delay: float = 0.1,
        max_retry_delay: float = 5.0,
        clock: Clock = _utcnow,
    ) -> None:
        if retention_seconds <= 0 or poll_interval <= 0 or batch_size <= 0 or prune_batch <= 0:
            raise ValueError("retention_seconds, poll_interval, batch_size and prune_batch must be positive")
        self.path = sqlite_path(url)
        self.retention = dt.timedelta(seconds=retention_seconds)
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.prune_interval = prune_interval
        self.prune_batch = prune_batch
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self._clock = clock
        self._live = _Worker(self.path, "changes-live", query_only=True)
        self._query = _Worker(self.path, "changes-query", query_only=True)
        self._maintenance = _Worker(self.path, "changes-prune", query_only=False)
        self._last = 0
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._orphans: dict[tuple[str, str], dt.datetime] = {}

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, handler: TransactionHandler) -> None:
        """Deliver every change committed from now on (earlier ones are for :meth:`changes_since`)."""
        if self._task is not None:
            raise RuntimeError("change source already started")
        self._last = await self._live.run(_current_position)
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._deliver_forever(handler), name="wexlot-sqlite-changes")
        self._pruner = asyncio.create_task(self._prune_forever(), name="wexlot-sqlite-changes-prune")

    async def stop(self) -> None:
        """Cancel delivery and pruning (a batch being handled is not counted as delivered)."""
        tasks = [t for t in (self._task, self._pruner) if t is not None]
        self._task = self._pruner = None
        for task in tasks:
            task.cancel()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            for task in pending:
                log.error("%s did not stop within %.0f s; abandoned", task.get_name(), STOP_TIMEOUT)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("%s had failed", task.get_name(), exc_info=task.exception())
        self._loop = None
        for worker in (self._live, self._query, self._maintenance):
            await worker.close()

    def wake(self) -> None:
        """Hint that this process just committed a write; safe from any thread, a no-op when stopped."""
        loop = self._loop
        if loop is None:
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wakeup.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._wakeup.set)

    @property
    def delivered_position(self) -> int:
        """The position of the last change the handler accepted (or the start position)."""
        return self._last

    # --- queries --------------------------------------------------------------------------------

    async def current_position(self) -> int:
        """The highest position ever stored (0 when none), also after pruning emptied the log."""
        return await self._query.run(_current_position)

    async def oldest_position(self) -> int:
        """The oldest retained position; with an empty log, the next position to be written.

        Positions have no gaps, so a client at ``p`` can catch up completely iff ``p >= oldest - 1``;
        treating ``p < oldest`` as "must refetch" is safe too (at worst one needless refetch).
        """
        return await self._query.run(_oldest_position)

    async def changes_since(self, position: int, tables: Sequence[str], limit: int) -> list[Change]:
        """Stored changes after ``position`` for ``tables`` (``"*"``: all), oldest first, at most ``limit``."""
        if limit <= 0 or not tables:
            return []
        wanted = None if "*" in tables else sorted({t for t in tables if t in CRM_TABLES})
        if wanted is not None and not wanted:
            return []
        return await self._query.run(partial(_changes_since, position=position, tables=wanted, limit=limit))

    # --- delivery -------------------------------------------------------------------------------

    async def _deliver_forever(self, handler: TransactionHandler) -> None:
        delay = self.retry_delay
        while True:
            self._wakeup.clear()  # before reading: a wake() during the read is not lost
            try:
                version, last, batch = await self._live.run(
                    partial(_read_batch, after=self._last, limit=self.batch_size)
                )
            except Exception:
                log.exception("reading the change log failed; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
                continue
            delay = self.retry_delay
            if last == self._last:
                await self._idle(version)
                continue
            if batch:
                await self._deliver(handler, batch)
            self._last = last

    async def _deliver(self, handler: TransactionHandler, batch: list[Change]) -> None:
        delay = self.retry_delay
        while True:
            try:
                await handler(list(batch))
                return
            except Exception:
                log.exception(
                    "change handler failed on positions %d..%d; retrying the same changes in %.1f s",
                    batch[0].position, batch[-1].position, delay,
                )  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_retry_delay)

    async def _idle(self, version: int) -> None:
        """Return on wake() or once another connection has committed since ``version`` was read."""
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
            # arrives as the event is set, and stop() would then wait for this task forever.
            try:
                async with asyncio.timeout(self.poll_interval):
                    await self._wakeup.wait()
                return
            except TimeoutError:
                pass
            try:
                if await self._live.run(_data_version) != version:
                    return
            except Exception:
                log.exception("polling PRAGMA data_version failed")
                return  # the read that follows reports and backs off

    # --- retention ------------------------------------------------------------------------------

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(self.prune_interval)
            try:
                await self.prune()
            except Exception:
                log.exception("pruning the change log failed; trying again in %.0f s", self.prune_interval)

    async def prune(self) -> int:
        """Delete changes older than the retention period (never past the last delivered one).

        Also removes ``wexlot_pending_old`` rows seen by an earlier run at least a minute ago: the
        capture triggers consume each parked row in the statement that parks it, so a committed one
        is an orphan (logged as a warning). Returns the number of changes deleted.
        """
        now = self._clock()
        threshold = format_sqlite_timestamp(now - self.retention)
        upto = self._last if self._task is not None else await self._maintenance.run(_current_position)
        total = 0
        while True:
            deleted, more = await self._maintenance.run(
                partial(_prune_batch, threshold=threshold, upto=upto, limit=self.prune_batch)
            )
            total += deleted
            if not more:
                break
            await asyncio.sleep(0.01)  # let waiting writers take the write lock between batches
        if total:
            log.info("pruned %d changes committed before %s", total, threshold)
        await self._sweep_pending_old(now)
        return total

    async def _sweep_pending_old(self, now: dt.datetime) -> None:
        keys = await self._maintenance.run(_pending_old_keys)
        # The table has no timestamp: age is measured from when a sweep first saw the row.
        self._orphans = {key: self._orphans.get(key, now) for key in keys}
        stale = [key for key, seen in self._orphans.items() if now - seen >= ORPHAN_AGE]
        if not stale:
            return
        deleted = await self._maintenance.run(partial(_delete_pending_old, keys=stale))
        for key in stale:
            del self._orphans[key]
        log.warning(
            "deleted %d orphaned wexlot_pending_old rows (e.g. %s %s); the capture triggers should never leave any",
            deleted, stale[0][0], stale[0][1],
        )  # fmt: skip
