"""`wexlot user create|list|set-password` on both backends: real database, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from wexlot.auth import passwords, sessions, users
from wexlot.cli import cli


@pytest.fixture(autouse=True)
def _no_wexlot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("WEXLOT_")]:
        monkeypatch.delenv(name)


def run(data_dir: Path, url: str, *args: str, input: str | None = None) -> Result:
    where = ["--data-dir", str(data_dir), "--database-url", url]
    return CliRunner().invoke(cli, ["user", *args, *where], input=input)


def test_create_makes_a_login_and_its_staff_row(data_dir: Path, database_url: str) -> None:
    r = run(data_dir, database_url, "create", "Ann@Example.com", "--password", "ann-pass-1", "--role", "admin",
            "--name", "Ann Admin")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "created ann@example.com (admin" in r.output
    assert "ann-pass-1" not in r.output
    with users.transaction(database_url) as conn:
        account = users.by_email(conn, "ann@example.com")
    assert account is not None and account.staff is not None
    assert (account.staff.role, account.staff.full_name, account.staff.is_active) == ("admin", "Ann Admin", True)
    assert account.user.encrypted_password and account.user.encrypted_password.startswith("$argon2id$")
    assert passwords.verify_password(account.user.encrypted_password, "ann-pass-1")


def test_create_prompts_for_the_password_twice(data_dir: Path, database_url: str) -> None:
    r = run(data_dir, database_url, "create", "rep@example.com", "--role", "rep", "--name", "Rep",
            input="first-pass\nsecond-pass\nrep-pass-1\nrep-pass-1\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "rep-pass-1" not in r.output  # hidden input is not echoed
    with users.transaction(database_url) as conn:
        account = users.by_email(conn, "rep@example.com")
    assert account is not None and passwords.verify_password(account.user.encrypted_password, "rep-pass-1")


def test_list_shows_role_and_state(data_dir: Path, database_url: str) -> None:
    assert "no users yet" in run(data_dir, database_url, "list").output
    for email, role in (("b@example.com", "rep"), ("a@example.com", "manager")):
        assert run(data_dir, database_url, "create", email, "--password", "pass-123", "--role", role,
                   "--name", email[0].upper()).exit_code == 0  # fmt: skip
    r = run(data_dir, database_url, "list")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["EMAIL", "NAME", "ROLE", "STATUS", "LAST_SIGN_IN", "ID"]
    assert lines[1].split()[:4] == ["a@example.com", "A", "manager", "active"]
    assert lines[2].split()[:4] == ["b@example.com", "B", "rep", "active"]
    rows = json.loads(run(data_dir, database_url, "list", "--json").output)
    assert [(row["email"], row["role"], row["status"]) for row in rows] == [
        ("a@example.com", "manager", "active"),
        ("b@example.com", "rep", "active"),
    ]
    assert all("password" not in json.dumps(row) for row in rows)


def test_set_password_replaces_it_and_ends_sessions(data_dir: Path, database_url: str) -> None:
    assert run(data_dir, database_url, "create", "rep@example.com", "--password", "old-pass-1", "--role", "rep",
               "--name", "Rep").exit_code == 0  # fmt: skip
    with users.transaction(database_url) as conn:
        account = users.by_email(conn, "rep@example.com")
        assert account is not None
        session_id, _ = sessions.start(conn, account.id, users.now_utc())
    r = run(data_dir, database_url, "set-password", "REP@example.com", input="new-pass-2\nnew-pass-2\n")
    assert r.exit_code == 0, r.output
    assert "1 session(s) signed out" in r.output
    with users.transaction(database_url) as conn:
        account = users.by_email(conn, "rep@example.com")
        assert account is not None and not sessions.exists(conn, session_id)
    assert passwords.verify_password(account.user.encrypted_password, "new-pass-2")
    assert not passwords.verify_password(account.user.encrypted_password, "old-pass-1")
    r = run(data_dir, database_url, "set-password", "rep@example.com", "--password", "newer-pass-3")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "a@example.com", "--password", "pass-123", "--role", "admin", "--name", "Again"],
         "A user with this email address has already been registered"),
        (["create", "b@example.com", "--password", "abc", "--role", "rep", "--name", "B"],
         "Password should be at least 6 characters."),
        (["create", "not-an-email", "--password", "pass-123", "--role", "rep", "--name", "B"],
         "Unable to validate email address: invalid format"),
        (["create", "c@example.com", "--password", "pass-123", "--role", "rep", "--name", "  "],
         "the full name must not be empty"),
        (["set-password", "nobody@example.com", "--password", "pass-123"], "no login with that email"),
    ],
)  # fmt: skip
def test_errors_are_one_line(data_dir: Path, database_url: str, args: list[str], message: str) -> None:
    assert run(data_dir, database_url, "create", "a@example.com", "--password", "pass-123", "--role", "admin",
               "--name", "A").exit_code == 0  # fmt: skip
    r = run(data_dir, database_url, *args)
    assert r.exit_code == 1
    assert r.output.strip() == f"Error: {message}"


def test_role_must_be_one_of_three(data_dir: Path, database_url: str) -> None:
    r = run(data_dir, database_url, "create", "x@example.com", "--password", "pass-123", "--role", "owner",
            "--name", "X")  # fmt: skip
    assert r.exit_code == 2 and "'owner' is not one of 'admin', 'manager', 'rep'" in r.output


def test_duplicate_email_in_a_real_process_has_no_traceback(data_dir: Path, database_url: str) -> None:
    command = [sys.executable, "-m", "wexlot", "user", "--data-dir", str(data_dir), "--database-url", database_url,
               "create", "dup@example.com", "--password", "pass-123", "--role", "rep", "--name", "Dup"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEXLOT_")}
    first = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert second.returncode == 1
    assert second.stderr.strip() == "Error: A user with this email address has already been registered"
    assert "Traceback" not in second.stdout + second.stderr
