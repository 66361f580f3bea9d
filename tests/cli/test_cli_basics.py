"""What every `wexlot` command promises: shared options, machine-readable keys, one-line errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from wexlot.cli import cli


@pytest.fixture(autouse=True)
def _no_wexlot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("WEXLOT_")]:
        monkeypatch.delenv(name)


def test_every_command_documents_the_database_options() -> None:
    """Checked in one loop over the registered commands, so a newly added command is covered too."""
    assert {"serve", "migrate", "keys", "demo", "doctor"} <= set(cli.commands)
    missing = {}
    for name in sorted(cli.commands):
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, f"{name} --help: {result.output}"
        wanted = ("--data-dir", "--database-url", "WEXLOT_DATA_DIR", "WEXLOT_DATABASE_URL")
        if absent := [w for w in wanted if w not in result.output]:
            missing[name] = absent
    assert not missing, f"commands whose --help lacks: {missing}"


def test_keys_json_prints_url_and_both_keys(data_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["keys", "--json", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    values = json.loads(result.stdout)
    assert set(values) == {"url", "anon_key", "service_role_key"}
    assert values["url"] == "http://127.0.0.1:54321"
    assert values["anon_key"].count(".") == 2 and values["service_role_key"].count(".") == 2
    assert values["anon_key"] != values["service_role_key"]
    assert stat.S_IMODE((data_dir / "jwt-secret").stat().st_mode) == 0o600
    again = CliRunner().invoke(cli, ["keys", "--json", "--data-dir", str(data_dir)])
    assert json.loads(again.stdout) == values  # same secret file, same keys


def test_placeholder_secret_is_one_line_without_traceback(data_dir: Path) -> None:
    """Through a real process: what a user sees on their terminal, exit status included."""
    env = {**os.environ, "WEXLOT_JWT_SECRET": "changethis"}
    result = subprocess.run(
        [sys.executable, "-m", "wexlot", "keys", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "WEXLOT_JWT_SECRET" in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["short", "changeme"])
def test_weak_secrets_are_refused_by_commands_that_sign(data_dir: Path, value: str) -> None:
    result = CliRunner().invoke(cli, ["keys", "--data-dir", str(data_dir)], env={"WEXLOT_JWT_SECRET": value})
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) == 1


def test_bad_setting_is_one_line(data_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["migrate", "--data-dir", str(data_dir)], env={"WEXLOT_PORT": "eighty"})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: WEXLOT_PORT must be a whole number, not 'eighty'"]


def test_migrate_twice_on_the_default_database(data_dir: Path) -> None:
    for _ in range(2):
        result = CliRunner().invoke(cli, ["migrate", "--data-dir", str(data_dir)])
        assert result.exit_code == 0, result.output
        assert "is at revision" in result.output
    assert (data_dir / "wexlot.db").is_file()


def test_migrate_twice(database_url: str, data_dir: Path) -> None:
    args = ["migrate", "--data-dir", str(data_dir), "--database-url", database_url]
    outputs = []
    for _ in range(2):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert outputs[0] == outputs[1]


def test_migrate_unreachable_database_is_one_line(data_dir: Path) -> None:
    url = "postgresql://postgres:hunter2@127.0.0.1:1/x"
    result = CliRunner().invoke(cli, ["migrate", "--data-dir", str(data_dir), "--database-url", url])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "hunter2" not in result.output  # the password is redacted
