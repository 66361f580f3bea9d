"""``wexlot demo``: fill an empty database with a believable sales team and its data.

Every demo staff member can sign in with the documented demo password ``wexlot-demo``. The data is
only ever loaded into an empty database (no staff, CRM records or users), in one transaction, so a
half-loaded demo or demo rows mixed into real data cannot happen.
"""

from __future__ import annotations

import datetime as dt

import click
from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import DBAPIError

from wexlot.auth import users
from wexlot.auth.tables import auth_tables
from wexlot.cli.common import CliError, database_options, load_settings
from wexlot.cli.migrate import redact, run_migrations
from wexlot.config import Settings
from wexlot.crm import demo as demo_data
from wexlot.crm.tables import CRM_TABLES, staff
from wexlot.storage.engine import sync_engine


@click.command()
@database_options
def demo(data_dir: str | None, database_url: str | None) -> None:
    """Migrate, then load demo data (staff with logins, companies, deals, …) into an empty database."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    run_migrations(settings.db_url)
    counts = load_demo(settings)
    if counts is None:
        raise CliError(
            f"{redact(settings.db_url)} already has data; `wexlot demo` only loads into an empty database "
            "(choose a new --data-dir or --database-url)"
        )
    _report(settings, counts)


def load_demo_if_empty(settings: Settings) -> None:
    """For ``serve --demo`` (already migrated): load the demo into an empty database, else say so in one line."""
    try:
        counts = load_demo(settings)
    except CliError:
        # Another node started with --demo at the same moment and won the race: nothing to do.
        if _has_data(settings):
            counts = None
        else:
            raise
    if counts is None:
        click.echo("Database is not empty; demo data not loaded.")
        return
    _report(settings, counts)


def load_demo(settings: Settings) -> dict[str, int] | None:
    """Insert the demo in one transaction; None (and no change) when the database is not empty."""
    engine = sync_engine(settings.db_url)
    try:
        with engine.begin() as conn:
            if not is_empty(conn):
                return None
            return demo_data.load(conn, create_login)
    except CliError:
        raise
    except Exception as exc:  # a driver error or a concurrent load (unique e-mail): one line
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise CliError(f"could not load demo data into {redact(settings.db_url)}: {first}") from None
    finally:
        engine.dispose()


def _has_data(settings: Settings) -> bool:
    engine = sync_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            return not is_empty(conn)
    except Exception:
        return False
    finally:
        engine.dispose()


def is_empty(conn: Connection) -> bool:
    """True when no staff, CRM records or logins exist (platforms alone do not count)."""
    checked = [table for name, table in CRM_TABLES.items() if name != "platforms"]
    checked.append(auth_tables(conn.dialect.name).users)
    return all(conn.execute(select(func.count()).select_from(table)).scalar_one() == 0 for table in checked)


def create_login(conn: Connection, member: demo_data.StaffMember) -> str:
    """Create ``member``'s login (password :data:`~wexlot.crm.demo.DEMO_PASSWORD`) and staff row; return its id."""
    account = users.create_staff_user(conn, member.email, demo_data.DEMO_PASSWORD, member.role, member.full_name)
    if account.staff is None:  # pragma: no cover - create_staff_user always creates or links one
        raise RuntimeError(f"no staff row for {member.email}")
    # Title and phone are demo extras the login API does not take. The server writes its own
    # bookkeeping on SQLite (version + 1 keeps the table's AFTER trigger quiet).
    conn.execute(
        update(staff)
        .where(staff.c.id == account.staff.id)
        .values(
            title=member.title,
            phone=member.phone,
            version=staff.c.version + 1,
            updated_at=dt.datetime.now(dt.UTC),
        )
    )
    return account.staff.id


def _report(settings: Settings, counts: dict[str, int]) -> None:
    summary = ", ".join(f"{n} {table}" for table, n in counts.items())
    click.echo(f"Loaded demo data into {redact(settings.db_url)}: {summary}.")
    admin, *others = demo_data.STAFF
    click.echo(f"Demo admin login: {admin.email} / {demo_data.DEMO_PASSWORD}")
    click.echo("Other demo logins, same password: " + ", ".join(f"{m.email} ({m.role})" for m in others))
