"""The realtime doctor checks: publication, replica identity, replication slot, WAL cap, change log, probe.

They are listed (with what each requires) in :data:`wexlot.doctor.checks.CHECKS`. Each fix is the
command or SQL that repairs the problem: ``wexlot realtime enable <table>`` for a table missing from
the publication, ``ALTER TABLE … REPLICA IDENTITY FULL``, ``ALTER SYSTEM SET max_slot_wal_keep_size``.
"""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import Connection, text

from wexlot.crm.tables import TABLE_NAMES
from wexlot.crm.types import format_sqlite_timestamp, parse_timestamp
from wexlot.doctor import server
from wexlot.doctor.runner import CheckResult, Context, failed, passed, skipped, warned
from wexlot.realtime import publication
from wexlot.realtime.publication import PUBLICATION

PUBLICATION_CHECK = "publication"
REPLICA_IDENTITY = "replica-identity"
REPLICATION_SLOT = "replication-slot"
SLOT_WAL_LIMIT = "slot-wal-limit"
CHANGE_LOG = "change-log"
REALTIME_PROBE = "realtime-probe"
WAL_LEVEL = "wal-level"  # wexlot.doctor.checks.WAL_LEVEL (a PostgreSQL with logical slots needs it)

LAG_WARNING_BYTES = 1024**3  # a slot this far behind the WAL is worth a look
ACTIVE_WAIT_SECONDS = 3.0  # a server that just started may take a moment to attach to its slot
# The pruner runs every minute (SQLite) or five (PostgreSQL): older rows than retention + this are stale.
PRUNE_GRACE = dt.timedelta(minutes=15)
IDENTITIES = {"d": "DEFAULT", "n": "NOTHING", "i": "USING INDEX", "f": "FULL"}


def publication_holds_all_tables(ctx: Context) -> CheckResult:
    """Every CRM table is in ``supabase_realtime`` (PostgreSQL) / ``wexlot_publication`` (SQLite)."""
    with ctx.engine().connect() as conn:
        if ctx.dialect == "postgresql":
            exists = conn.execute(
                text("SELECT 1 FROM pg_publication WHERE pubname = :pub"), {"pub": PUBLICATION}
            ).first()
            if exists is None:
                return failed(
                    f"publication {PUBLICATION} does not exist: no table broadcasts changes",
                    "run `wexlot realtime enable --all`",
                )
        published = set(publication.published_tables_sync(conn, ctx.dialect))
    missing = sorted(set(TABLE_NAMES) - published)
    if missing:
        names = ", ".join(missing)
        verb, them = ("is", "it") if len(missing) == 1 else ("are", "them")
        return failed(
            f"{names} {verb} not in publication {PUBLICATION}: no realtime events for {them}",
            f"run `wexlot realtime enable {' '.join(missing)}`",
        )
    return passed(f"{PUBLICATION} publishes all {len(TABLE_NAMES)} CRM tables")


def replica_identity_full(ctx: Context) -> CheckResult:
    """UPDATE/DELETE events carry the whole old row only with ``REPLICA IDENTITY FULL`` (PostgreSQL)."""
    if ctx.dialect != "postgresql":
        return skipped("not PostgreSQL (SQLite's capture triggers record whole old rows)")
    with ctx.engine().connect() as conn:
        published = [t for t in publication.published_tables_sync(conn, ctx.dialect) if t in TABLE_NAMES]
        if not published:
            return skipped("no CRM table is published")
        rows = conn.execute(
            text(
                "SELECT relname, relreplident FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                " AND relkind IN ('r', 'p') AND relname = ANY(:names) ORDER BY relname"
            ),
            {"names": published},
        ).all()
    wrong = [(str(name), IDENTITIES.get(str(ident), str(ident))) for name, ident in rows if ident != "f"]
    if wrong:
        detail = ", ".join(f"{name} has REPLICA IDENTITY {ident}" for name, ident in wrong)
        return failed(
            f"{detail}: UPDATE/DELETE events lack the old row",
            "run " + "; ".join(f"`ALTER TABLE public.{name} REPLICA IDENTITY FULL`" for name, _ in wrong),
        )
    return passed(f"REPLICA IDENTITY FULL on all {len(published)} published tables")


