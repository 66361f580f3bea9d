"""Turn request literals (filter text, JSON payload values) into values of a column's type.

Raises :class:`~wexlot.crm.types.InvalidValue` (reported as 22P02) before any SQL runs, so a bad
literal never reaches the database half-way through a transaction.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import BigInteger, Column, Float, Integer

from wexlot.crm.types import (
    DateType,
    Flag,
    InvalidValue,
    Money,
    TextList,
    Timestamp,
    UUIDText,
    parse_bool,
    parse_date,
    parse_money,
    parse_text_list,
    parse_timestamp,
    parse_uuid,
)

PARSERS = {
    UUIDText: parse_uuid,
    Timestamp: parse_timestamp,
    DateType: parse_date,
    Money: parse_money,
    TextList: parse_text_list,
    Flag: parse_bool,
}


def coerce(column: Column[Any], value: Any) -> Any:
    if value is None:
        return None
    typ = column.type
    parser = PARSERS.get(type(typ))
    if parser is not None:
        return parser(value)
    if isinstance(typ, Integer | BigInteger):
        if isinstance(value, bool):
            raise InvalidValue("integer", value)
        try:
            number = float(value) if not isinstance(value, int) else value
        except (TypeError, ValueError):
            raise InvalidValue("integer", value) from None
        if isinstance(number, float):
            if not number.is_integer():
                raise InvalidValue("integer", value)
            number = int(number)
        if not -(2**63) <= number < 2**63:
            raise InvalidValue("bigint", value)
        return number
    if isinstance(typ, Float):
        if isinstance(value, bool):
            raise InvalidValue("double precision", value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InvalidValue("double precision", value) from None
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def type_name(column: Column[Any]) -> str:
    """The PostgreSQL type name of a column (also what realtime reports in ``columns``)."""
    typ = column.type
    pg_name = getattr(typ, "pg_name", None)
    if pg_name:
        return str(pg_name)
    if isinstance(typ, BigInteger):
        return "int8"
    if isinstance(typ, Integer):
        return "int4"
    if isinstance(typ, Float):
        return "float8"
    return "text"
