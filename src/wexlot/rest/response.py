"""Stage 5: rows → HTTP response, with PostgREST's statuses, ``Content-Range`` and singular media."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from starlette.responses import Response

from wexlot.crm.records import dumps, json_value
from wexlot.errors import ApiError
from wexlot.rest.request import ApiRequest

JSON = "application/json; charset=utf-8"
OBJECT = "application/vnd.pgrst.object+json; charset=utf-8"
CSV = "text/csv; charset=utf-8"


def error_response(err: ApiError) -> Response:
    headers = dict(err.headers)
    return Response(dumps(err.body()), status_code=err.status, media_type=JSON, headers=headers)


def singular(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if len(rows) != 1:
        raise ApiError(
            406,
            "PGRST116",
            "Cannot coerce the result to a single JSON object",
            f"The result contains {len(rows)} rows",
        )
    return rows[0]


def _body(req: ApiRequest, rows: list[dict[str, Any]]) -> tuple[bytes, str]:
    if req.single:
        return dumps(singular(rows)), OBJECT
    if req.csv:
        return to_csv(rows), CSV
    return dumps(rows), JSON


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """``Accept: text/csv``: a header row, then one line per row (lists and objects as JSON)."""
    out = io.StringIO()
    if rows:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(rows[0].keys())
        for row in rows:
            writer.writerow("" if v is None else _csv_cell(v) for v in row.values())
    return out.getvalue().encode()


def _csv_cell(value: Any) -> Any:
    value = json_value(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def read_response(req: ApiRequest, rows: list[dict[str, Any]], total: int | None, offset: int, head: bool) -> Response:
    if total is not None and offset > 0 and offset >= total and not rows:
        raise ApiError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            f"An offset of {offset} was requested, but there are only {total} rows.",
        )
    body, media = _body(req, rows)
    total_text = "*" if total is None else str(total)
    span = f"{offset}-{offset + len(rows) - 1}" if rows else "*"
    status = 206 if total is not None and len(rows) < total and (rows or offset) else 200
    headers = {"Content-Range": f"{span}/{total_text}"}
    return Response(b"" if head else body, status_code=status, media_type=media, headers=headers)


def write_response(req: ApiRequest, rows: list[dict[str, Any]], created: bool) -> Response:
    total = str(len(rows)) if req.prefer.count else "*"
    if req.method == "POST":
        span = "*"
        status = 201 if created else 200
    else:
        span = f"0-{len(rows) - 1}" if rows else "*"
        status = 200
    headers = {"Content-Range": f"{span}/{total}"}
    if req.single:
        singular(rows)  # 406 (and a rollback) unless exactly one row was affected
    if req.prefer.return_ == "representation":
        body, media = _body(req, rows)
        return Response(body, status_code=status, media_type=media, headers=headers)
    if req.method != "POST":
        status = 204
    headers["Preference-Applied"] = f"return={req.prefer.return_}" if req.prefer.explicit_return else ""
    if not headers["Preference-Applied"]:
        del headers["Preference-Applied"]
    return Response(status_code=status, headers=headers)
