"""A fresh, migrated database copied from the session templates, for fixtures of any scope."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ("sqlite", "postgres")


@contextlib.contextmanager
def fresh_database(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, prefix: str
) -> Iterator[str]:
    """Yield the URL of a copy of the migrated template (SQLite file or PostgreSQL database); drop it after."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp(f"{prefix}-sqlite") / "wexlot.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url: str = cluster.create_database(name, template=request.getfixturevalue("pg_template"))
    yield url
    with contextlib.suppress(Exception):  # the cluster is deleted at the end of the session anyway
        cluster.drop_database(name)


def module_database_fixtures(label: str) -> tuple[Callable[..., Any], ...]:
    """Module-scoped ``backend``, ``data_dir`` and ``database_url``, overriding the root's function-scoped ones.

    For modules that start one server per backend: ``backend, data_dir, database_url =
    module_database_fixtures("browser")`` in their conftest (the root ``pytest_generate_tests`` still
    parametrizes ``backend``).
    """

    @pytest.fixture(scope="module", name="backend")
    def backend(request: pytest.FixtureRequest) -> str:
        name: str = getattr(request, "param", "sqlite")
        if name not in BACKENDS:
            raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")
        return name

    @pytest.fixture(scope="module", name="data_dir")
    def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
        """An empty directory to pass as ``--data-dir``, one per module and backend."""
        return tmp_path_factory.mktemp(f"{label}-data")

    @pytest.fixture(scope="module", name="database_url")
    def database_url(
        backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
    ) -> Iterator[str]:
        """A fresh copy of the migrated template for this module and backend."""
        with fresh_database(backend, request, tmp_path_factory, label) as url:
            yield url

    return backend, data_dir, database_url
