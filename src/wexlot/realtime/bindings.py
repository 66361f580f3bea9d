"""``postgres_changes`` bindings of a channel: parse them from a join, echo them, match rows.

Filters use the PostgREST grammar of :mod:`wexlot.filters` (``col=op.value``, several joined by
commas = AND, ``not.`` negation) and compare Python-typed values coerced to the column's type, so
a realtime filter and a REST filter on the same value agree.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wexlot.crm.tables import CRM_TABLES
from wexlot.crm.types import InvalidValue
from wexlot.crm.values import coerce
from wexlot.errors import ApiError
from wexlot.filters import Condition, parse_condition, unquote_value

EVENTS = ("*", "INSERT", "UPDATE", "DELETE")
REALTIME_OPS = {"eq", "neq", "lt", "lte", "gt", "gte", "in", "is", "like", "ilike", "match", "imatch", "isdistinct"}


class BindingError(ValueError):
    """Bad ``postgres_changes`` parameters (reported as a ``system`` error, like the real server)."""


@dataclass(frozen=True)
class Binding:
    id: int
    event: str  # upper-cased for matching; the echo keeps the client's spelling
    schema: str
    table: str  # "*" for every table
    conditions: tuple[Condition, ...]
    echo: Mapping[str, Any]

    def wants(self, table: str, event: str) -> bool:
        return (self.table in ("*", table)) and self.event in ("*", event) and self.schema in ("public", "*")

    def matches(self, table: str, row: Mapping[str, Any]) -> bool:
        return all(condition_matches(table, c, row) for c in self.conditions)


def binding_id(params: Mapping[str, Any]) -> int:
    """A stable 27-bit id per distinct binding, like the real server's ``phash2`` of the params."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return zlib.crc32(canonical.encode()) & 0x7FFFFFF


def parse_bindings(raw: Any) -> list[Binding]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BindingError("postgres_changes must be a list of bindings")
    return [parse_binding(item) for item in raw]


def parse_binding(item: Any) -> Binding:
    if not isinstance(item, dict):
        raise BindingError("each postgres_changes binding must be an object")
    event = str(item.get("event") or "*").upper()
    if event not in EVENTS:
        event = "*"  # as the real server: anything unknown means every event
    table = item.get("table") or "*"
    schema = item.get("schema") or ("public" if table != "*" else "")
    if not schema:
        raise BindingError(
            "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to."
        )
    if table != "*" and table not in CRM_TABLES:
        raise BindingError(
            f"Unable to subscribe to changes with given parameters: table {schema}.{table} does not exist"
        )
    conditions = parse_filter(item.get("filter"), table)
    return Binding(binding_id(item), event, str(schema), str(table), conditions, item)


_SPLIT = re.compile(r',(?=(?:[^"]*"[^"]*")*[^"]*$)(?![^()]*\))')


def parse_filter(text: Any, table: str) -> tuple[Condition, ...]:
    if text is None or (isinstance(text, str) and not text.strip()):
        return ()
    if not isinstance(text, str) or text == "undefined":
        raise BindingError(f"Error parsing `filter` params: {text!r}")
    out = []
    for part in _SPLIT.split(text):
        column, eq, expr = part.strip().partition("=")
        if not eq or not column:
            raise BindingError(f"Error parsing `filter` params: {part!r} is not column=op.value")
        try:
            cond = parse_condition(column, expr)
        except ApiError as exc:
            raise BindingError(f"Error parsing `filter` params: {exc.message}") from None
        if cond.op not in REALTIME_OPS or cond.quantifier:
            raise BindingError(f"Error parsing `filter` params: operator {cond.op} is not supported")
        if table != "*" and column not in CRM_TABLES[table].c:
            raise BindingError(f"Error parsing `filter` params: column {table}.{column} does not exist")
        out.append(cond)
    return tuple(out)


def condition_matches(table: str, cond: Condition, row: Mapping[str, Any]) -> bool:
    """SQL semantics: a comparison with NULL is unknown, so neither it nor its negation matches."""
    if cond.column not in row:
        return False
    result = _evaluate(table, cond, row[cond.column])
    if result is None:
        return False
    return not result if cond.negated else result


def _evaluate(table: str, cond: Condition, value: Any) -> bool | None:
    op = cond.op
    if op == "is":
        if cond.value == "not_null":
            return value is not None
        return value is cond.value if cond.value is None else value == cond.value
    column = CRM_TABLES[table].c[cond.column]
    try:
        if op == "in":
            options = [coerce(column, unquote_value(v)) for v in cond.value]  # type: ignore[attr-defined]
            return None if value is None else value in options
        if op == "isdistinct":
            return value != coerce(column, unquote_value(str(cond.value)))
        if value is None:
            return None
        if op in ("like", "ilike", "match", "imatch"):
            return _text_match(op, str(value), unquote_value(str(cond.value)))
        other = coerce(column, unquote_value(str(cond.value)))
    except InvalidValue:
        return False
    if other is None:
        return None
    return {
        "eq": value == other,
        "neq": value != other,
        "lt": value < other,
        "lte": value <= other,
        "gt": value > other,
        "gte": value >= other,
    }[op]


def _text_match(op: str, value: str, pattern: str) -> bool:
    if op in ("match", "imatch"):
        return re.search(pattern, value, re.IGNORECASE if op == "imatch" else 0) is not None
    regex = "".join(".*" if ch in "%*" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if op == "ilike" else re.DOTALL) is not None
