"""`wexlot realtime status|enable|disable`: the publication as data, toggled live; a server's realtime status."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from support.live_server import LiveServer, keys
from support.pg_cluster import free_port
from support.phoenix import PhoenixClient, pg_binding
from wexlot.cli import cli
from wexlot.config import Settings
from wexlot.crm.tables import TABLE_NAMES
from wexlot.realtime import publication
from wexlot.storage.engine import dialect_of, sync_engine

pytestmark = pytest.mark.timeout(120)
ALL = sorted(TABLE_NAMES)


@pytest.fixture(autouse=True)
def _no_wexlot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("WEXLOT_")]:
        monkeypatch.delenv(name)


def wexlot(data_dir: Path, url: str, *args: str) -> Result:
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(data_dir), "--database-url", url])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def status_json(data_dir: Path, url: str, server_url: str) -> dict[str, Any]:
    result = wexlot(data_dir, url, "realtime", "status", "--json", "--url", server_url)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def published(url: str) -> list[str]:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return publication.published_tables_sync(conn, dialect_of(url))
    finally:
        engine.dispose()


def nowhere() -> str:
    """A URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


# --- status without a server --------------------------------------------------------------------------------


def test_status_prints_the_publication_and_says_no_server_answers(database_url: str, data_dir: Path) -> None:
    Settings(data_dir=str(data_dir)).with_secret()
    url = nowhere()
    result = wexlot(data_dir, database_url, "realtime", "status", "--url", url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith(": 7 of 7 CRM tables")
    assert lines[2].split() == ["pubname", "|", "schemaname", "|", "tablename"]
    rows = [line.split("|") for line in lines[4:11]]
    assert [[c.strip() for c in row] for row in rows] == [["supabase_realtime", "public", t] for t in ALL]
    assert "(7 rows)" in lines
    no_server = [line for line in lines if url in line]
    assert no_server == [f"No server answering at {url} (connection refused); showing the publication only."]

    report = status_json(data_dir, database_url, url)
    assert report["publication"]["published"] == ALL and report["publication"]["not_published"] == []
    assert report["publication"]["tables"][0] == {
        "pubname": "supabase_realtime",
        "schemaname": "public",
        "tablename": "activities",
    }
    assert report["server"]["reachable"] is False and report["server"]["status"] is None
    assert "connection refused" in report["server"]["error"]
    assert report["capture"]["database_position"] == 0


def test_status_of_a_missing_sqlite_database_is_one_line(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "nowhere" / "wexlot.db"
    result = wexlot(data_dir, f"sqlite:///{path}", "realtime", "status", "--url", nowhere())
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: no SQLite database at {path}; run `wexlot migrate` (or `wexlot serve`) first"
    ]
    assert not path.parent.exists()


# --- enable / disable ---------------------------------------------------------------------------------------


def test_disable_then_enable(database_url: str, data_dir: Path) -> None:
    result = wexlot(data_dir, database_url, "realtime", "disable", "contacts", "deals")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Disabled contacts, deals: supabase_realtime publishes 5 of 7 CRM tables.")
    assert published(database_url) == [t for t in ALL if t not in ("contacts", "deals")]

    report = status_json(data_dir, database_url, nowhere())
    assert report["publication"]["not_published"] == ["contacts", "deals"]
    text = wexlot(data_dir, database_url, "realtime", "status", "--url", nowhere()).output
    assert "(5 rows)" in text and "wexlot realtime enable contacts deals" in text

    again = wexlot(data_dir, database_url, "realtime", "disable", "deals")
    assert again.exit_code == 0
    assert again.output.strip() == (
        "deals was already unpublished; nothing changed (supabase_realtime publishes 5 of 7 CRM tables)."
    )

    result = wexlot(data_dir, database_url, "realtime", "enable", "deals")
    assert result.exit_code == 0, result.output
    assert published(database_url) == [t for t in ALL if t != "contacts"]
    result = wexlot(data_dir, database_url, "realtime", "enable", "--all")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Enabled contacts: supabase_realtime publishes 7 of 7 CRM tables.")
    assert published(database_url) == ALL


def test_disable_all_and_enable_all(database_url: str, data_dir: Path) -> None:
    assert wexlot(data_dir, database_url, "realtime", "disable", "--all").exit_code == 0
    assert published(database_url) == []
    assert status_json(data_dir, database_url, nowhere())["publication"]["tables"] == []
    assert wexlot(data_dir, database_url, "realtime", "enable", "--all").exit_code == 0
    assert published(database_url) == ALL


@pytest.mark.parametrize("command", ["enable", "disable"])
def test_unknown_table_is_refused_and_nothing_changes(database_url: str, data_dir: Path, command: str) -> None:
    result = wexlot(data_dir, database_url, "realtime", command, "contacts", "auth_users")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "'auth_users' cannot be published" in lines[0] and "contacts" in lines[0]
    assert published(database_url) == ALL


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("args", [(), ("--all", "contacts")])
def test_tables_or_all_is_required(database_url: str, data_dir: Path, args: tuple[str, ...]) -> None:
    result = wexlot(data_dir, database_url, "realtime", "enable", *args)
    assert result.exit_code == 2
    assert "--all" in result.output


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])
def test_enable_restores_replica_identity_full(database_url: str, data_dir: Path) -> None:
    engine = sync_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE public.contacts REPLICA IDENTITY DEFAULT")
    finally:
        engine.dispose()
    result = wexlot(data_dir, database_url, "realtime", "enable", "contacts")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "contacts was already published.",
        "Set REPLICA IDENTITY FULL on contacts (UPDATE/DELETE events carry the whole old row).",
    ]


