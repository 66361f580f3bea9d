"""``wexlot demo``: fill an empty database with a believable sales team and its data.

Every demo staff member can sign in with the documented demo password ``wexlot-demo``. The data is
only ever loaded into an empty database (no staff, CRM records or users), in one transaction, so a
half-loaded demo or demo rows mixed into real data cannot happen.
"""

from __future__ import annotations

import click
from sqlalchemy import Connection

from wexlot.cli.common import CliError, database_options, load_settings
from wexlot.cli.migrate import redact, run_migrations
from wexlot.config import Settings
from wexlot.crm import demo as demo_data
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
    counts = load_demo(settings)
    if counts is None:
        click.echo("Database is not empty; demo data not loaded.")
        return
    _report(settings, counts)


def load_demo(settings: Settings) -> dict[str, int] | None:
    """Insert the demo in one transaction; None (and no change) when the database is not empty."""
    engine = sync_engine(settings.db_url)
    try:
        with engine.begin() as conn:
            if not demo_data.is_empty(conn):
                return None
            return demo_data.load(conn, create_login)
    except CliError:
        raise
    except Exception as exc:  # a driver error or a concurrent load (unique e-mail): one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(f"could not load demo data into {redact(settings.db_url)}: {first}") from None
    finally:
        engine.dispose()


def create_login(conn: Connection, member: demo_data.StaffMember) -> str:
    """Create ``member``'s auth user (password :data:`~wexlot.crm.demo.DEMO_PASSWORD`) and staff row."""
    return _insert_user_and_staff(conn, member)


def _insert_user_and_staff(conn: Connection, member: demo_data.StaffMember) -> str:
    import datetime as dt
    import uuid

    from argon2 import PasswordHasher

    from wexlot.auth.tables import auth_tables
    from wexlot.crm.tables import staff

    user_id, staff_id = str(uuid.uuid4()), str(uuid.uuid4())
    conn.execute(
        auth_tables(conn.dialect.name).users.insert(),
        {
            "id": user_id,
            "email": member.email,
            "encrypted_password": PasswordHasher().hash(demo_data.DEMO_PASSWORD),
            "role": "authenticated",
            "aud": "authenticated",
            "app_metadata": {"provider": "email", "providers": ["email"]},
            "user_metadata": {"full_name": member.full_name},
            "email_confirmed_at": dt.datetime.now(dt.UTC),
        },
    )
    conn.execute(
        staff.insert(),
        {
            "id": staff_id,
            "user_id": user_id,
            "full_name": member.full_name,
            "email": member.email,
            "role": member.role,
            "title": member.title,
            "phone": member.phone,
            "is_active": True,
        },
    )
    return staff_id


def _report(settings: Settings, counts: dict[str, int]) -> None:
    summary = ", ".join(f"{n} {table}" for table, n in counts.items())
    click.echo(f"Loaded demo data into {redact(settings.db_url)}: {summary}.")
    admin, *others = demo_data.STAFF
    click.echo(f"Demo admin login: {admin.email} / {demo_data.DEMO_PASSWORD}")
    click.echo("Other demo logins, same password: " + ", ".join(f"{m.email} ({m.role})" for m in others))
