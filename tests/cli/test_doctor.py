"""`wexlot doctor`: passes on a healthy setup, and names the problem (with its fix) on broken ones."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from support.pg_cluster import PgCluster, free_port
from wexlot.cli import cli
from wexlot.config import Settings
from wexlot.storage.engine import sync_engine
from wexlot.storage.migrate import upgrade

_numbers = itertools.count(1)
BASE = ("database", "migrations", "jwt-secret", "wal-level")
"""The checks this file is about; the realtime ones are tested in test_doctor_realtime.py."""


@pytest.fixture(autouse=True)
def _no_wexlot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("WEXLOT_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def secret_dir(data_dir: Path) -> Path:
    """A data dir whose JWT secret file exists with mode 0600, as `wexlot serve` leaves it."""
    Settings(data_dir=str(data_dir)).with_secret()
    return data_dir


def doctor(data_dir: Path, url: str, *extra: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Run `wexlot doctor --json` (no server: --url points nowhere); return the exit code and the report."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    args = ["doctor", "--json", "--data-dir", str(data_dir), "--database-url", url, "--url", nowhere, *extra]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    report = json.loads(result.stdout)
    report["checks"] = {c["name"]: c for c in report["checks"]}
    return result.exit_code, report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {name: c["status"] for name, c in report["checks"].items() if name in BASE}


def failing(report: dict[str, Any]) -> set[str]:
    return {name for name, c in report["checks"].items() if c["status"] == "fail"}


def test_healthy_database_passes(database_url: str, secret_dir: Path, backend: str) -> None:
    code, report = doctor(secret_dir, database_url)
    expected = {"database": "pass", "migrations": "pass", "jwt-secret": "pass"}
    expected["wal-level"] = "pass" if backend == "postgres" else "skip"
    assert statuses(report) == expected
    # With no server running, only what needs one fails (exit 0 with a server: test_doctor_realtime.py).
    assert code == 1
    assert failing(report) == ({"realtime-probe", "replication-slot"} if backend == "postgres" else {"realtime-probe"})


def test_text_report_has_one_line_per_check(database_url: str, secret_dir: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    args = ["doctor", "--data-dir", str(secret_dir), "--database-url", database_url, "--url", nowhere]
    result = CliRunner().invoke(cli, args)
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines[1:5]] in (["PASS"] * 4, ["PASS"] * 3 + ["SKIP"])
    checks = [line for line in lines[1:-1] if not line.strip().startswith("fix:")]
    assert all(line.split()[0] in ("PASS", "FAIL", "SKIP", "WARN") for line in checks)
    assert [line.split()[1] for line in checks[:4]] == list(BASE)
    assert lines[-1].startswith(("All checks passed", "1 check failed", "2 checks failed"))


@pytest.fixture
def unmigrated_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An existing but empty database (no schema at all)."""
    if backend == "sqlite":
        path = tmp_path / "empty.db"
        sqlite3.connect(path).execute("CREATE TABLE unrelated (x INTEGER)").connection.close()
        yield f"sqlite:///{path}"
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = f"doctor_empty_{next(_numbers)}"
    yield cluster.create_database(name)
    cluster.drop_database(name)


def test_unmigrated_database_fails_migrations(unmigrated_url: str, secret_dir: Path) -> None:
    code, report = doctor(secret_dir, unmigrated_url)
    assert code == 1
    check = report["checks"]["migrations"]
    assert check["status"] == "fail"
    assert "not migrated" in check["detail"]
    assert "wexlot migrate" in check["fix"]
    assert report["checks"]["database"]["status"] == "pass"


def test_unknown_revision_says_upgrade_wexlot(database_url: str, secret_dir: Path) -> None:
    engine = sync_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    finally:
        engine.dispose()
    code, report = doctor(secret_dir, database_url)
    assert code == 1
    assert "9999" in report["checks"]["migrations"]["detail"]
    assert "upgrade wexlot" in report["checks"]["migrations"]["fix"]


def test_missing_sqlite_file_fails_and_is_not_created(tmp_path: Path, secret_dir: Path) -> None:
    path = tmp_path / "nowhere" / "wexlot.db"
    code, report = doctor(secret_dir, f"sqlite:///{path}")
    assert code == 1
    assert statuses(report) == {"database": "fail", "migrations": "skip", "jwt-secret": "pass", "wal-level": "skip"}
    assert "wexlot migrate" in report["checks"]["database"]["fix"]
    assert not path.exists() and not path.parent.exists()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_world_readable_secret_fails(database_url: str, secret_dir: Path) -> None:
    secret = secret_dir / "jwt-secret"
    secret.chmod(0o644)
    code, report = doctor(secret_dir, database_url)
    assert code == 1
    check = report["checks"]["jwt-secret"]
    assert check["status"] == "fail"
    assert "0644" in check["detail"] and str(secret) in check["detail"]
    assert check["fix"] == f"chmod 600 {secret}"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_missing_secret_fails(database_url: str, data_dir: Path) -> None:
    code, report = doctor(data_dir, database_url)
    assert code == 1
    assert "no secret file" in report["checks"]["jwt-secret"]["detail"]
    assert not (data_dir / "jwt-secret").exists()  # doctor reports, it does not generate


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(("secret", "status"), [("changethis", "fail"), ("x" * 48, "skip")])
def test_secret_from_environment(database_url: str, data_dir: Path, secret: str, status: str) -> None:
    code, report = doctor(data_dir, database_url, env={"WEXLOT_JWT_SECRET": secret})
    assert statuses(report)["jwt-secret"] == status
    assert code == 1  # the realtime probe fails too: no server is running
    assert ("jwt-secret" in failing(report)) == (status == "fail")
    assert "WEXLOT_JWT_SECRET" in report["checks"]["jwt-secret"]["detail"]


def test_unreachable_database_is_one_failure_not_a_crash(secret_dir: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/x"
    code, report = doctor(secret_dir, url)
    assert code == 1
    assert statuses(report) == {"database": "fail", "migrations": "skip", "jwt-secret": "pass", "wal-level": "skip"}
    assert failing(report) == {"database"}  # the realtime checks are skipped, not failed
    database = report["checks"]["database"]
    assert "127.0.0.1" in database["detail"] and "\n" not in database["detail"]
    assert "WEXLOT_DATABASE_URL" in database["fix"]

    result = CliRunner().invoke(cli, ["doctor", "--data-dir", str(secret_dir), "--database-url", url])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "FAIL  database" in result.output and "fix:" in result.output


@pytest.mark.parametrize("url", ["mysql://root@localhost/crm", "not a url"])
def test_unsupported_database_url_fails_cleanly(secret_dir: Path, url: str) -> None:
    result = CliRunner().invoke(cli, ["doctor", "--data-dir", str(secret_dir), "--database-url", url])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert "FAIL  database" in result.output and "Traceback" not in result.output


@pytest.mark.postgres
def test_wal_level_replica_fails_with_the_fix(secret_dir: Path) -> None:
    with PgCluster(settings={"wal_level": "replica"}) as cluster:
        url = cluster.create_database("crm")
        upgrade(url)
        code, report = doctor(secret_dir, url)
    assert code == 1
    assert statuses(report) == {"database": "pass", "migrations": "pass", "jwt-secret": "pass", "wal-level": "fail"}
    check = report["checks"]["wal-level"]
    assert "replica" in check["detail"]
    assert "ALTER SYSTEM SET wal_level = logical" in check["fix"] and "restart" in check["fix"]
