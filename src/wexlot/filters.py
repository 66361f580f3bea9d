"""The PostgREST filter grammar — ``col=[not.]op.value`` and ``or=(…)`` trees — parsed to plain data.

Pure: no SQL, no I/O. The REST planner turns a :class:`Condition` into SQL; realtime matches the
same :class:`Condition` against a changed row. Values stay text here; coercion to the column's
type happens where the column is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from wexlot.errors import ApiError, parse_error

OPERATORS = frozenset(
    {
        "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "is", "isdistinct",
        "in", "cs", "cd", "ov", "fts", "plfts", "phfts", "wfts",
    }
)  # fmt: skip
QUANTIFIABLE = frozenset({"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"})
IS_VALUES = {"null": None, "not_null": "not_null", "true": True, "false": False, "unknown": None}


@dataclass(frozen=True)
class Condition:
    """One leaf: ``column <op> value``. ``value`` is text, a tuple of texts (``in`` and quantifiers),
    or for ``is`` one of None/True/False/"not_null"."""

    column: str
    op: str
    value: object
    negated: bool = False
    quantifier: str | None = None  # "any" | "all"


@dataclass(frozen=True)
class Logic:
    op: str  # "and" | "or"
    children: tuple[Node, ...]
    negated: bool = False


Node = Condition | Logic


def parse_condition(column: str, expr: str) -> Condition:
    """Parse the value side of ``column=expr`` (e.g. ``not.in.(a,b)``)."""
    negated = False
    if expr.startswith("not."):
        negated, expr = True, expr[4:]
    op, dot, rest = expr.partition(".")
    if not dot:
        raise parse_error(f'"failed to parse filter ({expr})" (line 1, column {len(expr) + 1})',
                          "unexpected end of input expecting operator and value")  # fmt: skip
    quantifier = None
    if op.endswith(("(any)", "(all)")):
        op, quantifier = op[:-5], op[-4:-1]
        if op not in QUANTIFIABLE:
            raise parse_error(f'"failed to parse filter ({expr})" (line 1, column 1)', f"{op} cannot be quantified")
    if op not in OPERATORS:
        raise parse_error(f'"failed to parse filter ({expr})" (line 1, column 1)', f'unknown operator "{op}"')
    if op.endswith("fts") and rest.startswith("("):
        # fts(config).query: the text-search configuration is accepted and ignored.
        _config, _, rest = rest[1:].partition(").")
    value: object = rest
    if op == "is":
        key = rest.lower()
        if key not in IS_VALUES:
            raise parse_error(
                f'"failed to parse filter (is.{rest})" (line 1, column 4)',
                "unexpected value: expecting null, not_null, true, false or unknown",
            )
        value = IS_VALUES[key]
    elif op == "in" or quantifier:
        value = tuple(parse_list(rest, "(" if op == "in" else "{"))
    return Condition(column, op, value, negated, quantifier)


def parse_list(text: str, opener: str = "(") -> list[str]:
    """``(a,"b,c",d)`` → ``["a", "b,c", "d"]``; double quotes protect ``,()``, ``\\`` escapes."""
    closer = ")" if opener == "(" else "}"
    if not (text.startswith(opener) and text.endswith(closer)):
        raise parse_error(
            f'"failed to parse filter ({text})" (line 1, column 1)',
            f"expecting a list in {opener}{closer}",
        )
    return _list_items(text[1:-1], text)


def _list_items(body: str, whole: str) -> list[str]:
    """PostgREST's rule: an element is quoted only when it *starts* with ``"`` (then ``\\`` escapes);
    otherwise it runs verbatim to the next comma, quotes and all."""
    if body == "":
        return []
    items: list[str] = []
    i, n = 0, len(body)
    while True:
        if i < n and body[i] == '"':
            buf, i = [], i + 1
            while i < n and body[i] != '"':
                if body[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(body[i])
                i += 1
            if i >= n:
                raise parse_error(f'"failed to parse filter ({whole})"', "unterminated double quote")
            i += 1
            if i < n and body[i] != ",":
                raise parse_error(f'"failed to parse filter ({whole})"', 'expecting "," after a quoted value')
            items.append("".join(buf))
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            items.append(body[i:end])
            i = end
        if i >= n:
            return items
        i += 1  # the comma


def parse_logic(op: str, text: str, negated: bool = False) -> Logic:
    """Parse the value of ``or=(…)``/``and=(…)`` (``op`` already stripped of ``not.``)."""
    if not (text.startswith("(") and text.endswith(")")):
        raise parse_error(f'"failed to parse logic tree ({text})" (line 1, column 1)', 'expecting "(" at the start')
    children = tuple(_parse_tree_item(item, text) for item in _split_top(text[1:-1], text))
    if not children:
        raise parse_error(f'"failed to parse logic tree ({text})" (line 1, column 2)', "empty logic tree")
    return Logic(op, children, negated)


def _parse_tree_item(item: str, whole: str) -> Node:
    negated = False
    body = item
    if body.startswith("not.") and body[4:].startswith(("and(", "or(")):
        negated, body = True, body[4:]
    for op in ("and", "or"):
        if body.startswith(op + "(") and body.endswith(")"):
            return parse_logic(op, body[len(op) :], negated)
    column, dot, expr = item.partition(".")
    if not dot or not column:
        raise parse_error(f'"failed to parse logic tree ({whole})" (line 1, column 1)', f'"{item}" is not col.op.value')
    return parse_condition(_unquote(column), expr)


def _split_top(body: str, whole: str) -> list[str]:
    """Split on commas outside quotes, parentheses and braces."""
    parts, buf, depth, quoted, escaped = [], [], 0, False, False
    for ch in body:
        if escaped:
            buf.append(ch)
            escaped = False
            continue
        if ch == "\\" and quoted:
            escaped = True
            buf.append(ch)
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "({":
            depth += 1
        elif not quoted and ch in ")}":
            depth -= 1
            if depth < 0:
                raise parse_error(f'"failed to parse logic tree ({whole})"', "unbalanced parentheses")
        elif ch == "," and not quoted and depth == 0:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    if depth or quoted:
        raise parse_error(f'"failed to parse logic tree ({whole})"', "unbalanced parentheses or quotes")
    parts.append("".join(buf))
    return [p for p in (s.strip() for s in parts) if p]


def _unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


def unquote_value(value: str) -> str:
    """Tree values may be double-quoted to protect ``,`` and ``)``: strip one level of quotes."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


__all__ = ["ApiError", "Condition", "Logic", "Node", "parse_condition", "parse_list", "parse_logic"]
