"""Errors with stable, catalogued codes; rendering them is the edge packages' job.

ApiError                 PostgREST-shaped: {"code","message","details","hint"} + HTTP status
├── PGRST100 (400)       query string cannot be parsed (filter, select, order)
├── PGRST102 (400)       request body is not valid JSON / wrong shape
├── PGRST103 (416)       requested range not satisfiable
├── PGRST105 (400)       update/delete without a filter (also 21000)
├── PGRST106 (406)       schema other than public requested
├── PGRST116 (406)       singular response requested, 0 or >1 rows
├── PGRST200 (400)       no relationship for an embed
├── PGRST204 (400)       unknown column in a payload / columns=
├── PGRST205 (404)       unknown table
├── PGRST301 (401)       bearer token cannot be decoded / bad signature
├── PGRST303 (401)       bearer token claims invalid (expired)
├── 42703 (400)          unknown column in select/filter/order
├── 42501 (401/403)      permission denied for a write
├── 22P02 / 22003 (400)  invalid value for the column's type / numeric overflow
├── 23502 (400)          not-null violation
├── 23503 (409)          foreign-key violation
├── 23505 (409)          unique violation
└── 23514 (400)          check violation
AuthError                GoTrue-shaped: {"code","error_code","msg","message"} + HTTP status
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "details": self.details, "hint": self.hint, "message": self.message}


def parse_error(message: str, details: str | None = None) -> ApiError:
    return ApiError(400, "PGRST100", message, details)


def unknown_column(table: str, column: str) -> ApiError:
    return ApiError(400, "42703", f"column {table}.{column} does not exist")


def unknown_table(table: str) -> ApiError:
    return ApiError(
        404,
        "PGRST205",
        f"Could not find the table 'public.{table}' in the schema cache",
        hint=None,
    )


def permission_denied(table: str, anon: bool) -> ApiError:
    return ApiError(401 if anon else 403, "42501", f"permission denied for table {table}")


def row_security(table: str, anon: bool) -> ApiError:
    return ApiError(401 if anon else 403, "42501", f'new row violates row-level security policy for table "{table}"')


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        # Clients send X-Supabase-Api-Version 2024-01-01 and then read the string ``code``; older ones
        # read ``error_code``/``msg``. Both are present so either generation gets the code.
        return {
            "code": self.code,
            "error_code": self.code,
            "msg": self.message,
            "message": self.message,
            **self.extra,
        }
