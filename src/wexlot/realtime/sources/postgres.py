"""PostgreSQL change source: logical replication (``pgoutput``) of the publication ``supabase_realtime``.

Lifecycle
    ``start()`` checks ``wal_level`` (anything but ``logical`` raises :class:`RealtimeUnavailable`
    with the fix), creates the publication for the 7 CRM tables only when it is missing entirely
    (tables an admin removed stay removed), and creates this node's slot when it is missing. The
    slot is named after the node (``wexlot_<node_id>``, see :func:`slot_name`): one slot per server
    node, so several nodes can stream one database. It is permanent, not temporary: the stream
    resumes from it after a restart of this server or of PostgreSQL, and nothing here ever drops it.
    A retired node's slot keeps WAL on the server forever, so drop it with :func:`drop_slot`.

Stream loop
    A dedicated thread holds a psycopg2 replication connection and waits on it with ``select()``
    (so ``stop()`` can end it within a second). It decodes the messages (:mod:`.pgoutput`), and at
    each Commit stores the transaction's CRM changes in ``wexlot_changes`` in one database
    transaction (``ON CONFLICT (commit_lsn, seq) DO NOTHING``: another node, or this one before a
    reconnect, may have stored them already), reads back their ids — the changes' positions — and
    queues the transaction for the event loop. A single dispatcher task hands the transactions to
    the handler one at a time, in commit order. When the connection is lost the thread reconnects
    with capped exponential backoff, logging each restart, and the server re-sends everything after
    the slot's acknowledged position; transactions at or below the last one queued are skipped.

Why the LSN is acknowledged only after fan-out
    The slot's confirmed position is the only record of what this node has delivered: once a
    transaction's end LSN is confirmed, PostgreSQL never sends it again and may recycle its WAL. So
    it is confirmed only after ``handler(changes)`` has returned, i.e. after fan-out. Confirming on
    receipt would lose, for good, whatever was received but not yet fanned out when the process
    crashed or the connection dropped. (psycopg2 itself confirms up to the server's WAL end on an
    idle keepalive, but only once every message it has read is confirmed, so never past a
    transaction still in flight.)

No duplicates
    Confirming late means the server may send a transaction again. Within one run, anything at or
    below the last transaction queued is skipped by LSN. Across a restart of this server, a
    transaction whose changes were already in the history when it started (handed over before a
    crash; replayed because PostgreSQL before 17 does not persist a walsender's confirmed position
    at shutdown, so a PostgreSQL restart rewinds the slot; or stored by another node) is confirmed
    but not handed over again: it lies before the new run's start position, where clients catch up
    from the history (``changes_since``), whose rows keep their positions.

History
    ``wexlot_changes`` is the catch-up log (``changes_since``) and outlives restarts. Rows whose
    ``committed_at`` is older than ``retention_seconds`` are pruned, except the newest row, so the
    current position never goes backwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import select
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import psycopg2
import psycopg2.errors
import psycopg2.extras

from wexlot.crm.records import dumps
from wexlot.crm.tables import CRM_TABLES
from wexlot.realtime.change import Change, RealtimeUnavailable, TransactionHandler, row_from_json
from wexlot.realtime.sources.pgoutput import RowChange, Transaction, TransactionAssembler

log = logging.getLogger("wexlot.realtime.postgres")

PUBLICATION = "supabase_realtime"
SLOT_PREFIX = "wexlot_"
# The session settings the text values are decoded under (see pgoutput.value_from_pg_text).
SESSION_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3 -c client_encoding=UTF8"
HISTORY_BATCH = 1000

INSERT_HISTORY = """
INSERT INTO wexlot_changes (commit_lsn, seq, xid, table_name, type, record, old_record, committed_at)
SELECT %(lsn)s, u.seq, %(xid)s, u.tbl, u.typ, u.rec::jsonb, u.old::jsonb, %(at)s
FROM unnest(%(seqs)s::int[], %(tbls)s::text[], %(typs)s::text[], %(recs)s::text[], %(olds)s::text[])
  AS u(seq, tbl, typ, rec, old)
