"""Stage 1: query string + headers → :class:`ApiRequest`. Pure; knows the grammar, not the schema.

Mirrors PostgREST's ``ApiRequest``: vertical filtering (``select`` with aliases, casts, aggregates
and embeds), horizontal filtering (``col=op.value``, ``or``/``and`` trees, also prefixed with an
embed path), ``order``, ``limit``/``offset``/``Range``, ``columns``, ``on_conflict`` and ``Prefer``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from wexlot.errors import ApiError, parse_error
from wexlot.filters import Logic, Node, parse_condition, parse_logic

AGGREGATES = frozenset({"count", "sum", "avg", "min", "max"})
OBJECT_MEDIA = "application/vnd.pgrst.object+json"
Path = tuple[str, ...]


@dataclass(frozen=True)
class Field:
    name: str
    alias: str | None = None
    cast: str | None = None
    aggregate: str | None = None

    @property
    def key(self) -> str:
        if self.alias:
            return self.alias
        return self.aggregate if self.aggregate else self.name


@dataclass(frozen=True)
class Star:
    pass


@dataclass(frozen=True)
class CountAll:
    alias: str | None = None

    @property
    def key(self) -> str:
        return self.alias or "count"


@dataclass(frozen=True)
class Embed:
    relation: str
    alias: str | None
    hint: str | None
    inner: bool
    spread: bool
    select: tuple[Item, ...]

    @property
    def key(self) -> str:
        return self.alias or self.relation


Item = Field | Star | CountAll | Embed


@dataclass(frozen=True)
class OrderTerm:
    column: str
    descending: bool = False
    nulls_first: bool | None = None  # None: the database default (NULLS LAST for asc, FIRST for desc)


@dataclass
class Prefer:
    return_: str = "minimal"
    count: str | None = None
    resolution: str | None = None
    missing_default: bool = False
    tx_rollback: bool = False
    explicit_return: bool = False


@dataclass
class ApiRequest:
    method: str
    table: str
    select: tuple[Item, ...] = (Star(),)
    filters: dict[Path, list[Node]] = field(default_factory=dict)
    order: dict[Path, list[OrderTerm]] = field(default_factory=dict)
    limit: dict[Path, int] = field(default_factory=dict)
    offset: dict[Path, int] = field(default_factory=dict)
    columns: list[str] | None = None
    on_conflict: list[str] | None = None
    prefer: Prefer = field(default_factory=Prefer)
    single: bool = False
    csv: bool = False
    has_select_param: bool = False

    @property
    def root_filters(self) -> list[Node]:
        return self.filters.get((), [])


RESERVED = {"select", "columns", "on_conflict"}
EMBEDDABLE_RESERVED = {"order", "limit", "offset", "or", "and"}


def parse(method: str, table: str, query_string: str, headers: dict[str, str]) -> ApiRequest:
    """``headers`` must have lower-case keys."""
    req = ApiRequest(method=method.upper(), table=table)
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        _apply_param(req, key, value)
    req.prefer = parse_prefer(headers.get("prefer", ""))
    accept = headers.get("accept", "")
    req.single = OBJECT_MEDIA in accept
    req.csv = "text/csv" in accept and not req.single
    _apply_range_header(req, headers.get("range"))
    return req


def _apply_param(req: ApiRequest, key: str, value: str) -> None:
    if key == "select":
        req.select = parse_select(value) if value.strip() else (Star(),)
        req.has_select_param = True
        return
    if key == "columns":
        req.columns = [_unquote(c) for c in _split_top(value, key) if c]
        return
    if key == "on_conflict":
        req.on_conflict = [c.strip() for c in value.split(",") if c.strip()]
        return
    negated = False
    parts = key.split(".")
    if len(parts) >= 2 and parts[-2] == "not" and parts[-1] in ("or", "and"):
        negated = True
        parts = [*parts[:-2], parts[-1]]
    *path_parts, last = parts
    path: Path = tuple(path_parts)
    if last in ("or", "and"):
        req.filters.setdefault(path, []).append(parse_logic(last, value, negated))
    elif last == "order":
        req.order[path] = parse_order(value)
    elif last in ("limit", "offset"):
        number = _non_negative_int(value, last)
        (req.limit if last == "limit" else req.offset)[path] = number
    else:
        if not last:
            raise parse_error(f'"failed to parse filter ({key}={value})"', "empty column name")
        req.filters.setdefault(path, []).append(parse_condition(_unquote(last), value))


def _non_negative_int(value: str, what: str) -> int:
    if not value.isdigit():
        raise parse_error(f'"failed to parse {what} parameter ({value})" (line 1, column 1)', "expecting a number")
    return int(value)


def parse_prefer(header: str) -> Prefer:
    prefer = Prefer()
    for token in (t.strip() for t in header.split(",")):
        name, _, val = token.partition("=")
        name, val = name.strip().lower(), val.strip().lower()
        if name == "return" and val in ("minimal", "representation", "headers-only"):
            prefer.return_, prefer.explicit_return = val, True
        elif name == "count" and val in ("exact", "planned", "estimated"):
            prefer.count = val
        elif name == "resolution" and val in ("merge-duplicates", "ignore-duplicates"):
            prefer.resolution = val
        elif name == "missing" and val == "default":
            prefer.missing_default = True
        elif name == "tx" and val == "rollback":
            prefer.tx_rollback = True
        # Unknown preferences are ignored, as PostgREST's lenient handling does.
    return prefer


def _apply_range_header(req: ApiRequest, header: str | None) -> None:
    if not header:
        return
    match = re.fullmatch(r"\s*(?:items=)?(\d+)-(\d*)\s*", header)
    if not match:
        return
    start = int(match.group(1))
    req.offset.setdefault((), start)
    if match.group(2):
        end = int(match.group(2))
        if end < start:
            raise ApiError(416, "PGRST103", "Requested range not satisfiable", f"Range {header} is empty")
        req.limit.setdefault((), end - start + 1)


def parse_order(value: str) -> list[OrderTerm]:
    terms = []
    for raw in (v.strip() for v in value.split(",")):
        if not raw:
            continue
        column, *mods = raw.split(".")
        descending, nulls_first = False, None
        for mod in mods:
            if mod == "desc":
                descending = True
            elif mod == "asc":
                descending = False
            elif mod == "nullsfirst":
                nulls_first = True
            elif mod == "nullslast":
                nulls_first = False
            else:
                raise parse_error(f'"failed to parse order ({value})" (line 1, column 1)', f'unexpected "{mod}"')
        if not column:
            raise parse_error(f'"failed to parse order ({value})" (line 1, column 1)', "empty column name")
        terms.append(OrderTerm(_unquote(column), descending, nulls_first))
    return terms


# --- select= ------------------------------------------------------------------------------------

_NAME = r'(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_]*)'
_FIELD_RE = re.compile(
    rf"^(?:(?P<alias>{_NAME}):)?(?P<name>{_NAME})(?:\.(?P<agg>[a-z]+)\(\))?(?:::(?P<cast>[A-Za-z0-9_ ]+))?$"
)
_COUNT_RE = re.compile(rf"^(?:(?P<alias>{_NAME}):)?count\(\)(?:::(?P<cast>[A-Za-z0-9_]+))?$")
_EMBED_RE = re.compile(
    rf"^(?P<spread>\.\.\.)?(?:(?P<alias>{_NAME}):)?(?P<rel>{_NAME})(?P<mods>(?:![A-Za-z0-9_]+)*)\((?P<body>.*)\)$",
    re.S,
)


def parse_select(value: str) -> tuple[Item, ...]:
    items: list[Item] = []
    for raw in _split_top(value, "select"):
        items.append(_parse_item(raw, value))
    return tuple(items) or (Star(),)


def _parse_item(raw: str, whole: str) -> Item:
    if raw == "*":
        return Star()
    if m := _COUNT_RE.match(raw):
        return CountAll(_unquote(m.group("alias")) if m.group("alias") else None)
    if m := _FIELD_RE.match(raw):
        agg = m.group("agg")
        if agg and agg not in AGGREGATES:
            raise parse_error(f'"failed to parse select parameter ({whole})"', f'unknown aggregate "{agg}"')
        return Field(
            _unquote(m.group("name")),
            _unquote(m.group("alias")) if m.group("alias") else None,
            m.group("cast"),
            agg,
        )
    if m := _EMBED_RE.match(raw):
        hint, inner = None, False
        for mod in (x for x in m.group("mods").split("!") if x):
            if mod == "inner":
                inner = True
            elif mod == "left":
                inner = False
            else:
                hint = mod
        body = m.group("body")
        return Embed(
            relation=_unquote(m.group("rel")),
            alias=_unquote(m.group("alias")) if m.group("alias") else None,
            hint=hint,
            inner=inner,
            spread=bool(m.group("spread")),
            select=parse_select(body) if body.strip() else (Star(),),
        )
    raise parse_error(
        f'"failed to parse select parameter ({whole})" (line 1, column {whole.find(raw) + 1})',
        f'unexpected "{raw}"',
    )


def _split_top(value: str, what: str) -> list[str]:
    parts, buf, depth, quoted = [], [], 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth < 0:
                raise parse_error(f'"failed to parse {what} parameter ({value})"', "unbalanced parentheses")
        elif ch == "," and depth == 0 and not quoted:
            parts.append("".join(buf).strip())
            buf = []
            continue
        if not quoted and ch.isspace():
            continue
        buf.append(ch)
    if depth or quoted:
        raise parse_error(f'"failed to parse {what} parameter ({value})"', "unbalanced parentheses or quotes")
    parts.append("".join(buf).strip())
    return [p for p in parts if p]


def _unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


__all__ = ["ApiRequest", "CountAll", "Embed", "Field", "Item", "Logic", "OrderTerm", "Prefer", "Star", "parse"]