def replication_slot(ctx: Context) -> CheckResult:
    """This node's slot exists on this database, is streaming when a server runs, and how far behind it is."""
    if ctx.dialect != "postgresql":
        return skipped("not PostgreSQL (SQLite has no replication slot)")
    wal = ctx.results.get(WAL_LEVEL)
    if wal is not None and wal.status == "fail":
        return skipped(f"not run: needs the {WAL_LEVEL} check to pass")
    from wexlot.realtime.sources.postgres import slot_name

    slot = slot_name(ctx.settings.node_id)
    node = f"node {ctx.settings.node_id!r}"
    row = _slot_row(ctx, slot)
    if row is None:
        return failed(
            f"no replication slot {slot} for {node}: this node's server has never streamed from this database",
            "start the server (`wexlot serve`): it creates its slot",
        )
    active, pid, database, plugin, wal_status, lag, current_db = row
    if database != current_db or plugin != "pgoutput":
        return failed(
            f"replication slot {slot} belongs to database {database!r} (plugin {plugin}), not {current_db!r}",
            "give this server its own WEXLOT_NODE_ID (one slot per node)",
        )
    if wal_status == "lost":
        return failed(
            f"replication slot {slot} lost WAL it still needed (max_slot_wal_keep_size exceeded): changes were missed",
            f"stop the server, run `SELECT pg_drop_replication_slot('{slot}')`, start it again "
            "(clients refetch what they missed)",
        )
    behind = "lag unknown" if lag is None else f"{format_bytes(int(lag))} behind the WAL"
    url = ctx.base_url
    if not active and server.answers(url):
        deadline = time.monotonic() + ACTIVE_WAIT_SECONDS
        while not active and time.monotonic() < deadline:
            time.sleep(0.2)
            row = _slot_row(ctx, slot)
            active, pid = (row[0], row[1]) if row is not None else (False, None)
        if not active:
            return failed(
                f"replication slot {slot} is inactive although a server answers at {url} ({behind})",
                f"check that server's log (`wexlot realtime status` shows its last error) and that it runs "
                f"with WEXLOT_NODE_ID={ctx.settings.node_id}",
            )
    state = f"active (pid {pid})" if active else f"inactive: no server answering at {url}"
    detail = f"{slot} {state}, {behind}"
    if wal_status == "unreserved":
        return warned(
            f"{detail}; its WAL is about to be removed (wal_status unreserved)",
            "start this node's server now, or raise max_slot_wal_keep_size",
        )
    if lag is not None and int(lag) >= LAG_WARNING_BYTES:
        fix = (
            "check the server's log for replication errors"
            if active
            else f"start this node's server, or drop the slot if the node is retired: "
            f"`SELECT pg_drop_replication_slot('{slot}')`"
        )
        return warned(detail, fix)
    return passed(detail)


def _slot_row(ctx: Context, slot: str) -> tuple[object, ...] | None:
    with ctx.engine().connect() as conn:
        row = conn.execute(
            text(
                "SELECT active, active_pid, database, plugin, wal_status,"
                " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, current_database()"
                " FROM pg_replication_slots WHERE slot_name = :slot"
            ),
            {"slot": slot},
        ).first()
    return tuple(row) if row is not None else None


def slot_wal_limit(ctx: Context) -> CheckResult:
    """Unlimited ``max_slot_wal_keep_size``: a stopped node's slot keeps WAL until the disk is full."""
    if ctx.dialect != "postgresql":
        return skipped("not PostgreSQL")
    with ctx.engine().connect() as conn:
        value = str(conn.execute(text("SHOW max_slot_wal_keep_size")).scalar_one())
    if value.strip() == "-1":
        return warned(
            "max_slot_wal_keep_size = -1 (unlimited): a stopped node's replication slot keeps WAL until the disk fills",
            "cap it below the free WAL disk space, e.g. `ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; "
            "SELECT pg_reload_conf();` as a superuser",
        )
    return passed(f"max_slot_wal_keep_size = {value}")


