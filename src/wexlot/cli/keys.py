from __future__ import annotations

import json

import click

from wexlot.auth.tokens import Tokens
from wexlot.cli.common import database_options, load_settings, with_secret
from wexlot.config import Settings


def keys_for(settings: Settings) -> dict[str, str]:
    tokens = Tokens(settings.jwt_secret, settings.base_url, settings.jwt_expiry)
    return {"url": settings.base_url, "anon_key": tokens.anon_key, "service_role_key": tokens.service_key}


@click.command()
@database_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object {url, anon_key, service_role_key}.")
def keys(data_dir: str | None, database_url: str | None, as_json: bool) -> None:
    """Print the server URL and the anon / service_role API keys."""
    settings = with_secret(load_settings(data_dir=data_dir, database_url=database_url))
    values = keys_for(settings)
    if as_json:
        click.echo(json.dumps(values))
        return
    click.echo(f"URL:              {values['url']}")
    click.echo(f"anon key:         {values['anon_key']}")
    click.echo(f"service_role key: {values['service_role_key']}  (keep secret: bypasses all access rules)")
