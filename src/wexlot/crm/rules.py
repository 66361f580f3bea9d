"""Business rules the server applies to its own writes (the migrations' triggers apply the same ones
to writes from outside the server).

* ``version`` +1, ``updated_at`` now and ``updated_by`` the caller's staff id on every update;
* ``deals.closed_at`` set when the stage becomes won/lost, cleared when reopened;
* ``activities.completed_at`` set and cleared with ``completed``.

On SQLite these expressions are what keeps a server write to exactly one row update; on PostgreSQL
the BEFORE trigger computes the same values again, harmlessly.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Table, and_, case, false, literal, not_, null, true

from wexlot.crm.tables import CLOSED_STAGES


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def insert_values(table: str, values: dict[str, Any], stamp: dt.datetime) -> dict[str, Any]:
    """Fill the rule-derived columns of a new row (the payload's own values win where they may)."""
    out = dict(values)
    if table == "deals":  # the column default stage is 'lead'
        out["closed_at"] = (out.get("closed_at") or stamp) if out.get("stage", "lead") in CLOSED_STAGES else None
    if table == "activities":
        out["completed_at"] = (out.get("completed_at") or stamp) if out.get("completed", False) else None
    return out


def update_values(table: Table, values: dict[str, Any], actor: str | None, stamp: dt.datetime) -> dict[str, Any]:
    """SET clause for an update: the payload plus bookkeeping and rule-derived columns."""
    out: dict[str, Any] = dict(values)
    out["version"] = table.c.version + 1
    out["updated_at"] = stamp
    out["updated_by"] = actor
    if table.name == "deals" and "stage" in values:
        stage = values["stage"]
        if stage in CLOSED_STAGES:
            keep = and_(table.c.stage == stage, table.c.closed_at.is_not(None))
            out["closed_at"] = case((keep, table.c.closed_at), else_=literal(stamp, table.c.closed_at.type))
        else:
            out["closed_at"] = None
    if table.name == "activities" and "completed" in values:
        if values["completed"]:
            keep = and_(table.c.completed.is_(true()), table.c.completed_at.is_not(None))
            out["completed_at"] = case((keep, table.c.completed_at), else_=literal(stamp, table.c.completed_at.type))
        else:
            out["completed_at"] = None
    return out


def merge_values(table: Table, excluded: Any, keys: list[str], actor: str | None, stamp: dt.datetime) -> dict[str, Any]:
    """SET clause for the update path of an upsert (``excluded`` is the proposed row)."""
    out: dict[str, Any] = {k: excluded[k] for k in keys if k != "id"}
    out.update({"version": table.c.version + 1, "updated_at": stamp, "updated_by": actor})
    if table.name == "deals" and "stage" in keys:
        keep = and_(table.c.stage == excluded.stage, table.c.closed_at.is_not(None))
        closed = excluded.stage.in_(CLOSED_STAGES)
        out["closed_at"] = case((not_(closed), null()), (keep, table.c.closed_at), else_=excluded.closed_at)
    if table.name == "activities" and "completed" in keys:
        keep = and_(table.c.completed.is_(true()), table.c.completed_at.is_not(None))
        out["completed_at"] = case(
            (excluded.completed.is_(false()), null()), (keep, table.c.completed_at), else_=excluded.completed_at
        )
    return out
