"""`wexlot demo` and `serve --demo`'s loader, on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from wexlot.auth import passwords, users
from wexlot.auth.tables import auth_tables
from wexlot.cli import cli
from wexlot.cli.demo import load_demo_if_empty
from wexlot.config import Settings
from wexlot.crm import demo
from wexlot.crm import tables as t
from wexlot.storage.engine import sync_engine


@pytest.fixture(autouse=True)
def _no_wexlot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("WEXLOT_")]:
        monkeypatch.delenv(name)


def counts(url: str) -> dict[str, int]:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            out = {
                n: conn.execute(select(func.count()).select_from(tbl)).scalar_one() for n, tbl in t.CRM_TABLES.items()
            }
            out["users"] = conn.execute(
                select(func.count()).select_from(auth_tables(conn.dialect.name).users)
            ).scalar_one()
            return out
    finally:
        engine.dispose()


def rows(url: str, table: str) -> list[dict]:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(t.CRM_TABLES[table])).mappings()]
    finally:
        engine.dispose()


PROMISED = {**demo.COUNTS, "users": len(demo.STAFF)}


def test_promised_counts_are_the_issue_s() -> None:
    assert demo.COUNTS["staff"] == 5
    assert demo.COUNTS["companies"] == 20
    assert demo.COUNTS["contacts"] == 50
    assert demo.COUNTS["deals"] == 30
    assert demo.COUNTS["platforms"] == 5


def test_demo_command_loads_the_promised_data(database_url: str, data_dir: Path) -> None:
    started = dt.datetime.now(dt.UTC)
    result = CliRunner().invoke(cli, ["demo", "--data-dir", str(data_dir), "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert f"Demo admin login: admin@wexlot.demo / {demo.DEMO_PASSWORD}" in result.output
    assert counts(database_url) == PROMISED

    staff = rows(database_url, "staff")
    assert Counter(s["role"] for s in staff) == {"admin": 1, "manager": 1, "rep": 3}
    assert all(s["is_active"] and s["user_id"] for s in staff)
    with users.transaction(database_url) as conn:
        accounts = {a.email: a for a in users.list_accounts(conn)}
    assert {s["email"] for s in staff} == set(accounts)
    assert {s["user_id"] for s in staff} == {a.id for a in accounts.values()}
    admin = accounts["admin@wexlot.demo"]
    assert admin.staff is not None and admin.staff.role == "admin" and admin.staff.is_active
    assert passwords.verify_password(admin.user.encrypted_password, demo.DEMO_PASSWORD)
    assert all(s["title"] and s["phone"] for s in staff)

    deals = rows(database_url, "deals")
    assert {d["stage"] for d in deals} == set(t.STAGES)
    assert all(isinstance(d["amount"], Decimal) and d["amount"] > 0 for d in deals)
    assert all((d["closed_at"] is not None) == (d["stage"] in t.CLOSED_STAGES) for d in deals)
    month_start = started.astimezone().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    won_this_month = [d for d in deals if d["stage"] == "won" and d["closed_at"] >= month_start]
    assert len(won_this_month) >= 3
    assert all(d["closed_at"] <= dt.datetime.now(dt.UTC) for d in deals if d["closed_at"])

    activities = rows(database_url, "activities")
    today = started.astimezone().date()
    open_acts = [a for a in activities if not a["completed"]]
    assert sum(a["due_at"].astimezone().date() == today for a in open_acts) >= 3
    assert sum(a["due_at"].astimezone().date() < today for a in open_acts) >= 3  # overdue
    done = [a for a in activities if a["completed"]]
    assert len(done) >= 5 and all(a["completed_at"] is not None for a in done)
    assert {"call", "meeting", "task"} <= {a["type"] for a in activities}

    platforms = {p["id"]: p["name"] for p in rows(database_url, "platforms")}
    assert set(platforms.values()) == {"Email", "Phone", "LinkedIn", "WhatsApp", "Website"}
    assert len({platforms[i["platform_id"]] for i in rows(database_url, "interactions")}) >= 4

    reps = {s["id"] for s in staff if s["role"] == "rep"}
    for table in ("companies", "contacts", "deals"):
        private = [r for r in rows(database_url, table) if r["visibility"] == "private"]
        assert private and all(r["owner_id"] in reps for r in private), table


def test_demo_refuses_a_database_with_data(database_url: str, data_dir: Path) -> None:
    args = ["demo", "--data-dir", str(data_dir), "--database-url", database_url]
    assert CliRunner().invoke(cli, args).exit_code == 0
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1
    assert "already has data" in again.output and len(again.output.strip().splitlines()) == 1
    assert "Traceback" not in again.output
    assert counts(database_url) == PROMISED


def test_load_demo_if_empty_is_idempotent(
    database_url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=str(data_dir), database_url=database_url)
    load_demo_if_empty(settings)
    assert "Demo admin login: admin@wexlot.demo" in capsys.readouterr().out
    load_demo_if_empty(settings)
    assert capsys.readouterr().out.strip() == "Database is not empty; demo data not loaded."
    assert counts(database_url) == PROMISED


@pytest.mark.parametrize("backend", ["sqlite"])
def test_demo_keeps_platforms_that_already_exist(database_url: str, data_dir: Path) -> None:
    engine = sync_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                t.platforms.insert(), {"id": "00000000-0000-4000-8000-000000000001", "name": "Email", "is_active": True}
            )
    finally:
        engine.dispose()
    result = CliRunner().invoke(cli, ["demo", "--data-dir", str(data_dir), "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert counts(database_url) == PROMISED


STAFF_IDS = {m.key: f"00000000-0000-4000-8000-00000000000{i}" for i, m in enumerate(demo.STAFF)}


def _content(rows_: demo.DemoRows) -> list[tuple]:
    """Everything but the random ids (and the columns holding them)."""
    return [
        tuple(sorted((k, v) for k, v in row.items() if k != "id" and not k.endswith("_id")))
        for _, table_rows in rows_.tables()
        for row in table_rows
    ]


def test_build_is_deterministic() -> None:
    now = dt.datetime(2026, 11, 25, 14, 0, tzinfo=dt.UTC)
    assert _content(demo.build(STAFF_IDS, now)) == _content(demo.build(STAFF_IDS, now))


@pytest.mark.parametrize(
    "now",
    [dt.datetime(2026, 12, 1, 0, 0, 30), dt.datetime(2026, 12, 31, 23, 59), dt.datetime(2027, 3, 15, 12, 0)],
    ids=["month-start", "month-end", "mid-month"],
)
def test_build_places_dates_around_now(now: dt.datetime) -> None:
    now = now.astimezone()  # local wall time, as the person running the demo sees it
    built = demo.build(STAFF_IDS, now)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    won = [d for d in built.deals if d["stage"] == "won"]
    assert sum(month_start <= d["closed_at"] <= now for d in won) == demo.WON_THIS_MONTH
    for _, table_rows in built.tables():
        assert all(row["created_at"] <= now for row in table_rows)
    for d in built.deals:
        assert d["closed_at"] is None or d["created_at"] < d["closed_at"] <= now
    for a in built.activities:
        assert a["completed_at"] is None or a["completed_at"] <= now
    due_today = [a for a in built.activities if not a["completed"] and a["due_at"].date() == now.date()]
    assert len(due_today) >= 6


def test_serve_demo_loads_once(database_url: str, data_dir: Path) -> None:
    """`serve --demo` loads into the empty database, and on the next start leaves the data alone."""
    from support.live_server import LiveServer

    with LiveServer(data_dir, database_url, extra_args=["--demo"], name="first") as server:
        assert "Demo admin login: admin@wexlot.demo" in server.logs()
    assert counts(database_url) == PROMISED
    with LiveServer(data_dir, database_url, extra_args=["--demo"], name="second") as server:
        assert "Database is not empty; demo data not loaded." in server.logs()
    assert counts(database_url) == PROMISED


def test_two_nodes_starting_with_demo_at_once_load_it_once(
    database_url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The loser of the race sees the winner's data and carries on instead of failing `serve`."""
    import threading

    settings = Settings(data_dir=str(data_dir), database_url=database_url)
    errors: list[BaseException] = []

    def node() -> None:
        try:
            load_demo_if_empty(settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=node) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    out = capsys.readouterr().out
    assert out.count("Demo admin login") == 1
    assert out.count("demo data not loaded") == 1
    assert counts(database_url) == PROMISED
