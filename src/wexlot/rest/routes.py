"""``/rest/v1/<table>``: authenticate, parse, then read or write inside exactly one transaction.

Stages (PostgREST's order): credentials → :mod:`request` (parse) → :mod:`read`/:mod:`write`
(plan + SQL) → :mod:`response`. An error anywhere rolls the whole request back.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from wexlot.auth.principal import credentials, principal_for
from wexlot.errors import ApiError
from wexlot.rest import read as reads
from wexlot.rest import request as parsing
from wexlot.rest import write as writes
from wexlot.rest.db_errors import to_api_error
from wexlot.rest.response import error_response, read_response, write_response
from wexlot.runtime import Runtime, runtime_of

log = logging.getLogger("wexlot.rest")


class _Rollback(Exception):
    """Raised to roll back a finished request (``Prefer: tx=rollback``) while keeping its response."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def _body(request: Request, limit: int) -> Any:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "PGRST413", "Payload too large", f"The request body exceeds {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "PGRST102", "Empty or invalid json", details=str(exc)) from None


def _check_profile(headers: dict[str, str], method: str) -> None:
    name = "accept-profile" if method in ("GET", "HEAD") else "content-profile"
    schema = headers.get(name)
    if schema and schema != "public":
        raise ApiError(
            406, "PGRST106", f"Invalid schema: {schema}", hint="Only the following schemas are exposed: public"
        )


async def table_endpoint(request: Request) -> Response:
    rt = runtime_of(request)
    method = request.method
    table = request.path_params["table"]
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        params = parse_qsl(request.url.query, keep_blank_values=True)
        claims = credentials(rt.tokens, headers, params)
        _check_profile(headers, method)
        query = urlencode([(k, v) for k, v in params if k != "apikey"])
        req = parsing.parse(method, table, query, headers)
        reads.table_or_404(table)
        if method in ("GET", "HEAD"):
            return await _read(rt, req, claims, head=method == "HEAD")
        body = await _body(request, rt.settings.max_body_bytes) if method in ("POST", "PATCH") else None
        if method in ("POST", "PATCH") and body is None:
            raise ApiError(400, "PGRST102", "Empty or invalid json", details="the request body is empty")
        return await _write(rt, req, claims, body)
    except _Rollback as rb:
        return rb.response
    except ApiError as err:
        return error_response(err)
    except Exception as exc:
        mapped = to_api_error(exc)
        if mapped is not None:
            return error_response(mapped)
        log.exception("unexpected error on %s /rest/v1/%s", method, table)
        return error_response(ApiError(500, "XX000", "Internal server error"))


async def _read(rt: Runtime, req: parsing.ApiRequest, claims: dict[str, Any], head: bool) -> Response:
    async with rt.db.read() as conn:
        principal = await principal_for(conn, claims)
        ctx = reads.ReadContext(conn, principal, rt.db.dialect, req, rt.settings.max_rows)
        result = await reads.read(ctx, req.table)
    return read_response(req, result.rows, result.total, result.offset, head)


async def _write(rt: Runtime, req: parsing.ApiRequest, claims: dict[str, Any], body: Any) -> Response:
    async with rt.db.write() as conn:
        principal = await principal_for(conn, claims)
        actor = principal.staff_id if principal.is_staff else None
        await rt.db.set_actor(conn, actor)
        ctx = reads.ReadContext(conn, principal, rt.db.dialect, req, rt.settings.max_rows)
        if req.method == "POST":
            result = await writes.insert(ctx, req.table, body, actor)
        elif req.method == "PATCH":
            result = await writes.update_rows(ctx, req.table, body, actor)
        else:
            result = await writes.delete_rows(ctx, req.table)
        rows = result.rows
        if req.prefer.return_ == "representation":
            reads.validate_select(req.table, req.select)
            await reads.attach(ctx, req.table, rows, req.select, ())
            rows = [reads.project(req.table, r, req.select) for r in rows]
        response = write_response(req, rows, result.created)
        if req.prefer.tx_rollback:
            raise _Rollback(response)
    rt.realtime.wake()  # our own commit: the change log has news (SQLite skips its poll delay)
    return response


async def rpc(request: Request) -> Response:
    name = request.path_params["function"]
    return error_response(
        ApiError(
            404,
            "PGRST202",
            f"Could not find the function public.{name} without parameters in the schema cache",
            hint="This server exposes the CRM tables only; it has no RPC functions.",
        )
    )


async def not_found(request: Request) -> Response:
    return error_response(ApiError(404, "PGRST125", f"Invalid path specified in request URL: {request.url.path}"))


routes: list[BaseRoute] = [
    Route("/rpc/{function}", rpc, methods=["GET", "POST"]),
    Route("/{table}", table_endpoint, methods=["GET", "HEAD", "POST", "PATCH", "DELETE"]),
    Route("/{path:path}", not_found, methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]),
]
