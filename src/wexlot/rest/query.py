"""Filters and ordering → SQLAlchemy expressions, for one table and one dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import UnaryExpression

from wexlot.crm.types import InvalidValue, TextList
from wexlot.crm.values import coerce
from wexlot.errors import ApiError, unknown_column
from wexlot.filters import Condition, Logic, Node, unquote_value
from wexlot.rest.request import OrderTerm

COMPARISONS = {"eq", "neq", "gt", "gte", "lt", "lte"}


def column_of(table: FromClause, name: str, table_name: str) -> ColumnElement[Any]:
    try:
        return table.c[name]
    except KeyError:
        raise unknown_column(table_name, name) from None


def where(table: FromClause, table_name: str, nodes: list[Node], dialect: str) -> ColumnElement[bool]:
    return and_(true(), *(node_sql(table, table_name, n, dialect) for n in nodes))


def node_sql(table: FromClause, table_name: str, node: Node, dialect: str) -> ColumnElement[bool]:
    if isinstance(node, Logic):
        parts = [node_sql(table, table_name, child, dialect) for child in node.children]
        expr = and_(*parts) if node.op == "and" else or_(*parts)
        return not_(expr) if node.negated else expr
    expr = condition_sql(table, table_name, node, dialect)
    return not_(expr) if node.negated else expr


def condition_sql(table: FromClause, table_name: str, cond: Condition, dialect: str) -> ColumnElement[bool]:
    col = column_of(table, cond.column, table_name)
    op = cond.op
    if op == "is":
        if cond.value is None:
            return col.is_(None)
        if cond.value == "not_null":
            return col.is_not(None)
        return col.is_(true()) if cond.value else col.is_(false())
    if cond.quantifier:
        values = [_literal(col, unquote_value(v)) for v in cond.value]  # type: ignore[attr-defined]
        parts = [_compare(col, op, v, dialect) for v in values]
        if not parts:
            return false() if cond.quantifier == "any" else true()
        return or_(*parts) if cond.quantifier == "any" else and_(*parts)
    if op == "in":
        values = [_literal(col, unquote_value(v)) for v in cond.value]  # type: ignore[attr-defined]
        return col.in_(values) if values else false()
    if op in ("cs", "cd", "ov"):
        return _array_op(col, op, _literal(col, unquote_value(str(cond.value))), dialect)
    if op in ("fts", "plfts", "phfts", "wfts"):
        return _text_search(col, unquote_value(str(cond.value)))
    value = unquote_value(str(cond.value))
    if op in ("like", "ilike", "match", "imatch"):
        return _compare(col, op, value, dialect)
    if op == "isdistinct":
        return col.is_distinct_from(_literal(col, value))
    return _compare(col, op, _literal(col, value), dialect)


def _literal(col: ColumnElement[Any], value: str) -> Any:
    try:
        return coerce(col, value)  # type: ignore[arg-type]
    except InvalidValue as exc:
        raise ApiError(400, "22P02", str(exc)) from None


def _compare(col: ColumnElement[Any], op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    if op == "eq":
        return col == value
    if op == "neq":
        return col != value
    if op == "gt":
        return col > value
    if op == "gte":
        return col >= value
    if op == "lt":
        return col < value
    if op == "lte":
        return col <= value
    pattern = str(value).replace("*", "%")
    text_col = type_coerce(col, _text_type())
    if op == "like":
        return text_col.like(pattern)
    if op == "ilike":
        return text_col.ilike(pattern)
    if op == "match":
        return text_col.regexp_match(str(value))
    if op == "imatch":
        # SQLite's REGEXP takes no flags argument: ask for case-insensitivity in the pattern.
        if dialect == "sqlite":
            return text_col.regexp_match("(?i)" + str(value))
        return text_col.regexp_match(str(value), flags="i")
    raise ApiError(400, "PGRST100", f"operator {op} is not supported here")  # pragma: no cover


def _text_type() -> Any:
    from sqlalchemy import Text

    return Text()


def _array_op(col: ColumnElement[Any], op: str, value: Any, dialect: str) -> ColumnElement[bool]:
    if not isinstance(col.type, TextList):
        raise ApiError(
            400, "42883", f"operator does not exist: {col.name} @> unknown", hint="cs/cd/ov need an array column"
        )  # type: ignore[attr-defined]
    if dialect == "postgresql":
        pg_col = type_coerce(col, postgresql.ARRAY(_text_type()))
        arr = literal(value, postgresql.ARRAY(_text_type()))
        if op == "cs":
            return pg_col.contains(arr)
        if op == "cd":
            return pg_col.contained_by(arr)
        return pg_col.overlap(arr)
    import json

    given = func.json_each(literal(json.dumps(value))).table_valued("value").alias("given")
    stored = func.json_each(col).table_valued("value").alias("stored")
    if op == "cs":  # every given element is stored
        return not_(exists(select(given.c.value).where(given.c.value.not_in(select(stored.c.value)))))
    if op == "cd":  # every stored element is given
        return not_(exists(select(stored.c.value).where(stored.c.value.not_in(select(given.c.value)))))
    return exists(select(given.c.value).where(given.c.value.in_(select(stored.c.value))))


def _text_search(col: ColumnElement[Any], query: str) -> ColumnElement[bool]:
    """Word search: every word of the query appears in the text (case-insensitive), on both backends."""
    words = [w for w in query.replace("&", " ").replace("|", " ").replace("'", " ").split() if w]
    text_col = type_coerce(col, _text_type())
    return and_(true(), *(text_col.ilike(f"%{w}%") for w in words))


def order_by(table: FromClause, table_name: str, terms: list[OrderTerm]) -> list[UnaryExpression[Any]]:
    out = []
    for term in terms:
        col = column_of(table, term.column, table_name)
        expr = col.desc() if term.descending else col.asc()
        # Make NULL placement explicit and identical on both backends (PostgreSQL's defaults).
        nulls_first = term.nulls_first if term.nulls_first is not None else term.descending
        out.append(expr.nulls_first() if nulls_first else expr.nulls_last())
    return out
