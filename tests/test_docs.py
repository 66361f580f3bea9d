"""The README stays true: its settings table, CLI list, quick start, nginx snippet and links.

The settings table is generated (``.venv/bin/python docs/settings_table.py``); these tests read it
back and compare it with ``Settings.fields()`` itself, not with the generator's output.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from wexlot.cli import cli
from wexlot.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
REGENERATE = "run `.venv/bin/python docs/settings_table.py` to regenerate the README settings table"


def readme() -> str:
    return README.read_text()


def section(title: str) -> str:
    """The text of the README's ``## title`` section, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme(), re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def code_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced code block, indented ones (inside lists) included."""
    blocks = []
    for m in re.finditer(r"^( *)```(\w*)\n(.*?)^\1```$", text, re.M | re.S):
        indent = len(m.group(1))
        body = "".join(line[indent:] for line in m.group(3).splitlines(keepends=True))
        blocks.append((m.group(2), body))
    return blocks


def default_cell(value: Any) -> str:
    if value == "":
        return "*unset*"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def settings_rows() -> list[list[str]]:
    match = re.search(r"<!-- settings:begin[^>]*-->\n(.*?)<!-- settings:end -->", readme(), re.S)
    assert match, "README has no settings table markers"
    lines = [line for line in match.group(1).splitlines() if line.startswith("|")]
    assert lines[0].startswith("| Setting |"), lines[0]
    rows = []
    for line in lines[2:]:  # after the header and the alignment row
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        rows.append(cells)
    return rows


def test_settings_table_lists_exactly_the_settings() -> None:
    rows = settings_rows()
    fields = Settings.fields()
    assert [r[0] for r in rows] == [f"`{f.name}`" for f in fields], REGENERATE
    for (name, env, default, help_text), f in zip(rows, fields, strict=True):
        assert env == f"`{f.metadata['env']}`", f"{name}: {REGENERATE}"
        assert default == default_cell(f.default), f"{name}: {REGENERATE}"
        assert html.unescape(help_text) == f.metadata["help"], f"{name}: {REGENERATE}"


def test_every_environment_variable_in_the_readme_exists() -> None:
    known = {f.metadata["env"] for f in Settings.fields()}
    mentioned = set(re.findall(r"\bWEXLOT_[A-Z_]+\b", readme()))
    assert mentioned - known == set()


def _commands(group: click.Group, prefix: str = "wexlot") -> list[str]:
    """Every command and subcommand, as `wexlot --help` (and each group's --help) lists them."""
    result = CliRunner().invoke(cli, [*prefix.split()[1:], "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    listed = re.findall(r"^  (\S+)  ", result.output.split("Commands:", 1)[1], re.M)
    assert listed, result.output
    found = []
    for name in listed:
        command = group.commands[name]
        found.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix} {name}")
    return found


def test_every_cli_command_is_documented() -> None:
    commands = _commands(cli)
    assert "wexlot serve" in commands and "wexlot user create" in commands
    documented = section("Command line")
    missing = [c for c in commands if not re.search(rf"`{re.escape(c)}(?: [^`]*)?`", documented)]
    assert missing == [], f"README 'Command line' does not describe {missing}"


def test_quick_start_is_the_two_scripts() -> None:
    commands = [body.strip() for lang, body in code_blocks(section("Quick start")) if lang == "sh"]
    assert commands == ["./scripts/serve", "./scripts/test"]
    for command in commands:
        path = ROOT / command
        assert path.is_file() and path.stat().st_mode & 0o111, f"{command} is not an executable file"
    text = section("Quick start")
    for printed in ("WeXlot serving on http://127.0.0.1:54321", "anon key", "service_role key"):
        assert printed in text
    assert "admin@wexlot.demo / wexlot-demo" in text


def test_readme_shows_deploy_nginx_conf_verbatim() -> None:
    blocks = [body for lang, body in code_blocks(readme()) if lang == "nginx"]
    assert blocks == [NGINX_CONF.read_text()], "the README's nginx block must be deploy/nginx.conf, byte for byte"


def test_nginx_conf_matches_the_settings_defaults() -> None:
    conf = NGINX_CONF.read_text()
    defaults = Settings()
    assert f"server 127.0.0.1:{defaults.port};" in conf
    size = re.search(r"client_max_body_size (\d+)([km]?);", conf)
    assert size, "deploy/nginx.conf sets no client_max_body_size"
    factor = {"": 1, "k": 1024, "m": 1024 * 1024}[size.group(2)]
    assert int(size.group(1)) * factor == defaults.max_body_bytes


def test_relative_links_resolve() -> None:
    targets = re.findall(r"\]\(([^)#]+)\)", readme())
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert "bench/RESULTS.md" in local
    assert [t for t in local if not (ROOT / t).exists()] == []
