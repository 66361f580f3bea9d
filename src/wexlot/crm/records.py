"""Row values ↔ JSON, the same for REST responses and realtime ``record``/``old_record``.

UUIDs are strings, timestamps ISO-8601 with offset, dates ``YYYY-MM-DD``, booleans true/false,
lists arrays, and money a JSON number. Money is ``numeric(14,2)``: at most 14 significant digits, so
the shortest float repr is the exact decimal text — nothing is rounded on the way out.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def to_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: json_value(v) for k, v in row.items()}


def _default(value: Any) -> Any:
    converted = json_value(value)
    if converted is value:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")
    return converted


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, default=_default, ensure_ascii=False, separators=(",", ":")).encode()
