"""``wexlot realtime``: which tables broadcast changes, switch them on and off, and a server's realtime state.

* ``status`` prints the publication (the rows of ``pg_publication_tables`` for ``supabase_realtime``,
  or SQLite's ``wexlot_publication``), and — when a server answers at ``--url`` — its realtime
  status (``GET /realtime/v1/api/status`` as the service_role): connections, channels, presence,
  events per table, capture position and lag, retention, last error. ``--json`` prints it all.
* ``enable`` / ``disable`` change the publication. It is data, read by the capture (pgoutput, or the
  SQLite triggers) at each write, so it applies to writes committed from then on, without a restart.

Only the 7 CRM tables can be chosen; ``--data-dir`` / ``--database-url`` go on ``wexlot realtime``
or on each subcommand (the subcommand's win). Errors are one line, exit status 1.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from wexlot.cli.common import CliError, database_options, load_settings
from wexlot.cli.migrate import redact
from wexlot.config import Settings
from wexlot.crm.tables import TABLE_NAMES
from wexlot.doctor import server
from wexlot.doctor.realtime import format_age, format_bytes
from wexlot.realtime import publication
from wexlot.realtime.publication import PUBLICATION
from wexlot.storage import migrate
from wexlot.storage.engine import dialect_of, sync_engine

CONNECT_TIMEOUT_SECONDS = 5
MAX_LISTED = 50  # connections / channels listed one per line; --json has them all
LOCK_TIMEOUT = "10s"  # ALTER PUBLICATION / ALTER TABLE wait at most this long for a lock


@click.group("realtime")
@database_options
@click.pass_context
def realtime(ctx: click.Context, data_dir: str | None, database_url: str | None) -> None:
    """Which tables broadcast changes (publication supabase_realtime), and a running server's realtime state."""
    ctx.obj = {"data_dir": data_dir, "database_url": database_url}


def _settings(ctx: click.Context, data_dir: str | None, database_url: str | None) -> Settings:
    parent: dict[str, Any] = ctx.obj or {}
    return load_settings(
        data_dir=data_dir or parent.get("data_dir"), database_url=database_url or parent.get("database_url")
    )


# --- database ------------------------------------------------------------------------------------------------


@contextmanager
def _database(settings: Settings, *, write: bool) -> Iterator[Connection]:
    """One connection (one transaction when ``write``) to a migrated database; problems as one line."""
    url = settings.db_url
    dialect = dialect_of(url)
    if dialect == "sqlite":
        path = make_url(url).database or ""
        if path != ":memory:" and not Path(path).expanduser().is_file():
            raise CliError(f"no SQLite database at {path}; run `wexlot migrate` (or `wexlot serve`) first")
    engine = sync_engine(_with_connect_timeout(url))
    try:
        with engine.begin() if write else engine.connect() as conn:
            current, head = MigrationContext.configure(conn).get_current_revision(), migrate.head()
            if current != head:
                raise CliError(
                    f"{redact(url)} is at schema revision {current or 'none'}, not {head}; run `wexlot migrate`"
                )
            if write and dialect == "postgresql":
                conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            yield conn
    except DBAPIError as exc:
        cause = str(exc.orig or exc).strip().splitlines()
        raise CliError(f"database error on {redact(url)}: {cause[0] if cause else type(exc).__name__}") from None
    finally:
        engine.dispose()


def _with_connect_timeout(url: str) -> str:
    """Bound PostgreSQL connection attempts (as doctor does): an unreachable host fails in seconds."""
    if dialect_of(url) != "postgresql":
        return url
    parsed = make_url(url)
    if "connect_timeout" in parsed.query:
        return url
    return parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_SECONDS)}).render_as_string(
        hide_password=False
    )


def publication_rows(conn: Connection, dialect: str) -> list[dict[str, str]]:
    """``pg_publication_tables`` for the publication (SQLite: ``wexlot_publication``, schema ``public``)."""
    if dialect == "postgresql":
        rows = conn.execute(
            text(
                "SELECT pubname, schemaname, tablename FROM pg_publication_tables WHERE pubname = :pub"
                " ORDER BY schemaname, tablename"
            ),
            {"pub": PUBLICATION},
        ).all()
        return [{"pubname": str(p), "schemaname": str(s), "tablename": str(t)} for p, s, t in rows]
    names = publication.published_tables_sync(conn, dialect)
    return [{"pubname": PUBLICATION, "schemaname": "public", "tablename": t} for t in names]


