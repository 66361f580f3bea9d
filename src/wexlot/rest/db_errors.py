"""Database exceptions → PostgREST errors with PostgreSQL's SQLSTATE codes, on both backends.

PostgreSQL reports SQLSTATEs itself; SQLite's extended result codes are translated to the same
codes and messages shaped like PostgreSQL's, so clients see one error vocabulary.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import DBAPIError, StatementError

from wexlot.crm.types import InvalidValue
from wexlot.errors import ApiError

STATUS = {"23505": 409, "23503": 409, "23502": 400, "23514": 400, "22P02": 400, "22003": 400, "22007": 400,
          "22008": 400, "21000": 400, "42501": 403, "P0001": 400, "23P01": 409, "40001": 409, "40P01": 409,
          "42P10": 400, "22023": 400, "54000": 400}  # fmt: skip


def to_api_error(exc: Exception) -> ApiError | None:
    if isinstance(exc, StatementError) and isinstance(exc.orig, InvalidValue):
        return ApiError(400, "22P02", str(exc.orig))
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if code:
        return _postgres(str(code), orig)
    name = getattr(orig, "sqlite_errorname", None) or getattr(
        getattr(orig, "__cause__", None), "sqlite_errorname", None
    )
    if name:
        return _sqlite(str(name), str(orig))
    return None


def _postgres(code: str, orig: Any) -> ApiError:
    cause = orig.__cause__ or orig
    message = getattr(cause, "message", None) or str(orig).split("\n")[0]
    message = re.sub(r"^<class '[^']+'>: ", "", str(message))
    details = getattr(cause, "detail", None)
    hint = getattr(cause, "hint", None)
    status = STATUS.get(code, 500 if code[:2] in ("XX", "53", "57", "58") else 400)
    return ApiError(status, code, message, details, hint)


_SQLITE_CODES = {
    "SQLITE_CONSTRAINT_UNIQUE": "23505",
    "SQLITE_CONSTRAINT_PRIMARYKEY": "23505",
    "SQLITE_CONSTRAINT_FOREIGNKEY": "23503",
    "SQLITE_CONSTRAINT_NOTNULL": "23502",
    "SQLITE_CONSTRAINT_CHECK": "23514",
    "SQLITE_CONSTRAINT_TRIGGER": "P0001",
    "SQLITE_TOOBIG": "54000",
}


def _sqlite(name: str, text: str) -> ApiError:
    code = _SQLITE_CODES.get(name)
    if code is None:
        return ApiError(500, "XX000", "database error", details=name)
    cols = re.search(r"constraint failed: (.+)$", text)
    target = cols.group(1) if cols else ""
    pairs = [p.strip().split(".", 1) for p in target.split(",") if "." in p]
    table = pairs[0][0] if pairs else ""
    columns = [p[1] for p in pairs]
    if code == "23505":
        constraint = f"{table}_{'_'.join(columns)}_key" if columns != ["id"] else f"{table}_pkey"
        return ApiError(409, code, f'duplicate key value violates unique constraint "{constraint}"',
                        f"Key ({', '.join(columns)}) already exists.")  # fmt: skip
    if code == "23502":
        return ApiError(400, code, f'null value in column "{columns[0] if columns else "?"}" of relation '
                        f'"{table}" violates not-null constraint')  # fmt: skip
    if code == "23503":
        return ApiError(409, code, "insert or update on table violates foreign key constraint",
                        "Key is not present in the referenced table.")  # fmt: skip
    if code == "23514":
        return ApiError(400, code, f"new row violates check constraint: {target}")
    return ApiError(STATUS.get(code, 400), code, text)
