"""What the row test needs about parent rows, kept in memory and fed by the change stream.

Activities and interactions are readable iff the companies/contacts/deals they reference are. Only
*private* parents can hide a child, so only those are kept (id → visibility and owner); any other
parent is answered as a team row. The cache is loaded once at start and then updated from every
captured change, so checking a child never queries the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from wexlot.crm.access import PARENTS, ParentLookup
from wexlot.crm.tables import CRM_TABLES

PARENT_TABLES = ("companies", "contacts", "deals")
TEAM_ROW: Mapping[str, Any] = {"visibility": "team", "owner_id": None}


class ParentCache:
    def __init__(self) -> None:
        self._private: dict[str, dict[Any, Mapping[str, Any]]] = {t: {} for t in PARENT_TABLES}

    async def load(self, conn: AsyncConnection) -> None:
        for name in PARENT_TABLES:
            table = CRM_TABLES[name]
            rows = await conn.execute(
                select(table.c.id, table.c.visibility, table.c.owner_id).where(table.c.visibility == "private")
            )
            self._private[name] = {r.id: {"visibility": r.visibility, "owner_id": r.owner_id} for r in rows}

    def lookup(self, table: str, ref: Any) -> Mapping[str, Any] | None:
        entries = self._private.get(table)
        if entries is None:
            return None
        return entries.get(ref, TEAM_ROW)

    def lookup_with(self, overrides: Mapping[tuple[str, Any], Mapping[str, Any]]) -> ParentLookup:
        """A lookup that sees ``overrides`` (e.g. a parent's state before the current change)."""

        def lookup(table: str, ref: Any) -> Mapping[str, Any] | None:
            return overrides.get((table, ref)) or self.lookup(table, ref)

        return lookup

    def apply(self, table: str, record: Mapping[str, Any] | None, old_record: Mapping[str, Any] | None) -> bool:
        """Update from a change; True when the parent's readability inputs changed."""
        if table not in self._private:
            return False
        row = record if record is not None else old_record
        if row is None:
            return False
        entries = self._private[table]
        before = entries.get(row["id"], TEAM_ROW)
        if record is not None and record.get("visibility") == "private":
            entries[row["id"]] = {"visibility": "private", "owner_id": record.get("owner_id")}
        else:
            entries.pop(row["id"], None)
        after = entries.get(row["id"], TEAM_ROW)
        return before != after

    def count(self) -> int:
        return sum(len(v) for v in self._private.values())


def child_links(parent: str) -> list[tuple[str, str]]:
    """(child table, FK column) pairs whose readability depends on rows of ``parent``."""
    return [(child, col) for child, refs in PARENTS.items() for col, target in refs if target == parent]
