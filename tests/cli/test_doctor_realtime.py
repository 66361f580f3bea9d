"""`wexlot doctor`'s realtime checks: publication, replica identity, slot, WAL cap, change log, end-to-end probe."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from support.live_server import LiveServer
from support.pg_cluster import PgCluster, free_port
from wexlot.cli import cli
from wexlot.config import Settings
from wexlot.storage.engine import sync_engine
from wexlot.storage.migrate import upgrade

pytestmark = pytest.mark.timeout(120)
REALTIME = ["publication", "replica-identity", "replication-slot", "slot-wal-limit", "change-log", "realtime-probe"]


@pytest.fixture(autouse=True)
def _no_wexlot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("WEXLOT_")]:
        monkeypatch.delenv(name)


def run(data_dir: Path, url: str, *args: str) -> Result:
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(data_dir), "--database-url", url])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def doctor(data_dir: Path, url: str, server_url: str) -> tuple[int, dict[str, Any]]:
    result = run(data_dir, url, "doctor", "--json", "--url", server_url)
    report = json.loads(result.stdout)
    report["checks"] = {c["name"]: c for c in report["checks"]}
    return result.exit_code, report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {name: c["status"] for name, c in report["checks"].items() if name in REALTIME}


def healthy(backend: str) -> dict[str, str]:
    if backend == "postgres":
        # The test cluster leaves max_slot_wal_keep_size unset: a warning, not a failure.
        return dict.fromkeys(REALTIME, "pass") | {"slot-wal-limit": "warn"}
    return dict.fromkeys(REALTIME, "pass") | dict.fromkeys(["replica-identity", "replication-slot", "slot-wal-limit"],
                                                           "skip")  # fmt: skip


def sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def remove_from_publication(url: str, table: str) -> None:
    """Behind wexlot's back, as an operator with psql / the sqlite3 shell would."""
    if url.startswith("sqlite"):
        sql(url, f"DELETE FROM wexlot_publication WHERE table_name = '{table}'")
    else:
        sql(url, f"ALTER PUBLICATION supabase_realtime DROP TABLE public.{table}")


@pytest.fixture
def secret_dir(data_dir: Path) -> Path:
    Settings(data_dir=str(data_dir)).with_secret()
    return data_dir


def test_healthy_setup_with_a_running_server_passes(live_server: LiveServer, data_dir: Path, backend: str) -> None:
    url = live_server.database_url
    code, report = doctor(data_dir, url, live_server.url)
    assert code == 0, report
    assert report["ok"] is True
    assert statuses(report) == healthy(backend)
    probe = report["checks"]["realtime-probe"]
    assert probe["detail"].startswith("INSERT on platforms received ") and " ms after the write" in probe["detail"]
    assert sql(url, "SELECT count(*) FROM platforms WHERE name LIKE 'wexlot-doctor-%'") == [(0,)]  # cleaned up
    assert "7 CRM tables" in report["checks"]["publication"]["detail"]
    if backend == "postgres":
        assert report["checks"]["replication-slot"]["detail"].startswith("wexlot_node1 active (pid ")
        assert "behind the WAL" in report["checks"]["replication-slot"]["detail"]
        warning = report["checks"]["slot-wal-limit"]
        assert warning["ok"] is True and "-1" in warning["detail"] and "max_slot_wal_keep_size" in warning["fix"]

    # The text report: one line per check, the warning's fix printed, and exit 0.
    result = run(data_dir, url, "doctor", "--url", live_server.url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  PASS  realtime-probe" in result.output
    if backend == "postgres":
        assert lines[-1] == "All checks passed, 1 warning."
        warn = next(i for i, line in enumerate(lines) if line.startswith("  WARN  slot-wal-limit"))
        assert "fix: cap it below the free WAL disk space" in lines[warn + 1]
    else:
        assert lines[-1] == "All checks passed."
    # The earlier probes' INSERT and DELETE are in the history now (the last DELETE may still be in flight).
    code, report = doctor(data_dir, url, live_server.url)
    assert code == 0
    assert int(report["checks"]["change-log"]["detail"].split()[0]) >= 3


def test_a_table_missing_from_the_publication_fails_until_enabled(
    live_server: LiveServer, data_dir: Path, backend: str
) -> None:
    url = live_server.database_url
    remove_from_publication(url, "deals")
    code, report = doctor(data_dir, url, live_server.url)
    assert code == 1
    assert statuses(report) == healthy(backend) | {"publication": "fail"}
    check = report["checks"]["publication"]
    assert check["detail"] == "deals is not in publication supabase_realtime: no realtime events for it"
    assert check["fix"] == "run `wexlot realtime enable deals`"

    text = run(data_dir, url, "doctor", "--url", live_server.url).output
    assert "  FAIL  publication" in text and "fix: run `wexlot realtime enable deals`" in text
    assert text.splitlines()[-1].startswith("1 check failed")

    result = run(data_dir, url, "realtime", "enable", "deals")
    assert result.exit_code == 0, result.output
    code, report = doctor(data_dir, url, live_server.url)
    assert code == 0, report
    assert statuses(report) == healthy(backend)


def test_several_missing_tables_are_all_named(database_url: str, secret_dir: Path) -> None:
    remove_from_publication(database_url, "staff")
    remove_from_publication(database_url, "contacts")
    code, report = doctor(secret_dir, database_url, f"http://127.0.0.1:{free_port()}")
    assert code == 1
    check = report["checks"]["publication"]
    assert check["detail"].startswith("contacts, staff are not in publication supabase_realtime")
    assert check["fix"] == "run `wexlot realtime enable contacts staff`"


def test_the_probe_fails_clearly_when_the_server_is_down(database_url: str, data_dir: Path, backend: str) -> None:
    # Run a server once (it creates the node's replication slot on PostgreSQL), then stop it.
    with LiveServer(data_dir, database_url) as server:
        server_url = server.url
    code, report = doctor(data_dir, database_url, server_url)
    assert code == 1
    assert statuses(report) == healthy(backend) | {"realtime-probe": "fail"}
    probe = report["checks"]["realtime-probe"]
    assert probe["detail"] == f"server not reachable at {server_url} (connection refused)"
    assert "`wexlot serve`" in probe["fix"]
    if backend == "postgres":
        slot = report["checks"]["replication-slot"]["detail"]
        assert slot.startswith(f"wexlot_node1 inactive: no server answering at {server_url}")

    result = run(data_dir, database_url, "doctor", "--url", server_url)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("  FAIL  realtime-probe"))
    assert lines[i].endswith(f"server not reachable at {server_url} (connection refused)")
    assert lines[i + 1].strip().startswith("fix: start it with `wexlot serve`")
    assert "Traceback" not in result.output


