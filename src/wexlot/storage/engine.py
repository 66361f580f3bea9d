"""Open database engines for a URL: async (the server) and sync (migrations, CLI, doctor).

``sqlite:///path`` and ``postgresql://…`` are the user-facing forms; the driver is chosen here.
SQLite connections get WAL, a busy timeout and enforced foreign keys on every connect.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


class DatabaseUrlError(ValueError):
    pass


def dialect_of(url: str) -> str:
    name = make_url(url).get_backend_name()
    if name in ("postgresql", "postgres"):
        return "postgresql"
    if name == "sqlite":
        return "sqlite"
    raise DatabaseUrlError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://…")


def _driver_url(url: str, driver: str) -> Any:
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername=f"{parsed.get_backend_name()}+{driver}")


def _regexp(pattern: str | None, value: Any) -> bool | None:
    if pattern is None or value is None:
        return None
    return re.search(pattern, str(value)) is not None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # PostgreSQL semantics: LIKE is case-sensitive (ILIKE is not); ~ needs a REGEXP function.
    dbapi_conn.create_function("regexp", 2, _regexp, deterministic=True)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA case_sensitive_like = ON")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA busy_timeout = 10000")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.close()


def _ensure_sqlite_dir(url: str) -> None:
    db = make_url(url).database
    if db and db != ":memory:":
        Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)


def sync_engine(url: str) -> Engine:
    if dialect_of(url) == "sqlite":
        _ensure_sqlite_dir(url)
        engine = create_engine(_driver_url(url, "pysqlite"), poolclass=None)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(_driver_url(url, "psycopg2"), pool_pre_ping=True)


def async_engine(url: str, pool_size: int = 20) -> AsyncEngine:
    if dialect_of(url) == "sqlite":
        _ensure_sqlite_dir(url)
        engine = create_async_engine(_driver_url(url, "aiosqlite"), pool_size=pool_size, max_overflow=0)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it costs a round trip on every checkout (a fifth of a simple read); a connection the
    # server dropped raises a disconnect error, and SQLAlchemy then discards it and refreshes the pool.
    return create_async_engine(_driver_url(url, "asyncpg"), pool_size=pool_size, max_overflow=10)
