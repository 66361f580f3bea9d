"""Column types that store the same values on SQLite and PostgreSQL.

PostgreSQL gets its native types. SQLite stores UUIDs and timestamps as canonical text (so that text
order is time order and a row written from the sqlite3 shell compares correctly), money as integer
cents (exact, never REAL), and lists as JSON text. Values given to these types are validated here;
a bad literal raises :class:`InvalidValue`, which the REST layer reports as ``22P02``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Boolean, Date, Integer, Numeric, String, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

SQLITE_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


class InvalidValue(ValueError):
    """A literal that cannot be converted to the column's type (PostgreSQL's 22P02)."""

    def __init__(self, type_name: str, value: Any) -> None:
        super().__init__(f'invalid input syntax for type {type_name}: "{value}"')
        self.type_name = type_name
        self.value = value


class UUIDText(TypeDecorator[str]):
    impl = String(36)
    cache_ok = True
    pg_name = "uuid"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=False))
        return dialect.type_descriptor(String(36))

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else parse_uuid(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


class Timestamp(TypeDecorator[dt.datetime]):
    """timestamptz; on SQLite ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` text in UTC (the triggers write the same)."""

    impl = String(32)
    cache_ok = True
    pg_name = "timestamptz"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(String(32))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        stamp = parse_timestamp(value)
        if dialect.name == "postgresql":
            return stamp
        return format_sqlite_timestamp(stamp)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return parse_timestamp(value)


class DateType(TypeDecorator[dt.date]):
    impl = Date
    cache_ok = True
    pg_name = "date"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Date())
        return dialect.type_descriptor(String(10))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        day = parse_date(value)
        return day if dialect.name == "postgresql" else day.isoformat()

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.date | None:
        return None if value is None else parse_date(value)


class Money(TypeDecorator[Decimal]):
    """numeric(14,2); integer cents on SQLite so sums and comparisons stay exact."""

    impl = Numeric(14, 2)
    cache_ok = True
    pg_name = "numeric"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(14, 2, asdecimal=True))
        return dialect.type_descriptor(Integer())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = parse_money(value)
        return amount if dialect.name == "postgresql" else int(amount * 100)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return Decimal(value)
        # Cents; aggregates such as avg() may come back as a float or a long decimal.
        return (Decimal(str(value)) / 100).quantize(Decimal("0.01"))


class TextList(TypeDecorator[list[str]]):
    """text[]; a JSON array of strings on SQLite."""

    impl = Text
    cache_ok = True
    pg_name = "_text"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(Text()))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        items = parse_text_list(value)
        return items if dialect.name == "postgresql" else json.dumps(items)

    def process_result_value(self, value: Any, dialect: Dialect) -> list[str] | None:
        if value is None:
            return None
        return list(value) if dialect.name == "postgresql" else json.loads(value)


class Flag(TypeDecorator[bool]):
    impl = Boolean
    cache_ok = True
    pg_name = "bool"

    def process_bind_param(self, value: Any, dialect: Dialect) -> bool | None:
        return None if value is None else parse_bool(value)


# Parsers shared by the types, the REST filter layer and the realtime filter matcher -----------------


def parse_uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidValue("uuid", value) from None


def parse_timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, dt.date):
        stamp = dt.datetime.combine(value, dt.time())
    else:
        text = str(value).strip().replace(" ", "T", 1)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            stamp = dt.datetime.fromisoformat(text)
        except ValueError:
            raise InvalidValue("timestamp with time zone", value) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC)


def format_sqlite_timestamp(stamp: dt.datetime) -> str:
    return stamp.astimezone(dt.UTC).strftime(SQLITE_TS_FORMAT) + "Z"


def parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise InvalidValue("date", value) from None


def parse_money(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise InvalidValue("numeric", value)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidValue("numeric", value) from None
    if not amount.is_finite():
        raise InvalidValue("numeric", value)
    quantized = amount.quantize(Decimal("0.01"))
    if abs(quantized) >= Decimal("1e12"):
        raise NumericOverflow(value)
    return quantized


class NumericOverflow(InvalidValue):
    def __init__(self, value: Any) -> None:
        ValueError.__init__(self, "numeric field overflow")
        self.type_name = "numeric"
        self.value = value


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("t", "true", "1", "yes", "y", "on"):
        return True
    if text in ("f", "false", "0", "no", "n", "off"):
        return False
    raise InvalidValue("boolean", value)


def parse_text_list(value: Any) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{") and text.endswith("}"):
            return _parse_pg_array(text[1:-1])
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise InvalidValue("text[]", value) from None
        else:
            raise InvalidValue("text[]", value)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidValue("text[]", value)
    return list(value)


def _parse_pg_array(body: str) -> list[str]:
    """Parse the inside of a PostgreSQL array literal ``a,"b c",d`` (as PostgREST ``cs.{…}`` sends)."""
    items: list[str] = []
    if not body.strip():
        return items
    current: list[str] = []
    quoted = escaped = False
    was_quoted = False
    for ch in body:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
            was_quoted = True
        elif ch == "," and not quoted:
            items.append("".join(current) if was_quoted else "".join(current).strip())
            current, was_quoted = [], False
        else:
            current.append(ch)
    items.append("".join(current) if was_quoted else "".join(current).strip())
    return items
