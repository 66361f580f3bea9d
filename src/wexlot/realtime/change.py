"""What change capture produces, the same on both backends: ordered, committed row changes.

A :class:`Change` carries Python-typed values (exactly what a REST read of the row would give:
``Decimal`` money, aware ``datetime``, lists for tags), so the access rules and realtime filters
test it with the same code as REST. A :class:`ChangeSource` delivers whole transactions in commit
order to one async handler and only treats them as delivered once the handler has returned.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from wexlot.crm.tables import CRM_TABLES
from wexlot.crm.types import Flag, Money, TextList
from wexlot.crm.values import coerce, type_name

ChangeType = Literal["INSERT", "UPDATE", "DELETE"]


class RealtimeUnavailable(RuntimeError):
    """The database cannot stream changes (wal_level, privileges, a foreign slot); the message says why."""


@dataclass(frozen=True)
class Change:
    table: str
    type: ChangeType
    record: Mapping[str, Any] | None  # the new row (INSERT/UPDATE)
    old_record: Mapping[str, Any] | None  # the old row (UPDATE/DELETE), whole (replica identity full)
    commit_timestamp: dt.datetime
    position: int  # monotonically increasing across all changes; the catch-up cursor

    @property
    def row(self) -> Mapping[str, Any]:
        """The row this change is about: the new one, or the old one for a DELETE."""
        row = self.record if self.record is not None else self.old_record
        assert row is not None
        return row


Transaction = Sequence[Change]
TransactionHandler = Callable[[Transaction], Awaitable[None]]


class ChangeSource(Protocol):
    """A database's change stream. ``start`` begins delivering to ``handler``; ``stop`` ends it."""

    async def start(self, handler: TransactionHandler) -> None: ...

    async def stop(self) -> None: ...

    def wake(self) -> None:
        """Hint that this process just committed a write (lets SQLite skip its polling delay)."""

    async def current_position(self) -> int:
        """The position of the newest change stored so far (0 when none)."""
        ...

    async def changes_since(self, position: int, tables: Sequence[str], limit: int) -> list[Change]:
        """Stored changes after ``position`` for ``tables``, oldest first (for catch-up)."""
        ...

    async def oldest_position(self) -> int:
        """The oldest position still retained; a client behind it must refetch."""
        ...


def columns(table: str) -> list[dict[str, str]]:
    """``[{name, type}]`` in table order, with PostgreSQL type names (realtime's ``columns``)."""
    return [{"name": c.name, "type": type_name(c)} for c in CRM_TABLES[table].columns]


def row_from_json(table: str, data: Mapping[str, Any] | str | None, *, sqlite: bool = False) -> dict[str, Any] | None:
    """Decode a captured row (JSON text or object) into Python-typed values.

    ``sqlite=True`` reads the SQLite change log's storage form (integer cents, 0/1 booleans);
    otherwise the wire form (money as a JSON number, ISO timestamps) as stored on PostgreSQL.
    """
    if data is None:
        return None
    obj = json.loads(data) if isinstance(data, str) else data
    table_cols = CRM_TABLES[table].c
    out: dict[str, Any] = {}
    for name, value in obj.items():
        if name not in table_cols:
            continue
        col = table_cols[name]
        if value is None:
            out[name] = None
        elif sqlite and isinstance(col.type, Money):
            out[name] = col.type.process_result_value(value, _SQLITE)
        elif isinstance(col.type, Flag):
            out[name] = bool(value) if not isinstance(value, str) else coerce(col, value)
        elif isinstance(col.type, TextList) and isinstance(value, list):
            out[name] = [str(v) for v in value]
        else:
            out[name] = coerce(col, value)
    return out


class _SqliteDialect:
    name = "sqlite"


_SQLITE: Any = _SqliteDialect()