def _database_position(conn: Connection, dialect: str) -> int:
    """The newest change position stored in the history (what a caught-up server has delivered)."""
    if dialect == "postgresql":
        from wexlot.realtime.sources.postgres import CURRENT_POSITION

        return int(conn.execute(text(CURRENT_POSITION)).scalar_one())
    return int(
        conn.execute(
            text(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'wexlot_changes'), 0),"
                " coalesce((SELECT max(id) FROM wexlot_changes), 0))"
            )
        ).scalar_one()
    )


def _slot(conn: Connection, slot: str) -> dict[str, Any] | None:
    row = conn.execute(
        text(
            "SELECT active, active_pid, wal_status, confirmed_flush_lsn::text,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint"
            " FROM pg_replication_slots WHERE slot_name = :slot"
        ),
        {"slot": slot},
    ).first()
    if row is None:
        return None
    active, pid, wal_status, confirmed, lag = row
    return {
        "slot_name": slot,
        "active": bool(active),
        "active_pid": pid,
        "wal_status": wal_status,
        "confirmed_flush_lsn": confirmed,
        "lag_bytes": None if lag is None else int(lag),
    }


# --- status --------------------------------------------------------------------------------------------------


@realtime.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: publication, capture and server status.")
@click.option(
    "--url", default=None, help="URL of the running server to ask for its status (default: the public URL, as serve)."
)
@database_options
@click.pass_context
def status(ctx: click.Context, as_json: bool, url: str | None, data_dir: str | None, database_url: str | None) -> None:
    """Print the published tables and, if a server answers at --url, its realtime status."""
    settings = _settings(ctx, data_dir, database_url)
    dialect = dialect_of(settings.db_url)
    base_url = (url or settings.base_url).rstrip("/")
    answer = _server_status(settings, base_url)
    live = answer.get("status")
    slot = None
    with _database(settings, write=False) as conn:
        rows = publication_rows(conn, dialect)
        position = _database_position(conn, dialect)
        if dialect == "postgresql":
            from wexlot.realtime.sources.postgres import slot_name

            capture = (live or {}).get("capture") or {}
            slot = _slot(conn, str(capture.get("slot") or slot_name(settings.node_id)))
    published = sorted(r["tablename"] for r in rows if r["schemaname"] == "public" and r["tablename"] in TABLE_NAMES)
    report = {
        "database_url": redact(settings.db_url),
        "publication": {
            "name": PUBLICATION,
            "tables": rows,
            "published": published,
            "not_published": sorted(set(TABLE_NAMES) - set(published)),
        },
        "capture": {
            "backend": dialect,
            "database_position": position,
            "server_position": live.get("position") if live else None,
            "lag_changes": max(0, position - int(live["position"])) if live and "position" in live else None,
            "slot": slot,
        },
        "server": answer,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    _print_publication(report)
    _print_server(report)


def _server_status(settings: Settings, base_url: str) -> dict[str, Any]:
    """``{url, reachable, error, status}``: the server's realtime status, or why there is none."""
    out: dict[str, Any] = {"url": base_url, "reachable": False, "error": None, "status": None}
    try:
        key = server.service_key(settings)
    except server.ServerError as exc:
        out["reachable"] = server.answers(base_url)
        out["error"] = str(exc)
        return out
    try:
        out["status"] = server.realtime_status(base_url, key)
        out["reachable"] = True
    except server.ServerError as exc:
        out["reachable"] = not exc.unreachable
        out["error"] = str(exc)
        if exc.status == 401:
            out["error"] += " (the server signs with another JWT secret: use its --data-dir or WEXLOT_JWT_SECRET)"
    return out


def _print_publication(report: dict[str, Any]) -> None:
    pub = report["publication"]
    count = len(pub["published"])
    click.echo(f"Publication {PUBLICATION} on {report['database_url']}: {count} of {len(TABLE_NAMES)} CRM tables")
    click.echo("")
    for line in _table(["pubname", "schemaname", "tablename"], pub["tables"]):
        click.echo(line)
    if pub["not_published"]:
        missing = " ".join(pub["not_published"])
        click.echo(f"Not published (no realtime events): {', '.join(pub['not_published'])}")
        click.echo(f"  enable with: wexlot realtime enable {missing}")


def _table(columns: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """psql's aligned format: header, rule, rows, ``(N rows)``."""
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = [" " + " | ".join(c.center(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("-" + "-+-".join("-" * w for w in widths) + "-")
    lines += [" " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.append(f"({len(rows)} row{'s' * (len(rows) != 1)})")
    return lines


def _print_server(report: dict[str, Any]) -> None:
    answer, capture = report["server"], report["capture"]
    live = answer["status"]
    click.echo("")
    if live is None:
        if not answer["reachable"]:
            reason = answer["error"] or f"no server answering at {answer['url']}"
            click.echo(f"{reason[:1].upper()}{reason[1:]}; showing the publication only.")
        else:
            click.echo(f"Server at {answer['url']} gave no realtime status: {answer['error']}")
        if capture["slot"] is not None:
            click.echo(_slot_line(capture["slot"]))
        return
    started = live.get("started_at")
    since = ""
    if isinstance(started, int | float):
        at = dt.datetime.fromtimestamp(started, dt.UTC)
        since = f", up {format_age(dt.datetime.now(dt.UTC) - at)} (since {at:%Y-%m-%d %H:%M:%S} UTC)"
    click.echo(f"Server {answer['url']}{since}")
    click.echo(f"  connections: {live.get('connections', 0)}")
    details = live.get("connection_details") or []
    for conn in details[:MAX_LISTED]:
        click.echo(
            f"    #{conn.get('id')} from {conn.get('remote') or '?'} (protocol {conn.get('vsn')}), "
            f"{conn.get('channels', 0)} channel(s), outbox {conn.get('outbox_frames', 0)} frames / "
            f"{format_bytes(int(conn.get('outbox_bytes') or 0))}"
        )
    _more(len(details))
    channels = live.get("channels") or []
    click.echo(f"  channels: {len(channels)}")
    for ch in channels[:MAX_LISTED]:
        flags = ", private" if ch.get("private") else ""
        click.echo(
            f"    {ch.get('topic')} on #{ch.get('connection')}: {ch.get('state')}{flags}, as {ch.get('principal')}, "
            f"presence {ch.get('presence', 0)}, {ch.get('events_sent', 0)} events sent"
        )
        for b in ch.get("bindings") or []:
            flt = f" filter {b['filter']}" if b.get("filter") else ""
            table = f"{b.get('schema') or 'public'}.{b.get('table') or '*'}"
            click.echo(f"      postgres_changes {b.get('event') or '*'} on {table}{flt} (id {b.get('id')})")
    _more(len(channels))
    click.echo(f"  presence: {live.get('presence', 0)} tracked")
    counts = live.get("events_by_table") or {}
    per_table = ", ".join(f"{t} {n}" for t, n in sorted(counts.items())) or "none yet"
    deliveries = int(live.get("deliveries") or 0)
    click.echo(f"  events by table: {per_table} ({deliveries} deliver{'y' if deliveries == 1 else 'ies'})")
    lag = capture["lag_changes"]
    behind = "caught up" if lag == 0 else f"{lag} change(s) behind" if lag is not None else "lag unknown"
    click.echo(
        f"  capture ({(live.get('capture') or {}).get('backend', capture['backend'])}): position "
        f"{live.get('position')}, database at {capture['database_position']} ({behind}); "
        f"oldest retained {live.get('oldest_position')}"
    )
    extra = live.get("capture") or {}
    if "slot" in extra:
        state = "connected" if extra.get("connected") else "NOT connected"
        click.echo(
            f"    stream: {state}, acknowledged {extra.get('acknowledged_lsn')}, "
            f"{extra.get('restarts', 0)} restart(s), {extra.get('queued', 0)} queued"
        )
    if capture["slot"] is not None:
        click.echo("  " + _slot_line(capture["slot"]).strip())
    retention = live.get("retention_seconds")
    if isinstance(retention, int | float):
        click.echo(f"  retention: {format_age(dt.timedelta(seconds=retention))} of history for catch-up")
    error = live.get("last_error") or extra.get("last_error")
    click.echo(f"  last error: {error or 'none'}")


def _more(count: int) -> None:
    if count > MAX_LISTED:
        click.echo(f"    … and {count - MAX_LISTED} more (all of them with --json)")


def _slot_line(slot: dict[str, Any]) -> str:
    lag = slot["lag_bytes"]
    state = f"active (pid {slot['active_pid']})" if slot["active"] else "inactive"
    behind = "lag unknown" if lag is None else f"{format_bytes(lag)} behind the WAL"
    return (
        f"Replication slot {slot['slot_name']}: {state}, confirmed {slot['confirmed_flush_lsn']}, {behind}"
        f" (wal_status {slot['wal_status']})"
    )


# --- enable / disable ----------------------------------------------------------------------------------------


def _chosen(tables: tuple[str, ...], all_tables: bool) -> set[str]:
    if all_tables and tables:
        raise click.UsageError("give table names or --all, not both")
    if not all_tables and not tables:
        raise click.UsageError(f"name at least one table ({', '.join(sorted(TABLE_NAMES))}), or --all")
    try:
        return publication.check_tables(TABLE_NAMES if all_tables else tables)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _toggle(ctx: click.Context, data_dir: str | None, database_url: str | None, wanted: set[str], on: bool) -> None:
    settings = _settings(ctx, data_dir, database_url)
    dialect = dialect_of(settings.db_url)
    with _database(settings, write=True) as conn:
        before = set(publication.published_tables_sync(conn, dialect)) & set(TABLE_NAMES)
        partial = _not_full(conn) if dialect == "postgresql" else set()
        change = publication.enable_sync if on else publication.disable_sync
        try:
            after = set(change(conn, dialect, wanted)) & set(TABLE_NAMES)
        except ValueError as exc:  # e.g. a FOR ALL TABLES publication
            raise CliError(str(exc)) from None
        repaired = sorted(partial - _not_full(conn)) if partial else []
    changed = sorted(after - before) if on else sorted(before - after)
    unchanged = sorted(wanted - set(changed))
    verb, state = ("Enabled", "already published") if on else ("Disabled", "already unpublished")
    total = f"{PUBLICATION} publishes {len(after)} of {len(TABLE_NAMES)} CRM tables"
    if changed:
        click.echo(f"{verb} {', '.join(changed)}: {total}. Applies to writes from now on; no restart needed.")
    if unchanged:
        was = "was" if len(unchanged) == 1 else "were"
        tail = "" if changed or repaired else f"; nothing changed ({total})"
        click.echo(f"{', '.join(unchanged)} {was} {state}{tail}.")
    if repaired:
        click.echo(
            f"Set REPLICA IDENTITY FULL on {', '.join(repaired)} (UPDATE/DELETE events carry the whole old row)."
        )


def _not_full(conn: Connection) -> set[str]:
    """The CRM tables whose replica identity is not FULL (PostgreSQL)."""
    rows = conn.execute(
        text(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"
            " AND relreplident <> 'f' AND relname = ANY(:names)"
        ),
        {"names": list(TABLE_NAMES)},
    ).scalars()
    return {str(r) for r in rows}


@realtime.command("enable")
@click.argument("tables", nargs=-1)
@click.option("--all", "all_tables", is_flag=True, help="All 7 CRM tables.")
@database_options
@click.pass_context
def enable(
    ctx: click.Context, tables: tuple[str, ...], all_tables: bool, data_dir: str | None, database_url: str | None
) -> None:
    """Broadcast changes of TABLE… (or --all CRM tables): add them to the publication."""
    _toggle(ctx, data_dir, database_url, _chosen(tables, all_tables), on=True)


@realtime.command("disable")
@click.argument("tables", nargs=-1)
@click.option("--all", "all_tables", is_flag=True, help="All 7 CRM tables.")
@database_options
@click.pass_context
def disable(
    ctx: click.Context, tables: tuple[str, ...], all_tables: bool, data_dir: str | None, database_url: str | None
) -> None:
    """Stop broadcasting changes of TABLE… (or --all CRM tables): remove them from the publication."""
    _toggle(ctx, data_dir, database_url, _chosen(tables, all_tables), on=False)