ORDER BY u.seq
ON CONFLICT (commit_lsn, seq) DO NOTHING
"""
# A prefix of the log: everything before the first row that is recent enough, not yet handed to
# this node's handler ($2), or the newest row (kept so the current position never goes backwards).
PRUNE = """
DELETE FROM wexlot_changes WHERE id < (
  SELECT min(id) FROM wexlot_changes
  WHERE committed_at >= now() - make_interval(secs => $1) OR id > $2
     OR id = (SELECT max(id) FROM wexlot_changes)
)
"""
# The highest position stored; the sequence only speaks for a log someone emptied by hand.
CURRENT_POSITION = """
SELECT coalesce((SELECT max(id) FROM wexlot_changes),
                (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM wexlot_changes_id_seq))
"""
HANDLER_RETRY_MAX = 5.0


def slot_name(node_id: str) -> str:
    """``wexlot_<node_id>`` as a legal slot name (lower-case letters, digits, ``_``; at most 63 chars).

    When the node id had to be changed to fit, a short hash of the original is appended so two
    different node ids never share a slot (``Node-1`` → ``wexlot_node_1_<hash>``, not ``wexlot_node_1``).
    """
    clean = re.sub(r"[^a-z0-9_]", "_", node_id.lower())
    name = SLOT_PREFIX + clean
    if clean != node_id or len(name) > 63:
        digest = hashlib.sha256(node_id.encode()).hexdigest()[:8]
        name = f"{name[: 63 - 9]}_{digest}"
    return name


def wal_level_message(level: str) -> str:
    return (
        f"wal_level is '{level}'; realtime needs wal_level=logical: "
        "run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL"
    )


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def libpq_url(url: str) -> str:
    """``postgresql+asyncpg://…`` (SQLAlchemy style) → ``postgresql://…`` for libpq and asyncpg."""
    return re.sub(r"^postgres(?:ql)?(?:\+\w+)?://", "postgresql://", url)


def drop_slot(url: str, node_id: str, timeout: float = 10.0) -> bool:
    """Drop ``node_id``'s slot (a node is retired); False if there was none. Waits while it is in use."""
    name = slot_name(node_id)
    deadline = time.monotonic() + timeout
    conn = psycopg2.connect(libpq_url(url), connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            while True:
                cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (name,))
                row = cur.fetchone()
                if row is None:
                    return False
                if not row[0] or time.monotonic() > deadline:
                    cur.execute("SELECT pg_drop_replication_slot(%s)", (name,))  # raises if still active
                    log.info("dropped replication slot %s", name)
                    return True
                time.sleep(0.1)
    finally:
        conn.close()


@dataclass(frozen=True)
class _Delivery:
    end_lsn: int
    changes: list[Change]


class _Stopped(Exception):
    pass


