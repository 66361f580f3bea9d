"""Stages 2-3 for reads: plan the root query, run it, embed related rows, shape the output.

Embeds are loaded with one extra query per embed (``WHERE id IN (…)``), each under the target
table's own read rule, so a private parent the caller may not see comes back as ``null`` — never
leaked through a join. ``!inner`` embeds also become ``EXISTS`` conditions on the root query so
counts and paging agree with what is returned.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, and_, exists, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection

from wexlot.crm.access import Principal, read_predicate, read_rule
from wexlot.crm.records import json_value
from wexlot.crm.tables import CRM_TABLES
from wexlot.errors import ApiError, parse_error, unknown_column
from wexlot.rest import query
from wexlot.rest.embed import resolve
from wexlot.rest.request import ApiRequest, CountAll, Embed, Field, Item, Path, Star

Row = dict[str, Any]
EMBEDS = "__embeds__"  # where attached embed values wait until projection


@dataclass
class ReadContext:
    conn: AsyncConnection
    principal: Principal
    dialect: str
    req: ApiRequest
    max_rows: int


@dataclass
class ReadResult:
    rows: list[Row]
    total: int | None
    offset: int


def table_or_404(name: str) -> FromClause:
    from wexlot.errors import unknown_table

    try:
        return CRM_TABLES[name]
    except KeyError:
        raise unknown_table(name) from None


def is_aggregate(items: tuple[Item, ...]) -> bool:
    return any(isinstance(i, CountAll) or (isinstance(i, Field) and i.aggregate) for i in items)


def validate_select(table_name: str, items: tuple[Item, ...]) -> None:
    table = CRM_TABLES[table_name]
    for item in items:
        if isinstance(item, Field) and item.name not in table.c:
            raise unknown_column(table_name, item.name)
        if isinstance(item, Embed):
            rel = resolve(table_name, item)
            if item.spread and not rel.many_to_one:
                raise ApiError(400, "PGRST119", "A spread operation on a to-many relationship is not supported")
            validate_select(rel.target, item.select)


def _path_filters(req: ApiRequest, path: Path, embed_keys: tuple[str, ...]) -> list[Any]:
    """Filters addressed to an embed, by alias or relation name."""
    nodes: list[Any] = []
    for key, value in req.filters.items():
        if len(key) == len(path) and key[:-1] == path[:-1] and key[-1] in embed_keys:
            nodes.extend(value)
    return nodes


def _path_value(mapping: dict[Path, Any], path: Path, embed_keys: tuple[str, ...]) -> Any:
    for key, value in mapping.items():
        if len(key) == len(path) and key[:-1] == path[:-1] and key[-1] in embed_keys:
            return value
    return None


def _embed_names(embed: Embed) -> tuple[str, ...]:
    return tuple({embed.key, embed.relation})


def root_where(ctx: ReadContext, table_name: str) -> ColumnElement[bool]:
    table = CRM_TABLES[table_name]
    parts = [
        read_predicate(ctx.principal, table_name),
        query.where(table, table_name, ctx.req.filters.get((), []), ctx.dialect),
    ]
    parts += _inner_conditions(ctx, table, table_name, ctx.req.select, ())
    return and_(*parts)


def _inner_conditions(
    ctx: ReadContext, parent: FromClause, parent_name: str, items: tuple[Item, ...], path: Path
) -> list[ColumnElement[bool]]:
    out = []
    for item in items:
        if not isinstance(item, Embed) or not item.inner:
            continue
        rel = resolve(parent_name, item)
        sub_path = (*path, item.key)
        target = CRM_TABLES[rel.target].alias(f"inner_{len(sub_path)}_{rel.target}")
        join = target.c.id == parent.c[rel.column] if rel.many_to_one else target.c[rel.column] == parent.c.id
        conds = [
            join,
            read_rule(ctx.principal, rel.target).sql(target, ctx.principal),  # on the alias: not cacheable
            query.where(target, rel.target, _path_filters(ctx.req, sub_path, _embed_names(item)), ctx.dialect),
            *_inner_conditions(ctx, target, rel.target, item.select, sub_path),
        ]
        out.append(exists(select(target.c.id).where(*conds)))
    return out


async def read(ctx: ReadContext, table_name: str) -> ReadResult:
    table = table_or_404(table_name)
    items = ctx.req.select
    if is_aggregate(items):
        return await _read_grouped(ctx, table_name)
    validate_select(table_name, items)
    cond = root_where(ctx, table_name)
    offset = ctx.req.offset.get((), 0)
    limit = min(ctx.req.limit.get((), ctx.max_rows), ctx.max_rows)
    stmt: Select[Any] = select(table).where(cond)
    stmt = stmt.order_by(*query.order_by(table, table_name, ctx.req.order.get((), [])))
    stmt = stmt.limit(limit).offset(offset)
    rows = [dict(r._mapping) for r in await ctx.conn.execute(stmt)]
    total = None
    if ctx.req.prefer.count:
        total = (await ctx.conn.execute(select(func.count()).select_from(table).where(cond))).scalar_one()
    await attach(ctx, table_name, rows, items, ())
    return ReadResult([project(table_name, r, items) for r in rows], total, offset)


async def attach(ctx: ReadContext, table_name: str, rows: list[Row], items: tuple[Item, ...], path: Path) -> None:
    """Load every embed of ``items`` for ``rows`` and park the values under ``EMBEDS``."""
    for item in items:
        if not isinstance(item, Embed):
            continue
        rel = resolve(table_name, item)
        sub_path = (*path, item.key)
        names = _embed_names(item)
        target = CRM_TABLES[rel.target]
        fk_values = {r[rel.column] if rel.many_to_one else r["id"] for r in rows}
        fk_values.discard(None)
        found: list[Row] = []
        if fk_values:
            key_col = target.c.id if rel.many_to_one else target.c[rel.column]
            stmt = select(target).where(
                key_col.in_(sorted(fk_values)),
                read_predicate(ctx.principal, rel.target),
                query.where(target, rel.target, _path_filters(ctx.req, sub_path, names), ctx.dialect),
            )
            order = _path_value(ctx.req.order, sub_path, names) or []
            stmt = stmt.order_by(*query.order_by(target, rel.target, order), target.c.id)
            found = [dict(r._mapping) for r in await ctx.conn.execute(stmt)]
            await attach(ctx, rel.target, found, item.select, sub_path)
        shaped = [(r, project(rel.target, r, item.select)) for r in found]
        if rel.many_to_one:
            by_id = {r["id"]: out for r, out in shaped}
            for row in rows:
                row.setdefault(EMBEDS, {})[item.key] = by_id.get(row[rel.column])
        else:
            grouped: dict[Any, list[Row]] = defaultdict(list)
            for r, out in shaped:
                grouped[r[rel.column]].append(out)
            offset = _path_value(ctx.req.offset, sub_path, names) or 0
            limit = _path_value(ctx.req.limit, sub_path, names)
            for row in rows:
                children = grouped.get(row["id"], [])[offset:]
                row.setdefault(EMBEDS, {})[item.key] = children[:limit] if limit is not None else children


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(json_value(value))


CASTS = {
    "text": _as_text,
    "int": int, "integer": int, "int4": int, "int8": int, "bigint": int,
    "numeric": float, "float": float, "float8": float, "double precision": float, "real": float,
}  # fmt: skip


def project(table_name: str, row: Row, items: tuple[Item, ...]) -> Row:
    table = CRM_TABLES[table_name]
    out: Row = {}
    embeds = row.get(EMBEDS, {})
    for item in items:
        if isinstance(item, Star):
            out.update({c.name: row[c.name] for c in table.columns})
        elif isinstance(item, Field):
            value = row[item.name]
            if item.cast and value is not None:
                cast = CASTS.get(item.cast.strip().lower())
                if cast is None:
                    raise ApiError(400, "42704", f'type "{item.cast}" does not exist')
                value = cast(value)
            out[item.key] = value
        elif isinstance(item, Embed):
            value = embeds.get(item.key)
            if item.spread:
                out.update(value or {k.key: None for k in item.select if isinstance(k, Field)})
            else:
                out[item.key] = value
    return out


# --- aggregates ------------------------------------------------------------------------------------


async def _read_grouped(ctx: ReadContext, table_name: str) -> ReadResult:
    """``select=stage,amount.sum(),count()``: group by the plain columns, as PostgREST 12 does."""
    table = CRM_TABLES[table_name]
    labelled: list[Any] = []
    group_cols: list[Any] = []
    for item in ctx.req.select:
        if isinstance(item, Star):
            raise parse_error("'*' cannot be combined with aggregate functions", None)
        if isinstance(item, Embed):
            raise ApiError(400, "PGRST100", "embedding together with aggregate functions is not supported")
        if isinstance(item, CountAll):
            labelled.append(func.count().label(item.key))
            continue
        col = query.column_of(table, item.name, table_name)
        if item.aggregate is None:
            group_cols.append(col)
            labelled.append(col.label(item.key))
        elif item.aggregate == "count":
            labelled.append(func.count(col).label(item.key))
        else:
            agg = getattr(func, item.aggregate)(col)
            if item.aggregate in ("sum", "min", "max", "avg") and col.name not in ("position",):
                agg = type_coerce(agg, col.type)
            labelled.append(agg.label(item.key))
    stmt = select(*labelled).select_from(table).where(root_where(ctx, table_name))
    if group_cols:
        stmt = stmt.group_by(*group_cols)
    order_terms = []
    by_key = {c.key: c for c in labelled}
    for term in ctx.req.order.get((), []):
        expr = by_key.get(term.column)
        if expr is None:
            expr = query.column_of(table, term.column, table_name)
        clause = expr.desc() if term.descending else expr.asc()
        first = term.nulls_first if term.nulls_first is not None else term.descending
        order_terms.append(clause.nulls_first() if first else clause.nulls_last())
    offset = ctx.req.offset.get((), 0)
    limit = min(ctx.req.limit.get((), ctx.max_rows), ctx.max_rows)
    stmt = stmt.order_by(*order_terms).limit(limit).offset(offset)
    rows = [dict(r._mapping) for r in await ctx.conn.execute(stmt)]
    total = len(rows) + offset if ctx.req.prefer.count else None
    return ReadResult(rows, total, offset)
