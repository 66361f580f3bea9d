"""The one door to the database: every request runs inside exactly one transaction from here.

SQLite allows one writer at a time, so writes queue on an asyncio lock and start with
``BEGIN IMMEDIATE`` (no "database is locked" half-way through a request); reads run concurrently
on WAL snapshots. On PostgreSQL each write transaction carries the acting staff id in the
transaction-local setting ``wexlot.actor``, which the ``updated_by`` trigger reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from wexlot.storage.engine import async_engine, dialect_of


class Database:
    def __init__(self, url: str, pool_size: int = 20) -> None:
        self.url = url
        self.dialect = dialect_of(url)
        self.engine: AsyncEngine = async_engine(url, pool_size=pool_size)
        self._write_lock = asyncio.Lock()
        if self.is_sqlite:
            # Let us emit BEGIN ourselves (pysqlite's implicit transactions are off).
            event.listen(self.engine.sync_engine, "connect", _sqlite_manual_transactions)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction: one consistent snapshot for the whole request (WAL on SQLite,
        REPEATABLE READ on PostgreSQL, whose default would take a new snapshot per statement)."""
        async with self.engine.connect() as conn:
            if not self.is_sqlite:
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; committed when the block exits normally, rolled back otherwise."""
        if self.is_sqlite:
            async with self._write_lock, self.engine.connect() as conn:
                await conn.execution_options(wexlot_immediate=True)
                async with conn.begin():
                    yield conn
            return
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    async def set_actor(self, conn: AsyncConnection, staff_id: str | None) -> None:
        """Name the staff member this transaction acts for (PostgreSQL's ``updated_by`` trigger reads it).

        SQLite has no session variables; there the server writes ``updated_by`` in its statements.
        """
        if staff_id and not self.is_sqlite:
            await conn.execute(text("SELECT set_config('wexlot.actor', :a, true)"), {"a": staff_id})

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_manual_transactions(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get("wexlot_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
