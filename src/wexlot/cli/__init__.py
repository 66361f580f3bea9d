"""The ``wexlot`` command: one module per subcommand; each parses options and calls library code."""

from __future__ import annotations

import click

from wexlot.cli.common import CliError
from wexlot.cli.demo import demo
from wexlot.cli.doctor import doctor
from wexlot.cli.keys import keys
from wexlot.cli.migrate import migrate_cmd
from wexlot.cli.realtime import realtime
from wexlot.cli.serve import serve
from wexlot.cli.user import user


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="wexlot")
def cli() -> None:
    """WeXlot: a self-hosted CRM whose every open browser sees every change at once."""


cli.add_command(serve)
cli.add_command(migrate_cmd)
cli.add_command(keys)
cli.add_command(demo)
cli.add_command(doctor)
cli.add_command(user)
cli.add_command(realtime)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except CliError as exc:  # pragma: no cover - click handles ClickException subclasses itself
        raise SystemExit(str(exc)) from None
