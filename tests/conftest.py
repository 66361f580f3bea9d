"""Shared fixtures: backends, freshly migrated databases, the throwaway Postgres cluster, live servers.

Migrating is the slow part of a database test, so each backend is migrated once per session into a
template (a SQLite file, a Postgres `TEMPLATE` database) and every test gets a cheap copy of it.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `support` must import the same way under every --import-mode, not only the default "prepend".
sys.path.insert(0, str(Path(__file__).parent))

from support.databases import BACKENDS
from support.live_server import LiveServer
from support.pg_cluster import PgCluster

PG_TEMPLATE = "wexlot_template"
_pg_db_numbers = itertools.count(1)


def _migrate(url: str) -> None:
    # Imported late: collection must not depend on the app package importing cleanly.
    from wexlot.storage.migrate import upgrade

    upgrade(url)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that (directly or through a fixture) needs `backend` once per backend."""
    if "backend" not in metafunc.fixturenames:
        return
    # A test may pin its own backends with @pytest.mark.parametrize("backend", [...]).
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "backend" in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return
    params = [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
    metafunc.parametrize("backend", params, indirect=True)


# End-to-end modules that start real servers or replay long streams: left out of the fast subset
# (`-m "not slow and not compat and not browser"`), which must stay under three minutes.
SLOW_MODULES = {
    "test_realtime_live.py", "test_limits.py", "test_reverse_proxy.py", "test_doctor_realtime.py",
    "test_realtime_cli.py", "test_postgres_source.py", "test_demo.py", "test_auth_supabase_py.py",
}  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # Tests that use the cluster directly are Postgres tests too, so `-m "not postgres"` skips them.
        if "pg_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
        if item.path.name in SLOW_MODULES or "live_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Either "sqlite" or "postgres"; pytest_generate_tests parametrizes it."""
    name: str = getattr(request, "param", "sqlite")
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")
    return name


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL cluster for the whole session, started on first use."""
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite database file to copy for each test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "wexlot.db"
    _migrate(f"sqlite:///{path}")
    # Fold any WAL into the main file so that copying the one file copies everything.
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    """Name of a migrated, empty Postgres database to use as `CREATE DATABASE ... TEMPLATE`."""
    url = pg_cluster.create_database(PG_TEMPLATE)
    _migrate(url)
    # CREATE DATABASE ... TEMPLATE fails while anyone is connected to the template, so leave no
    # pooled connection behind and let nobody connect from now on.
    pg_cluster.psql(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s",
        params=(PG_TEMPLATE,),
    )
    pg_cluster.psql(f"ALTER DATABASE {PG_TEMPLATE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
    return PG_TEMPLATE


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a freshly migrated, empty database of the current backend, private to this test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "wexlot.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return

    # Looked up lazily so that SQLite-only runs never start Postgres.
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    pg_template_name: str = request.getfixturevalue("pg_template")
    name = f"test_{next(_pg_db_numbers)}"
    url = cluster.create_database(name, template=pg_template_name)
    yield url
    try:
        cluster.drop_database(name)
    except Exception:
        pass  # the cluster is deleted at the end of the session anyway


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty directory to pass as `--data-dir`."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def live_server(data_dir: Path, database_url: str) -> Iterator[LiveServer]:
    """A running `wexlot serve` subprocess on a free port, on this test's database."""
    with LiveServer(data_dir, database_url) as server:
        yield server