def change_log(ctx: Context) -> CheckResult:
    """Size of the change history (``wexlot_changes``) and whether retention keeps it to its window."""
    retention = dt.timedelta(seconds=ctx.settings.realtime_retention_seconds)
    now = dt.datetime.now(dt.UTC)
    cutoff = now - retention - PRUNE_GRACE
    with ctx.engine().connect() as conn:
        count, oldest, newest_id = conn.execute(
            text("SELECT count(*), min(committed_at), max(id) FROM wexlot_changes")
        ).one()
        # The newest row is kept on PostgreSQL whatever its age (the position must not go backwards).
        stale = conn.execute(
            text("SELECT count(*) FROM wexlot_changes WHERE committed_at < :cutoff AND id < :newest"),
            {
                "cutoff": format_sqlite_timestamp(cutoff) if ctx.dialect == "sqlite" else cutoff,
                "newest": newest_id or 0,
            },
        ).scalar_one()
        size = _table_bytes(conn, ctx.dialect)
    window = f"retention {format_age(retention)} (WEXLOT_REALTIME_RETENTION)"
    if not count:
        return passed(f"empty; {window}")
    age = now - parse_timestamp(oldest)
    detail = f"{count} change{'s' * (count != 1)}" + (f" ({format_bytes(size)})" if size is not None else "")
    detail += f", oldest {format_age(age)} old; {window}"
    if stale:
        return warned(
            f"{detail}; {stale} {'is' if stale == 1 else 'are'} past the window",
            "a running server prunes them every few minutes: start it (`wexlot serve`), or check its log for "
            "pruning errors",
        )
    return passed(detail)


def _table_bytes(conn: Connection, dialect: str) -> int | None:
    """The history's size on disk, when the database can tell (the last query on ``conn``)."""
    if dialect == "postgresql":
        sql = "SELECT pg_total_relation_size('wexlot_changes')"
    else:  # dbstat is only there when SQLite was built with it
        sql = "SELECT sum(pgsize) FROM dbstat WHERE name IN ('wexlot_changes', 'ix_wexlot_changes_committed_at')"
    try:
        value = conn.execute(text(sql)).scalar_one()
    except Exception:
        return None
    return int(value) if value is not None else None


def realtime_probe(ctx: Context) -> CheckResult:
    """End to end through the running server: subscribe, write over REST, receive the event, clean up."""
    url = ctx.base_url
    try:
        key = server.service_key(ctx.settings)
    except server.ServerError as exc:
        return failed(str(exc), "see the jwt-secret check")
    if not _platforms_published(ctx):
        return failed(
            "cannot probe: the probe's write goes to platforms, which is not published",
            "run `wexlot realtime enable platforms`",
        )
    try:
        result = server.run_probe(url, key)
    except server.ServerError as exc:
        if exc.unreachable:
            return failed(
                f"server not reachable at {url} ({_reason(exc)})",
                "start it with `wexlot serve` (or point --url / WEXLOT_PUBLIC_URL at the running server)",
            )
        return failed(str(exc), _probe_fix(exc))
    return passed(
        f"INSERT on platforms received {result.latency_ms:.0f} ms after the write "
        f"(REST round trip {result.write_ms:.0f} ms) from {url}; probe row deleted"
    )


def _reason(exc: server.ServerError) -> str:
    message = str(exc)
    return message[message.rfind("(") + 1 : -1] if message.endswith(")") and "(" in message else message


def _platforms_published(ctx: Context) -> bool:
    """Whether the probe's table broadcasts (True when the database cannot tell: the probe will say)."""
    try:
        with ctx.engine().connect() as conn:
            return "platforms" in publication.published_tables_sync(conn, ctx.dialect)
    except Exception:
        return True


def _probe_fix(exc: server.ServerError) -> str:
    if exc.status == 401:
        return "run doctor with the running server's --data-dir (or WEXLOT_JWT_SECRET), so the keys match"
    return "check the server's log; `wexlot realtime status` shows its capture position and last error"


# --- formatting --------------------------------------------------------------------------------------------


def format_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1024 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_age(age: dt.timedelta) -> str:
    """``7 d``, ``3 h 5 min``, ``42 s``: the two largest units."""
    seconds = max(0, int(age.total_seconds()))
    units = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))
    parts = []
    for size, unit in units:
        whole, seconds = divmod(seconds, size)
        if whole or parts:
            parts.append(f"{whole} {unit}")
        if len(parts) == 2:
            break
    parts = [p for p in parts if not p.startswith("0 ")]
    return " ".join(parts) or "0 s"
