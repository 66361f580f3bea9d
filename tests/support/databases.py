"""A fresh, migrated database copied from the session templates, for fixtures of any scope."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


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
