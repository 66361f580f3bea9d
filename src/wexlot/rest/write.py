"""Stages 2-3 for writes: POST (insert, bulk insert, upsert), PATCH and DELETE.

Access follows PostgreSQL row-level security as PostgREST users know it: a table the caller may not
write at all is ``42501``; rows it may not change are simply not affected (the write rule joins the
WHERE clause); a row it inserts or updates must still satisfy the write rule afterwards, else the
whole request fails with ``42501`` and the transaction rolls back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from sqlalchemy import Table, and_, delete, func, not_, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from wexlot.crm import rules
from wexlot.crm.access import ALLOW, OWNER_COLUMN, may_write_table, write_predicate, write_rule
from wexlot.crm.tables import SERVER_MANAGED, unique_columns
from wexlot.crm.types import InvalidValue
from wexlot.crm.values import coerce
from wexlot.errors import ApiError, permission_denied, row_security
from wexlot.rest import query
from wexlot.rest.read import ReadContext, table_or_404

Row = dict[str, Any]


@dataclass
class WriteResult:
    rows: list[Row]
    created: bool = True  # for upserts: False when every row already existed (→ 200, not 201)


def _check_table(ctx: ReadContext, table_name: str) -> Table:
    table = table_or_404(table_name)
    if not may_write_table(ctx.principal, table_name):
        raise permission_denied(table_name, anon=ctx.principal.role == "anon")
    return table  # type: ignore[return-value]


def _unknown_column(table_name: str, column: str) -> ApiError:
    return ApiError(400, "PGRST204", f"Could not find the '{column}' column of '{table_name}' in the schema cache")


def _coerce_row(table: Table, row: dict[str, Any]) -> Row:
    out: Row = {}
    for key, value in row.items():
        if key not in table.c:
            raise _unknown_column(table.name, key)
        if key in SERVER_MANAGED:
            continue  # set by the database and the server, whatever the client sent
        try:
            out[key] = coerce(table.c[key], value)
        except InvalidValue as exc:
            raise ApiError(400, "22003" if "overflow" in str(exc) else "22P02", str(exc)) from None
    return out


def payload_rows(table: Table, body: Any, columns: list[str] | None, missing_default: bool) -> list[Row]:
    if isinstance(body, dict):
        rows = [body]
    elif isinstance(body, list) and all(isinstance(r, dict) for r in body):
        rows = body
    else:
        raise ApiError(
            400, "PGRST102", "Empty or invalid json", details="expected a JSON object or an array of objects"
        )
    if columns is not None:
        for col in columns:
            if col not in table.c:
                raise _unknown_column(table.name, col)
        if missing_default:
            rows = [{c: r[c] for c in columns if c in r} for r in rows]
        else:
            rows = [{c: r.get(c) for c in columns} for r in rows]
    elif len(rows) > 1:
        keys = set(rows[0])
        if any(set(r) != keys for r in rows[1:]):
            raise ApiError(400, "PGRST102", "All object keys must match")
    return [_coerce_row(table, r) for r in rows]


async def insert(ctx: ReadContext, table_name: str, body: Any, actor: str | None) -> WriteResult:
    table = _check_table(ctx, table_name)
    req = ctx.req
    rows = payload_rows(table, body, req.columns, req.prefer.missing_default)
    if not rows:
        return WriteResult([], created=False)
    stamp = rules.now()
    owner_col = OWNER_COLUMN.get(table_name)
    prepared = []
    for row in rows:
        row.setdefault("id", str(uuid.uuid4()))
        if owner_col and ctx.principal.is_staff:
            row.setdefault(owner_col, ctx.principal.staff_id)
        row = rules.insert_values(table_name, row, stamp)
        row["updated_by"] = actor
        prepared.append(row)
    conflict = _conflict_target(table, req.on_conflict) if req.prefer.resolution else None
    if conflict and req.prefer.resolution == "merge-duplicates":
        await _check_conflicting_rows_writable(ctx, table, conflict, prepared)
    returned: list[Row] = []
    # executemany needs one key set per statement; keep the caller's row order in the result.
    order = {id(r): i for i, r in enumerate(prepared)}
    for _keys, group_iter in groupby(sorted(prepared, key=lambda r: tuple(sorted(r))), key=lambda r: tuple(sorted(r))):
        group = list(group_iter)
        stmt = _insert_stmt(ctx.dialect, table, conflict, req.prefer.resolution, group[0].keys(), actor, stamp)
        result = await ctx.conn.execute(stmt.returning(*table.c, sort_by_parameter_order=True), group)
        returned_rows = [dict(r._mapping) for r in result]
        if req.prefer.resolution == "ignore-duplicates":
            returned += [(0, r) for r in returned_rows]  # type: ignore[misc]
        else:
            returned += [(order[id(src)], r) for src, r in zip(group, returned_rows, strict=False)]  # type: ignore[misc]
    out = [r for _, r in sorted(returned, key=lambda p: p[0])]  # type: ignore[index]
    await _check_new_rows(ctx, table, [r["id"] for r in out])
    created = any(r["version"] == 1 for r in out) if req.prefer.resolution else True
    return WriteResult(out, created=created or not out)


def _conflict_target(table: Table, on_conflict: list[str] | None) -> list[str]:
    cols = on_conflict or [c.name for c in table.primary_key.columns]
    for col in cols:
        if col not in table.c:
            raise ApiError(400, "42703", f"column {table.name}.{col} does not exist")
    if tuple(cols) not in unique_columns(table) and set(cols) not in [set(u) for u in unique_columns(table)]:
        raise ApiError(
            400, "42P10", "there is no unique or exclusion constraint matching the ON CONFLICT specification"
        )
    return cols


def _insert_stmt(
    dialect: str,
    table: Table,
    conflict: list[str] | None,
    resolution: str | None,
    keys: Any,
    actor: str | None,
    stamp: Any,
) -> Any:
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    if not conflict:
        return ins
    if resolution == "ignore-duplicates":
        return ins.on_conflict_do_nothing(index_elements=conflict)
    set_ = rules.merge_values(table, ins.excluded, [k for k in keys if k not in conflict], actor, stamp)
    return ins.on_conflict_do_update(index_elements=conflict, set_=set_)


async def _check_conflicting_rows_writable(
    ctx: ReadContext, table: Table, conflict: list[str], rows: list[Row]
) -> None:
    """An upsert may only merge into rows the caller could update (RLS's USING on the update path)."""
    if write_rule(ctx.principal, table.name) is ALLOW:
        return
    keys = [tuple(r.get(c) for c in conflict) for r in rows if all(r.get(c) is not None for c in conflict)]
    if not keys:
        return
    cols = [table.c[c] for c in conflict]
    match = or_(*(and_(*(col == v for col, v in zip(cols, key, strict=True))) for key in keys[:500]))
    if len(keys) > 500:
        match = tuple_(*cols).in_(keys)
    denied = not_(write_predicate(ctx.principal, table.name))
    hit = (await ctx.conn.execute(select(table.c.id).where(match, denied).limit(1))).first()
    if hit is not None:
        raise row_security(table.name, anon=ctx.principal.role == "anon")


async def _check_new_rows(ctx: ReadContext, table: Table, ids: list[Any]) -> None:
    """WITH CHECK: every row the caller wrote must satisfy its write rule."""
    if not ids or write_rule(ctx.principal, table.name) is ALLOW:
        return
    denied = not_(write_predicate(ctx.principal, table.name))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        bad = (await ctx.conn.execute(select(func.count()).where(table.c.id.in_(chunk), denied))).scalar_one()
        if bad:
            raise row_security(table.name, anon=ctx.principal.role == "anon")


def _require_filter(ctx: ReadContext, verb: str) -> None:
    if not ctx.req.filters.get(()):
        raise ApiError(400, "21000", f"{verb} requires a WHERE clause", hint="Add a filter, e.g. id=eq.<id>")


async def update_rows(ctx: ReadContext, table_name: str, body: Any, actor: str | None) -> WriteResult:
    table = _check_table(ctx, table_name)
    _require_filter(ctx, "UPDATE")
    if not isinstance(body, dict):
        raise ApiError(400, "PGRST102", "Empty or invalid json", details="PATCH expects a JSON object")
    values = _coerce_row(table, body)
    cond = and_(
        query.where(table, table_name, ctx.req.filters[()], ctx.dialect),
        write_predicate(ctx.principal, table_name),
    )
    if not values:
        rows = [dict(r._mapping) for r in await ctx.conn.execute(select(table).where(cond))]
        return WriteResult(rows)
    stmt = update(table).where(cond).values(rules.update_values(table, values, actor, rules.now()))
    rows = [dict(r._mapping) for r in await ctx.conn.execute(stmt.returning(*table.c))]
    await _check_new_rows(ctx, table, [r["id"] for r in rows])
    return WriteResult(rows)


async def delete_rows(ctx: ReadContext, table_name: str) -> WriteResult:
    table = _check_table(ctx, table_name)
    _require_filter(ctx, "DELETE")
    cond = and_(
        query.where(table, table_name, ctx.req.filters[()], ctx.dialect),
        write_predicate(ctx.principal, table_name),
    )
    rows = [dict(r._mapping) for r in await ctx.conn.execute(delete(table).where(cond).returning(*table.c))]
    return WriteResult(rows)
