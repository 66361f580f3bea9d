"""The built-in doctor checks, in the order they run (later ones may require earlier ones)."""

from __future__ import annotations

import stat
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import text
from sqlalchemy.engine import make_url

from wexlot.config import ConfigError
from wexlot.doctor import realtime
from wexlot.doctor.runner import Check, CheckResult, Context, failed, first_line, passed, skipped
from wexlot.storage import migrate

DATABASE = "database"
MIGRATIONS = "migrations"
JWT_SECRET = "jwt-secret"
WAL_LEVEL = "wal-level"


def database_reachable(ctx: Context) -> CheckResult:
    """Connect and ask the server its version; a missing SQLite file is reported, not created."""
    if ctx.dialect == "sqlite":
        path = make_url(ctx.url).database or ""
        if path != ":memory:" and not Path(path).expanduser().is_file():
            return failed(f"no SQLite database at {path}", "run `wexlot migrate` (or `wexlot serve`) to create it")
        query = "SELECT 'SQLite ' || sqlite_version()"
    else:
        query = "SELECT 'PostgreSQL ' || current_setting('server_version')"
    try:
        with ctx.engine().connect() as conn:
            version = conn.execute(text(query)).scalar_one()
    except Exception as exc:
        return failed(
            first_line(exc),
            "check that the database server is running and that --database-url / WEXLOT_DATABASE_URL is right",
        )
    return passed(f"{version} at {_where(ctx.url)}")


def migrations_current(ctx: Context) -> CheckResult:
    head = migrate.head()
    current = migrate.current(ctx.url)
    if current == head:
        return passed(f"at head revision {head}")
    if current is None:
        return failed("the database is not migrated (no schema revision)", "run `wexlot migrate`")
    try:
        ScriptDirectory(str(migrate.MIGRATIONS)).get_revision(current)
    except CommandError:
        return failed(
            f"the database is at revision {current}, which this wexlot does not know (head is {head})",
            "upgrade wexlot to the version that migrated this database",
        )
    return failed(f"the database is at revision {current}, head is {head}", "run `wexlot migrate`")


def jwt_secret(ctx: Context) -> CheckResult:
    """The secret signs every token and API key: set in the environment, or a private file."""
    settings = ctx.settings
    if settings.jwt_secret:
        try:
            settings.with_secret()
        except ConfigError as exc:
            return failed(str(exc), "unset WEXLOT_JWT_SECRET, or set it to a long random value")
        return skipped("set by WEXLOT_JWT_SECRET; no secret file is used")
    path = settings.secret_path
    if not path.exists():
        return failed(f"no secret file at {path}", "run `wexlot keys` or `wexlot serve` once to generate it")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return failed(f"{path} has mode {mode:04o}: other users can read it", f"chmod 600 {path}")
    try:
        settings.with_secret()
    except (ConfigError, OSError) as exc:
        return failed(f"{path}: {exc}", f"delete {path} to have a new secret generated (this changes the API keys)")
    return passed(f"{path} (mode {mode:04o})")


def wal_level(ctx: Context) -> CheckResult:
    """The realtime change feed decodes PostgreSQL's logical replication stream."""
    if ctx.dialect != "postgresql":
        return skipped("not PostgreSQL (SQLite changes are captured by triggers)")
    with ctx.engine().connect() as conn:
        level = conn.execute(text("SHOW wal_level")).scalar_one()
    if level == "logical":
        return passed("wal_level = logical")
    return failed(
        f"wal_level = {level}; realtime needs logical",
        "run `ALTER SYSTEM SET wal_level = logical;` as a superuser, then restart PostgreSQL",
    )


def _where(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ""
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


CHECKS: list[Check] = [
    Check(DATABASE, database_reachable),
    Check(MIGRATIONS, migrations_current, requires=(DATABASE,)),
    Check(JWT_SECRET, jwt_secret),
    Check(WAL_LEVEL, wal_level, requires=(DATABASE,)),
    # Realtime (wexlot.doctor.realtime): what broadcasts, whether it can be captured, and end to end.
    Check(realtime.PUBLICATION_CHECK, realtime.publication_holds_all_tables, requires=(MIGRATIONS,)),
    Check(realtime.REPLICA_IDENTITY, realtime.replica_identity_full, requires=(MIGRATIONS,)),
    Check(realtime.REPLICATION_SLOT, realtime.replication_slot, requires=(DATABASE,)),
    Check(realtime.SLOT_WAL_LIMIT, realtime.slot_wal_limit, requires=(DATABASE,)),
    Check(realtime.CHANGE_LOG, realtime.change_log, requires=(MIGRATIONS,)),
    Check(realtime.REALTIME_PROBE, realtime.realtime_probe, requires=(DATABASE,)),
]
"""Every check ``wexlot doctor`` runs, in order."""