def test_the_probe_says_when_platforms_is_not_published(live_server: LiveServer, data_dir: Path) -> None:
    url = live_server.database_url
    remove_from_publication(url, "platforms")
    code, report = doctor(data_dir, url, live_server.url)
    assert code == 1
    probe = report["checks"]["realtime-probe"]
    assert probe["status"] == "fail" and "platforms" in probe["detail"]
    assert probe["fix"] == "run `wexlot realtime enable platforms`"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_probe_with_another_secret_is_refused(live_server: LiveServer, tmp_path: Path) -> None:
    other = tmp_path / "other"
    Settings(data_dir=str(other)).with_secret()
    code, report = doctor(other, live_server.database_url, live_server.url)
    assert code == 1
    probe = report["checks"]["realtime-probe"]
    assert "HTTP 401" in probe["detail"] and "--data-dir" in probe["fix"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_probe_without_a_secret_fails_and_generates_none(database_url: str, data_dir: Path) -> None:
    code, report = doctor(data_dir, database_url, f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert report["checks"]["realtime-probe"]["status"] == "fail"
    assert "no JWT secret" in report["checks"]["realtime-probe"]["detail"]
    assert not (data_dir / "jwt-secret").exists()


def test_stale_change_log_rows_are_a_warning(database_url: str, secret_dir: Path, backend: str) -> None:
    old = "2020-01-01T00:00:00.000000Z"
    for n in range(3):
        if backend == "sqlite":
            sql(database_url, f"INSERT INTO wexlot_changes (table_name, type, record, committed_at)"
                              f" VALUES ('platforms', 'INSERT', '{{}}', '{old}')")  # fmt: skip
        else:
            sql(database_url, f"INSERT INTO wexlot_changes (commit_lsn, seq, table_name, type, record, committed_at)"
                              f" VALUES (1, {n}, 'platforms', 'INSERT', '{{}}', '{old}')")  # fmt: skip
    _, report = doctor(secret_dir, database_url, f"http://127.0.0.1:{free_port()}")
    check = report["checks"]["change-log"]
    assert check["status"] == "warn" and check["ok"] is True
    # The newest row is kept whatever its age (positions never go backwards), so 2 of 3 are stale.
    assert check["detail"].startswith("3 changes") and "2 are past the window" in check["detail"]
    assert "retention 7 d" in check["detail"]


# --- PostgreSQL only ------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_replica_identity_not_full_fails_with_the_alter_table_fix(database_url: str, secret_dir: Path) -> None:
    sql(database_url, "ALTER TABLE public.contacts REPLICA IDENTITY DEFAULT")
    sql(database_url, "ALTER TABLE public.deals REPLICA IDENTITY NOTHING")
    code, report = doctor(secret_dir, database_url, f"http://127.0.0.1:{free_port()}")
    assert code == 1
    check = report["checks"]["replica-identity"]
    assert check["status"] == "fail"
    assert "contacts has REPLICA IDENTITY DEFAULT" in check["detail"]
    assert "deals has REPLICA IDENTITY NOTHING" in check["detail"]
    assert check["fix"] == (
        "run `ALTER TABLE public.contacts REPLICA IDENTITY FULL`; `ALTER TABLE public.deals REPLICA IDENTITY FULL`"
    )


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_a_missing_slot_fails_and_says_how_it_is_created(database_url: str, secret_dir: Path) -> None:
    code, report = doctor(secret_dir, database_url, f"http://127.0.0.1:{free_port()}")
    assert code == 1
    check = report["checks"]["replication-slot"]
    assert check["status"] == "fail"
    assert check["detail"].startswith("no replication slot wexlot_node1 for node 'node1'")
    assert "wexlot serve" in check["fix"]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_slot_of_another_node_id_is_looked_up_by_its_name(live_server: LiveServer, data_dir: Path) -> None:
    url = live_server.database_url
    result = CliRunner().invoke(
        cli,
        ["doctor", "--json", "--data-dir", str(data_dir), "--database-url", url, "--url", live_server.url],
        env={"WEXLOT_NODE_ID": "Node-2"},
    )
    check = {c["name"]: c for c in json.loads(result.stdout)["checks"]}["replication-slot"]
    assert check["status"] == "fail"
    assert check["detail"].startswith("no replication slot wexlot_node_2_")  # slot_name() of "Node-2"


@pytest.mark.postgres
def test_a_capped_slot_wal_size_passes(secret_dir: Path) -> None:
    with PgCluster(settings={"max_slot_wal_keep_size": "'1GB'"}) as cluster:
        url = cluster.create_database("crm")
        upgrade(url)
        _, report = doctor(secret_dir, url, f"http://127.0.0.1:{free_port()}")
    check = report["checks"]["slot-wal-limit"]
    assert check["status"] == "pass" and check["detail"] == "max_slot_wal_keep_size = 1GB"
