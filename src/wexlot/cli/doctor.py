"""``wexlot doctor``: run the health checks and print one pass/fail line each, with the fix."""

from __future__ import annotations

import json

import click

from wexlot.cli.common import database_options, load_settings
from wexlot.cli.migrate import redact
from wexlot.doctor.checks import CHECKS
from wexlot.doctor.runner import CheckResult, run_checks

MARKS = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP", "warn": "WARN"}


@click.command()
@database_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object {ok, database_url, checks: [...]}.")
@click.option("--url", default=None, help="URL of the running server to probe (default: the public URL, as serve).")
def doctor(data_dir: str | None, database_url: str | None, as_json: bool, url: str | None) -> None:
    """Check the database, migrations, secret, replication and realtime end to end; exit 1 if any check fails."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    results = run_checks(settings, CHECKS, server_url=url)
    ok = all(r.ok for r in results)
    if as_json:
        report = {"ok": ok, "database_url": redact(settings.db_url), "checks": [r.as_json() for r in results]}
        click.echo(json.dumps(report, indent=2))
    else:
        _print_report(redact(settings.db_url), results)
    if not ok:
        raise click.exceptions.Exit(1)


def _print_report(url: str, results: list[CheckResult]) -> None:
    click.echo(f"wexlot doctor: {url}")
    width = max(len(r.name) for r in results)
    for r in results:
        click.echo(f"  {MARKS[r.status]}  {r.name:<{width}}  {r.detail}")
        if r.status in ("fail", "warn") and r.fix:
            click.echo(f"  {'':4}  {'':<{width}}  fix: {r.fix}")
    failures = sum(r.status == "fail" for r in results)
    warnings = sum(r.status == "warn" for r in results)
    summary = "All checks passed" if not failures else f"{failures} check{'s' * (failures > 1)} failed"
    click.echo(summary + (f", {warnings} warning{'s' * (warnings > 1)}." if warnings else "."))
