"""``wexlot user``: create logins for staff, list them, reset a password — from the server's shell.

``--data-dir`` / ``--database-url`` may be given to ``wexlot user`` or to each subcommand (the
subcommand's wins). Every command migrates the database first. Errors are one line, exit status 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from wexlot.auth import users
from wexlot.cli.common import CliError, database_options, load_settings
from wexlot.cli.migrate import redact, run_migrations
from wexlot.crm.tables import ROLES
from wexlot.errors import AuthError


@click.group("user")
@database_options
@click.pass_context
def user(ctx: click.Context, data_dir: str | None, database_url: str | None) -> None:
    """Manage logins: each is an auth user plus the staff row that gives it a role."""
    ctx.obj = {"data_dir": data_dir, "database_url": database_url}


@contextmanager
def _database(ctx: click.Context, data_dir: str | None, database_url: str | None) -> Iterator[Connection]:
    """Migrate, then one transaction; AuthErrors and driver errors become one-line CLI errors."""
    parent: dict[str, Any] = ctx.obj or {}
    settings = load_settings(
        data_dir=data_dir or parent.get("data_dir"), database_url=database_url or parent.get("database_url")
    )
    run_migrations(settings.db_url)
    try:
        with users.transaction(settings.db_url) as conn:
            yield conn
    except AuthError as exc:
        message = "no login with that email" if exc.code == "user_not_found" else exc.message
        raise CliError(message) from None
    except DBAPIError as exc:
        cause = str(exc.orig or exc).strip().splitlines()
        raise CliError(f"database error on {redact(settings.db_url)}: {cause[0] if cause else exc}") from None


def _password_option(help_text: str) -> Any:
    return click.option(
        "--password",
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help=help_text + " Prompted for (hidden, twice) when not given.",
    )


@user.command("create")
@click.argument("email")
@_password_option("Password for the new login.")
@click.option("--role", type=click.Choice(ROLES), required=True, help="Staff role.")
@click.option("--name", "full_name", required=True, help='Full name, e.g. "Ann Admin".')
@database_options
@click.pass_context
def create(
    ctx: click.Context,
    email: str,
    password: str,
    role: str,
    full_name: str,
    data_dir: str | None,
    database_url: str | None,
) -> None:
    """Create a login for EMAIL and its staff row (or link the existing staff row with that email)."""
    with _database(ctx, data_dir, database_url) as conn:
        account = users.create_staff_user(conn, email, password, role, full_name)
    click.echo(f"created {account.email} ({role}, user id {account.id})")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@database_options
@click.pass_context
def list_users(ctx: click.Context, as_json: bool, data_dir: str | None, database_url: str | None) -> None:
    """List every login with its staff name, role and whether it is active."""
    with _database(ctx, data_dir, database_url) as conn:
        accounts = users.list_accounts(conn)
    rows = [_row(a) for a in accounts]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no users yet; create one with `wexlot user create EMAIL --role admin --name NAME`")
        return
    columns = ("email", "name", "role", "status", "last_sign_in", "id")
    table = [[str(r[c] or "-") for c in columns] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in table)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for line in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


@user.command("set-password")
@click.argument("email")
@_password_option("The new password.")
@database_options
@click.pass_context
def set_password(ctx: click.Context, email: str, password: str, data_dir: str | None, database_url: str | None) -> None:
    """Set a new password for EMAIL and sign that login out everywhere."""
    with _database(ctx, data_dir, database_url) as conn:
        ended = users.set_password(conn, email, password)
    click.echo(f"password changed for {email.strip().lower()}; {ended} session(s) signed out")


def _row(account: users.Account) -> dict[str, Any]:
    link = account.staff
    status = "no staff row" if link is None else ("active" if link.is_active else "inactive")
    return {
        "email": account.email,
        "name": link.full_name if link else None,
        "role": link.role if link else None,
        "status": status,
        "last_sign_in": users.iso(account.user.last_sign_in_at),
        "id": account.id,
    }