class PostgresChangeSource:
    """:class:`~wexlot.realtime.change.ChangeSource` over logical replication; see the module docstring."""

    def __init__(
        self,
        url: str,
        node_id: str,
        *,
        retention_seconds: float = 7 * 24 * 3600,
        publication: str = PUBLICATION,
        feedback_interval: float = 10.0,
        max_backoff: float = 30.0,
        queue_size: int = 64,
        prune_interval: float = 300.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.url = libpq_url(url)
        self.node_id = node_id
        self.slot = slot_name(node_id)
        self.publication = publication
        self.retention_seconds = retention_seconds
        self.feedback_interval = feedback_interval
        self.max_backoff = max_backoff
        self.queue_size = queue_size
        self.prune_interval = prune_interval
        self.stop_timeout = stop_timeout
        self.restarts = 0  # replication sessions lost and restarted
        self.connected = False
        self.last_error: str | None = None
        self._queued_lsn = 0  # end LSN of the last transaction queued for the handler
        self._start_position = 0  # the history's newest position when this process started streaming
        self.resent = 0  # transactions the server sent again after a reconnect (skipped)
        self._handed_lsn = 0  # end LSN of the last transaction the handler returned from
        self._handed_position = 0  # position of the last change the handler returned from
        self._sent_lsn = 0  # the flush LSN last reported to the server
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Delivery] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._stopping = False
        self._busy = False
        self._wake_r, self._wake_w = -1, -1

    # --- ChangeSource ----------------------------------------------------------------------------

    async def start(self, handler: TransactionHandler) -> None:
        if self._thread is not None:
            raise RuntimeError("PostgresChangeSource is already started")
        await asyncio.to_thread(self.prepare)
        try:
            self._start_position = await self.current_position()
        except BaseException:
            await self._close_pool()
            raise
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(self.queue_size)
        self._stop.clear()
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._dispatcher = asyncio.create_task(self._dispatch(handler), name=f"realtime-dispatch-{self.slot}")
        self._dispatcher.add_done_callback(_log_failure)
        self._thread = threading.Thread(target=self._run, name=f"wexlot-replication-{self.slot}", daemon=True)
        self._thread.start()
        log.info("streaming changes of publication %s through replication slot %s", self.publication, self.slot)

    async def stop(self) -> None:
        """Stop streaming: let a handler call in progress finish (bounded), confirm, disconnect. Drops nothing."""
        if self._thread is None:
            await self._close_pool()
            return
        self._stopping = True
        task = self._dispatcher
        if task is not None:
            if self._busy:
                await asyncio.wait({task}, timeout=self.stop_timeout)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._stop.set()
        self._wake()
        thread = self._thread
        await asyncio.to_thread(thread.join, self.stop_timeout)
        if thread.is_alive():
            log.warning("replication thread of slot %s did not stop within %.0f s", self.slot, self.stop_timeout)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1
        self._thread = self._dispatcher = self._queue = None
        await self._close_pool()

    def wake(self) -> None:
        """Nothing to do: PostgreSQL pushes changes as they commit."""

    async def current_position(self) -> int:
        """The highest position stored (0 when none); pruning never lowers it."""
        return int(await self._fetchval(CURRENT_POSITION))

    async def oldest_position(self) -> int:
        """The oldest retained position; with an empty log, the next position to be written."""
        oldest = await self._fetchval("SELECT min(id) FROM wexlot_changes")
        return int(oldest) if oldest is not None else await self.current_position() + 1

    async def changes_since(self, position: int, tables: Sequence[str], limit: int) -> list[Change]:
        """Stored changes after ``position`` for ``tables`` (``"*"``: all), oldest first, at most ``limit``."""
        wanted = list(CRM_TABLES) if "*" in tables else [t for t in tables if t in CRM_TABLES]
        if limit <= 0 or not wanted:
            return []
        pool = await self._get_pool()
        rows = await pool.fetch(
            "SELECT id, table_name, type, record, old_record, committed_at FROM wexlot_changes"
            " WHERE id > $1 AND table_name = ANY($2::text[]) ORDER BY id LIMIT $3",
            position,
            wanted,
            limit,
        )
        return [
            Change(
                r["table_name"], r["type"], row_from_json(r["table_name"], r["record"]),
                row_from_json(r["table_name"], r["old_record"]), r["committed_at"], r["id"],
            )
            for r in rows
        ]  # fmt: skip

    # --- extras ----------------------------------------------------------------------------------

    async def prune(self) -> int:
        """Delete history older than ``retention_seconds``, as a prefix of the log; returns the count.

        Never deletes the newest row, nor (while streaming) a change not yet handed to the handler.
        """
        pool = await self._get_pool()
        upto = max(self._handed_position, self._start_position) if self._thread is not None else 2**63 - 1
        status = await pool.execute(PRUNE, float(self.retention_seconds), upto)
        deleted = int(status.split()[-1])
        if deleted:
            log.info("pruned %d changes older than %.0f s from the history", deleted, self.retention_seconds)
        return deleted

    def status(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "publication": self.publication,
            "connected": self.connected,
            "restarts": self.restarts,
            "acknowledged_lsn": format_lsn(self._handed_lsn),
            "resent_skipped": self.resent,
            "queued": self._queue.qsize() if self._queue is not None else 0,
            "last_error": self.last_error,
        }

    # --- setup (psycopg2, run off the event loop) --------------------------------------------------

    def prepare(self) -> None:
        """Check ``wal_level`` and create the publication and this node's slot when they are missing.

        Blocking; ``start()`` runs it in a worker thread. Raises :class:`RealtimeUnavailable`.
        """
        conn = psycopg2.connect(self.url, connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                try:
                    cur.execute("SHOW wal_level")
                    level = cur.fetchone()[0]
                    if level != "logical":
                        raise RealtimeUnavailable(wal_level_message(level))
                    self._ensure_publication(cur, report=True)
                    self._ensure_slot(cur)
                except psycopg2.errors.InsufficientPrivilege as exc:
                    cur.execute("SELECT current_user")
                    user = cur.fetchone()[0]
                    raise RealtimeUnavailable(
                        f"realtime cannot set up logical replication as {user!r} ({str(exc).strip()}); run it as the "
                        f"owner of the CRM tables, with the REPLICATION attribute: ALTER ROLE {user} WITH REPLICATION"
                    ) from exc
        finally:
            conn.close()

    def _ensure_publication(self, cur: Any, report: bool = False) -> None:
        """Create the publication only when it is missing entirely: tables an admin removed stay out."""
        cur.execute("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = %s)", (self.publication,))
        if not cur.fetchone()[0]:
            tables = ", ".join(f"public.{t}" for t in CRM_TABLES)
            try:
                cur.execute(f'CREATE PUBLICATION "{self.publication}" FOR TABLE {tables}')
                log.info("created publication %s for %s", self.publication, tables)
            except psycopg2.errors.DuplicateObject:
                pass  # another node was quicker
        if not report:
            return
        cur.execute(
            "SELECT tablename FROM pg_publication_tables WHERE pubname = %s AND schemaname = 'public'",
            (self.publication,),
        )
        published = {r[0] for r in cur.fetchall()}
        left_out = [t for t in CRM_TABLES if t not in published]
        if left_out:
            log.info("not in publication %s, so not streamed: %s", self.publication, ", ".join(left_out))
        cur.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relname = ANY(%s) AND relreplident <> 'f'",
            (sorted(published & set(CRM_TABLES)),),
        )
        for (table,) in cur.fetchall():
            log.warning(
                "table %s is not REPLICA IDENTITY FULL: its UPDATE/DELETE events lack the old row "
                "(ALTER TABLE %s REPLICA IDENTITY FULL)", table, table,
            )  # fmt: skip

    def _ensure_slot(self, cur: Any) -> None:
        find = "SELECT plugin, database, active_pid FROM pg_replication_slots WHERE slot_name = %s"
        cur.execute(find, (self.slot,))
        row = cur.fetchone()
        if row is None:
            try:
                cur.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (self.slot,))
                log.info("created replication slot %s", self.slot)
                return
            except psycopg2.errors.DuplicateObject:  # created meanwhile by a process with this node id
                cur.execute(find, (self.slot,))
                row = cur.fetchone()
        cur.execute("SELECT current_database()")
        database = cur.fetchone()[0]
        if row is not None and (row[0] != "pgoutput" or row[1] != database):
            raise RealtimeUnavailable(
                f"replication slot {self.slot} belongs to database {row[1]!r} (plugin {row[0]}), not {database!r}; "
                "give this server its own WEXLOT_NODE_ID (one slot per node)"
            )
        if row is not None and row[2] is not None:
            log.warning(
                "replication slot %s is in use by backend %s; is another server running with node id %r? "
                "Retrying until it is free", self.slot, row[2], self.node_id,
            )  # fmt: skip

    # --- the replication thread ------------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        writer: Any = None
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                writer = writer if writer is not None and not writer.closed else self._connect_writer()
                self._session(writer)
            except _Stopped:
                break
            except Exception as exc:
                self.connected = False
                self.last_error = f"{type(exc).__name__}: {exc}".strip()
                if writer is not None:
                    with contextlib.suppress(Exception):
                        writer.close()
                    writer = None
                if self._stop.is_set():
                    break
                attempt = 0 if time.monotonic() - started > 60 else attempt + 1
                delay = min(self.max_backoff, 0.25 * 2**attempt)
                self.restarts += 1
                log.warning(
                    "replication stream of slot %s lost (%s); restart #%d in %.1f s, resuming from the slot",
                    self.slot, self.last_error, self.restarts, delay,
                )  # fmt: skip
                if "publication" in str(exc) and "does not exist" in str(exc):
                    log.error(
                        "publication %s was dropped while changes were pending: PostgreSQL cannot decode what "
                        "was committed before it was recreated. To resume from now (losing those changes), "
                        "stop the server and drop slot %s", self.publication, self.slot,
                    )  # fmt: skip
                self._stop.wait(delay)
        self.connected = False
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()

    def _connect_writer(self) -> Any:
        conn = psycopg2.connect(self.url, connect_timeout=10, options=SESSION_OPTIONS)
        conn.autocommit = False
        return conn

    def _session(self, writer: Any) -> None:
        repl = psycopg2.connect(
            self.url,
            connection_factory=psycopg2.extras.LogicalReplicationConnection,
            connect_timeout=10,
            options=SESSION_OPTIONS,
            keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3,
        )  # fmt: skip
        try:
            with writer, writer.cursor() as wcur:
                self._ensure_publication(wcur)  # recreated if it was dropped while we streamed
            cur = repl.cursor()
            cur.start_replication(
                slot_name=self.slot,
                decode=False,
                options={"proto_version": "1", "publication_names": self.publication},
                status_interval=self.feedback_interval,
            )
            self.connected = True
            self._sent_lsn = 0  # a new walsender: report the confirmed position again
            assembler = TransactionAssembler()
            wait = min(1.0, self.feedback_interval)
            while not self._stop.is_set():
                self._confirm(cur)
                msg = cur.read_message()
                if msg is None:
                    select.select([repl, self._wake_r], [], [], wait)
                    self._drain_wake()
                    continue
                txn = assembler.feed(msg.payload)
                if txn is not None:
                    self._deliver(txn, cur, writer)
            self._confirm(cur, force=True)
        finally:
            self.connected = False
            with contextlib.suppress(Exception):
                repl.close()

    def _confirm(self, cur: Any, force: bool = False) -> None:
        """Report the handed-over position (after fan-out, never before) as written, flushed and applied."""
        handed = self._handed_lsn
        if handed > self._sent_lsn or (force and handed):
            cur.send_feedback(write_lsn=handed, flush_lsn=handed, apply_lsn=handed, force=True)
            self._sent_lsn = handed

    def _deliver(self, txn: Transaction, cur: Any, writer: Any) -> None:
        if txn.end_lsn <= self._queued_lsn:
            self.resent += 1
            log.debug("skipping re-sent transaction %s (xid %d)", format_lsn(txn.end_lsn), txn.xid)
            return
        for rel in txn.truncated:
            if rel.namespace == "public" and rel.name in CRM_TABLES:
                log.warning("TRUNCATE of %s is not streamed to realtime clients", rel.name)
        crm = [c for c in txn.changes if c.relation.namespace == "public" and c.relation.name in CRM_TABLES]
        changes = self._store(txn, crm, writer) if crm else []
        # Already in the history when this process started: a transaction delivered before a crash or
        # a PostgreSQL restart (PostgreSQL < 17 may rewind a slot's confirmed position then), or one
        # another node stored while this one was down. Clients catch up on those from the history.
        live = [c for c in changes if c.position > self._start_position]
        if len(live) < len(changes):
            self.resent += 1
        self._put(_Delivery(txn.end_lsn, live), cur)
        self._queued_lsn = txn.end_lsn

    def _store(self, txn: Transaction, crm: list[RowChange], writer: Any) -> list[Change]:
        """Write the transaction's changes to the history (idempotently) and return them with positions."""
        rows = []
        for c in crm:
            table = c.relation.name
            if c.missing:
                log.warning("%s: unchanged TOASTed %s could not be filled (no full old row)", table, c.missing)
            rows.append((table, c.kind, _crm_row(table, c.new), _crm_row(table, c.old)))
        with writer, writer.cursor() as wcur:
            for start in range(0, len(rows), HISTORY_BATCH):
                batch = rows[start : start + HISTORY_BATCH]
                wcur.execute(
                    INSERT_HISTORY,
                    {
                        "lsn": txn.commit_lsn, "xid": txn.xid, "at": txn.commit_time,
                        "seqs": list(range(start, start + len(batch))),
                        "tbls": [r[0] for r in batch],
                        "typs": [r[1] for r in batch],
                        "recs": [None if r[2] is None else dumps(r[2]).decode() for r in batch],
                        "olds": [None if r[3] is None else dumps(r[3]).decode() for r in batch],
                    },
                )  # fmt: skip
            wcur.execute("SELECT seq, id FROM wexlot_changes WHERE commit_lsn = %s", (txn.commit_lsn,))
            ids = dict(wcur.fetchall())
        if len(ids) < len(rows):
            raise RuntimeError(f"history of transaction {format_lsn(txn.commit_lsn)} is incomplete")
        return [
            Change(table, kind, new, old, txn.commit_time, ids[seq]) for seq, (table, kind, new, old) in enumerate(rows)
        ]

    def _put(self, delivery: _Delivery, cur: Any) -> None:
        """Queue for the event loop; while the queue is full keep the connection alive and acks flowing."""
        assert self._loop is not None and self._queue is not None
        try:
            future = asyncio.run_coroutine_threadsafe(self._queue.put(delivery), self._loop)
        except RuntimeError:  # the loop is closed
            raise _Stopped from None
        last = time.monotonic()
        while True:
            try:
                future.result(timeout=0.5)
                return
            except TimeoutError:
                pass
            if self._stop.is_set():
                future.cancel()
                raise _Stopped
            self._confirm(cur)
            if time.monotonic() - last >= self.feedback_interval:
                cur.send_feedback(force=True)  # a status update keeps the walsender from timing out
                last = time.monotonic()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 512):
                pass

    # --- the event-loop side ---------------------------------------------------------------------

    async def _dispatch(self, handler: TransactionHandler) -> None:
        assert self._queue is not None
        next_prune = time.monotonic()
        while not self._stopping:
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + self.prune_interval
                try:
                    await self.prune()
                except Exception as exc:
                    log.warning("pruning the change history failed: %s", exc)
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation (stop()).
                async with asyncio.timeout(max(0.1, next_prune - time.monotonic())):
                    delivery = await self._queue.get()
            except TimeoutError:
                continue
            if delivery.changes:
                await self._hand_over(handler, delivery)
                self._handed_position = delivery.changes[-1].position
            self._handed_lsn = max(self._handed_lsn, delivery.end_lsn)
            self._wake()

    async def _hand_over(self, handler: TransactionHandler, delivery: _Delivery) -> None:
        """Call the handler until it returns; a failure is logged and retried after a growing delay."""
        delay = 0.1
        self._busy = True
        try:
            while True:
                try:
                    await handler(delivery.changes)
                    return
                except Exception:
                    log.exception(
                        "realtime handler failed on transaction %s; retrying in %.1f s",
                        format_lsn(delivery.end_lsn), delay,
                    )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(HANDLER_RETRY_MAX, delay * 2)
        finally:
            self._busy = False

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(self.url, min_size=0, max_size=4, timeout=10)
            return self._pool

    async def _fetchval(self, sql: str) -> Any:
        pool = await self._get_pool()
        return await pool.fetchval(sql)

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


def _crm_row(table: str, values: dict[str, Any] | None) -> dict[str, Any] | None:
    """The CRM columns of a decoded row, in table order (columns an admin added are not CRM data)."""
    if values is None:
        return None
    return {c.name: values[c.name] for c in CRM_TABLES[table].columns if c.name in values}


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("realtime dispatcher stopped; no more changes are delivered", exc_info=task.exception())
