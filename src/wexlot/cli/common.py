"""Options every command shares, and turning settings errors into one clear line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from wexlot.config import ConfigError, Settings
from wexlot.storage.engine import DatabaseUrlError

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """One line on stderr and exit status 1 — never a traceback."""


def _env(name: str) -> str:
    return next(f.metadata["env"] for f in Settings.fields() if f.name == name)


def database_options(func: F) -> F:
    """``--data-dir`` and ``--database-url``, shown with their environment names in ``--help``."""
    func = click.option(
        "--database-url",
        default=None,
        help=f"Database URL (env {_env('database_url')}; default sqlite:///<data dir>/wexlot.db).",
    )(func)
    func = click.option(
        "--data-dir",
        default=None,
        help=f"Data directory (env {_env('data_dir')}; default ./wexlot-data).",
    )(func)
    return func


def load_settings(**overrides: Any) -> Settings:
    try:
        settings = Settings.from_env(**overrides)
        settings.db_url  # noqa: B018 - validates the data dir path
        return settings
    except (ConfigError, DatabaseUrlError) as exc:
        raise CliError(str(exc)) from None


def with_secret(settings: Settings) -> Settings:
    try:
        return settings.with_secret()
    except (ConfigError, OSError) as exc:
        raise CliError(str(exc)) from None
