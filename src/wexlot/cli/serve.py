from __future__ import annotations

import click
import uvicorn

from wexlot.app import build_app
from wexlot.cli.common import database_options, load_settings, with_secret
from wexlot.cli.keys import keys_for
from wexlot.cli.migrate import run_migrations
from wexlot.logs import configure as configure_logging


@click.command()
@database_options
@click.option("--host", default=None, help="Address to listen on (env WEXLOT_HOST; default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (env WEXLOT_PORT; default 54321).")
@click.option("--demo", is_flag=True, help="Load demo data when the database is empty.")
def serve(data_dir: str | None, database_url: str | None, host: str | None, port: int | None, demo: bool) -> None:
    """Migrate the database, start the server and print its URL and keys."""
    settings = with_secret(load_settings(data_dir=data_dir, database_url=database_url, host=host, port=port))
    run_migrations(settings.db_url)
    if demo:
        from wexlot.cli.demo import load_demo_if_empty

        load_demo_if_empty(settings)
    values = keys_for(settings)
    click.echo(f"WeXlot serving on {values['url']}")
    click.echo(f"  anon key:         {values['anon_key']}")
    click.echo(f"  service_role key: {values['service_role_key']}")
    configure_logging(settings.log_format)
    app = build_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        proxy_headers=bool(settings.proxies),
        forwarded_allow_ips=",".join(sorted(settings.proxies)) or None,
        log_level="info",
        server_header=False,
        limit_concurrency=None,
        backlog=4096,
    )
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after a clean shutdown; nothing to report
        pass
