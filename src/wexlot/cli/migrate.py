from __future__ import annotations

import click

from wexlot.cli.common import CliError, database_options, load_settings
from wexlot.storage import migrate


def run_migrations(url: str) -> None:
    try:
        migrate.upgrade(url)
    except Exception as exc:  # any driver error: report it as one line
        raise CliError(f"could not migrate {redact(url)}: {str(exc).splitlines()[0]}") from None


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"


@click.command("migrate")
@database_options
def migrate_cmd(data_dir: str | None, database_url: str | None) -> None:
    """Bring the database schema up to date (safe to run repeatedly)."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    run_migrations(settings.db_url)
    click.echo(f"database {redact(settings.db_url)} is at revision {migrate.head()}")