# --- with a running server ------------------------------------------------------------------------------------


async def test_toggling_takes_effect_without_a_restart(live_server: LiveServer, data_dir: Path) -> None:
    url = live_server.database_url
    service = keys(data_dir, url)["service_role_key"]
    headers = {"apikey": service, "Authorization": f"Bearer {service}"}
    async with (
        PhoenixClient(live_server.url, service) as ws,
        httpx.AsyncClient(base_url=live_server.url, headers=headers, timeout=30) as http,
    ):
        reply = await ws.join("realtime:cli", {"postgres_changes": [pg_binding("contacts")]}, service)
        assert reply["status"] == "ok"
        await ws.expect(lambda f: f.get("event") == "system", what="subscribed")

        result = await asyncio.to_thread(wexlot, data_dir, url, "realtime", "disable", "contacts")
        assert result.exit_code == 0, result.output
        r = await http.post("/rest/v1/contacts", json={"first_name": "Unpublished"})
        assert r.status_code == 201, r.text
        await ws.nothing(lambda f: f.get("event") == "postgres_changes", 1.0)

        result = await asyncio.to_thread(wexlot, data_dir, url, "realtime", "enable", "contacts")
        assert result.exit_code == 0, result.output
        r = await http.post("/rest/v1/contacts", json={"first_name": "Published"})
        assert r.status_code == 201, r.text
        change = await ws.changes("realtime:cli", 10, first_name="Published")
        assert change["data"]["type"] == "INSERT"


async def test_status_shows_the_servers_connections_channels_and_capture(
    live_server: LiveServer, data_dir: Path
) -> None:
    url = live_server.database_url
    service = keys(data_dir, url)["service_role_key"]
    async with PhoenixClient(live_server.url, service) as ws:
        config = {
            "postgres_changes": [pg_binding("deals", "INSERT", "stage=eq.won")],
            "presence": {"key": "ann", "enabled": True},
        }
        assert (await ws.join("realtime:pipeline", config, service))["status"] == "ok"
        await ws.send("realtime:pipeline", "presence", {"type": "presence", "event": "track", "payload": {"at": 1}})
        await ws.expect(lambda f: f.get("event") == "presence_diff", what="presence_diff")

        result = await asyncio.to_thread(wexlot, data_dir, url, "realtime", "status", "--url", live_server.url)
        assert result.exit_code == 0, result.output
        text = result.output
        assert f"Server {live_server.url}, up " in text
        assert "  connections: 1\n" in text and "  channels: 1\n" in text
        assert "realtime:pipeline on #" in text and "as service_role, presence 1" in text
        assert "postgres_changes INSERT on public.deals filter stage=eq.won (id " in text
        assert "  presence: 1 tracked" in text
        assert "(caught up)" in text and "retention: 7 d" in text and "last error: none" in text
        if url.startswith("postgresql"):
            assert "stream: connected" in text and "Replication slot wexlot_node1: active" in text

        report = await asyncio.to_thread(status_json, data_dir, url, live_server.url)
    live = report["server"]["status"]
    assert report["server"]["reachable"] is True and report["server"]["error"] is None
    assert live["connections"] == 1 and live["presence"] == 1
    (channel,) = live["channels"]
    assert channel["topic"] == "realtime:pipeline" and channel["state"] == "joined"
    assert channel["bindings"][0]["table"] == "deals" and channel["bindings"][0]["filter"] == "stage=eq.won"
    assert report["capture"]["lag_changes"] == 0
    assert live["retention_seconds"] == 604800
    assert live["capture"]["backend"] == ("postgresql" if url.startswith("postgresql") else "sqlite")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_status_with_another_secret_says_the_key_was_refused(live_server: LiveServer, tmp_path: Path) -> None:
    other = tmp_path / "other"
    Settings(data_dir=str(other)).with_secret()
    result = wexlot(other, live_server.database_url, "realtime", "status", "--url", live_server.url)
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if live_server.url in line)
    assert "HTTP 401" in line and "another JWT secret" in line
    assert "(7 rows)" in result.output
