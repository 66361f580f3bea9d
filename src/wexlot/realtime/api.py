"""``/realtime/v1/api/*``: catch-up, publication settings, HTTP broadcast and status.

* ``GET changes?since=POS&tables=a,b[&limit=N]`` — what a reconnecting client missed, authorized
  exactly like the live stream (same row test, same move-in/move-out rules). When ``since`` is older
  than the retained history the answer is ``410`` with ``code: "position_expired"``: refetch.
* ``GET``/``PUT publication`` — which tables broadcast: any active staff member may read it (a screen shows
  when a table it displays is not live), admin staff or service_role may change it. A change is announced
  on each table's channel as a broadcast ``publication`` event (empty payload), a hint to read it again.
* ``POST broadcast`` (batch) and ``POST broadcast/{topic}/events/{event}`` — 202, as the SDKs use.
* ``GET status`` — connections, channels, counts, capture position (admin staff or service_role).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wexlot.auth.principal import credentials, principal_for
from wexlot.crm.access import PARENTS, Principal, can_read_row
from wexlot.crm.tables import TABLE_NAMES
from wexlot.errors import ApiError
from wexlot.realtime import publication
from wexlot.realtime.change import Change
from wexlot.realtime.fanout import child_rows, event_data, event_for
from wexlot.realtime.parents import PARENT_TABLES
from wexlot.runtime import Runtime, runtime_of

MAX_CATCHUP = 5000

PUBLICATION_EVENT = "publication"


def _error(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


async def _principal(request: Request) -> tuple[Runtime, Principal]:
    rt = runtime_of(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    claims = credentials(rt.tokens, headers, parse_qsl(request.url.query))
    async with rt.db.read() as conn:
        return rt, await principal_for(conn, claims)


def _require_admin(principal: Principal) -> None:
    if not (principal.is_service or principal.is_admin):
        raise ApiError(403, "42501", "only admins and the service_role may do this")


async def changes(request: Request) -> Response:
    try:
        rt, principal = await _principal(request)
        params = request.query_params
        try:
            since = int(params.get("since", ""))
            limit = min(int(params.get("limit", str(MAX_CATCHUP))), MAX_CATCHUP)
        except ValueError:
            raise ApiError(400, "PGRST100", "since and limit must be whole numbers") from None
        tables = [t for t in (params.get("tables") or ",".join(TABLE_NAMES)).split(",") if t]
        unknown = [t for t in tables if t not in TABLE_NAMES]
        if unknown:
            raise ApiError(404, "PGRST205", f"Could not find the table 'public.{unknown[0]}' in the schema cache")
        source = rt.realtime.source
        oldest, current = await source.oldest_position(), await source.current_position()
        if since < oldest - 1 and since < current:
            raise ApiError(
                410, "position_expired",
                f"position {since} is older than the retained history (oldest {oldest}); refetch",
                details=json.dumps({"oldest_position": oldest, "position": current}),
            )  # fmt: skip
        # Parents are read too: their visibility changes decide which children move in or out of view.
        wanted = set(tables)
        parents = {target for child, refs in PARENTS.items() if child in wanted for _, target in refs}
        found = await source.changes_since(since, sorted(wanted | parents), limit + 1)
        complete = len(found) <= limit
        found = found[:limit]
        events = [e for c in found for e in await authorized_events(rt, principal, c, wanted)]
        position = found[-1].position if found else max(since, current if complete else since)
        return Response(
            '{"position":' + str(position) + ',"complete":' + ("true" if complete else "false")
            + ',"changes":[' + ",".join(events) + "]}",
            media_type="application/json",
        )  # fmt: skip
    except ApiError as err:
        return _error(err)


async def authorized_events(rt: Runtime, principal: Principal, change: Change, tables: set[str]) -> list[str]:
    """What the live stream sends a ``*`` subscriber with no filter for ``change``: its own event, and
    when a parent's visibility or owner changed, the children entering or leaving the principal's view."""
    lookup = rt.realtime.hub.parents.lookup
    events = []
    before = change.old_record is not None and can_read_row(principal, change.table, change.old_record, lookup)
    after = change.record is not None and can_read_row(principal, change.table, change.record, lookup)
    typ = event_for(before, after)
    if typ is not None and change.table in tables:
        events.append(event_data(change, typ, key_only=typ == "DELETE" and change.record is not None))
    if change.type == "UPDATE" and change.table in PARENT_TABLES and change.old_record and change.record:
        row_id = change.row["id"]
        old_view = {(change.table, row_id): change.old_record}
        new_view = {(change.table, row_id): change.record}
        cache = rt.realtime.hub.parents
        for child, row in await child_rows(rt.db, change, tables):
            was = can_read_row(principal, child, row, cache.lookup_with(old_view))
            now = can_read_row(principal, child, row, cache.lookup_with(new_view))
            if was != now:
                moved = Change(child, "INSERT" if now else "DELETE", row if now else None, row, change.commit_timestamp,
                               change.position)  # fmt: skip
                events.append(event_data(moved, moved.type, key_only=not now))
    return events


async def get_publication(request: Request) -> Response:
    try:
        rt, principal = await _principal(request)
        if not (principal.is_staff or principal.is_service):
            raise ApiError(401 if principal.role == "anon" else 403, "42501", "only staff may read this")
        async with rt.db.read() as conn:
            published = set(await publication.published_tables(conn, rt.db.dialect))
        return JSONResponse({"tables": [{"name": t, "published": t in published} for t in TABLE_NAMES]})
    except ApiError as err:
        return _error(err)


async def put_publication(request: Request) -> Response:
    try:
        rt, principal = await _principal(request)
        _require_admin(principal)
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "PGRST102", "Empty or invalid json") from None
        tables = body.get("tables") if isinstance(body, dict) else None
        if not isinstance(tables, list) or not all(isinstance(t, str) for t in tables):
            raise ApiError(400, "PGRST102", 'expected {"tables": ["contacts", …]}')
        try:
            async with rt.db.write() as conn:
                await publication.set_published(conn, rt.db.dialect, set(tables))
        except ValueError as exc:
            raise ApiError(400, "22023", str(exc)) from None
        for table in TABLE_NAMES:  # screens on this node ask again at once; others poll
            rt.realtime.broadcast(f"realtime:{table}", {"type": "broadcast", "event": PUBLICATION_EVENT, "payload": {}})
        return await get_publication(request)
    except ApiError as err:
        return _error(err)


async def broadcast_batch(request: Request) -> Response:
    try:
        rt, principal = await _principal(request)
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "PGRST102", "Empty or invalid json") from None
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            raise ApiError(422, "22023", 'expected {"messages": [{"topic", "event", "payload"}]}')
        for msg in messages:
            if (
                not isinstance(msg, dict)
                or not isinstance(msg.get("topic"), str)
                or not isinstance(msg.get("event"), str)
            ):
                raise ApiError(422, "22023", "each message needs a string topic and event")
        limit = rt.realtime.limits.max_payload_bytes
        for msg in messages:
            if len(json.dumps(msg.get("payload", {})).encode()) > limit:
                raise ApiError(413, "22023", "payload_size_exceeded")
        for msg in messages:
            _send(rt, principal, msg["topic"], msg["event"], msg.get("payload", {}), bool(msg.get("private")))
        return Response(status_code=202)
    except ApiError as err:
        return _error(err)


async def broadcast_one(request: Request) -> Response:
    try:
        rt, principal = await _principal(request)
        topic, event = request.path_params["topic"], request.path_params["event"]
        raw = await request.body()
        if len(raw) > rt.realtime.limits.max_payload_bytes:
            raise ApiError(413, "22023", "payload_size_exceeded")
        if request.headers.get("content-type", "").startswith("application/octet-stream"):
            payload: Any = raw
        else:
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                raise ApiError(400, "PGRST102", "Empty or invalid json") from None
        private = request.query_params.get("private", "").lower() == "true"
        _send(rt, principal, topic, event, payload, private)
        return Response(status_code=202)
    except ApiError as err:
        return _error(err)


def _send(rt: Runtime, principal: Principal, topic: str, event: str, payload: Any, private: bool) -> None:
    if not (principal.is_staff or principal.is_service):
        raise ApiError(401 if principal.role == "anon" else 403, "42501", "Unauthorized")
    full = topic if topic.startswith("realtime:") else f"realtime:{topic}"
    rt.realtime.broadcast(full, {"type": "broadcast", "event": event, "payload": payload}, private=private)


async def status(request: Request) -> Response:
    try:
        rt, principal = await _principal(request)
        _require_admin(principal)
        return JSONResponse(await rt.realtime.status())
    except ApiError as err:
        return _error(err)


routes: list[BaseRoute] = [
    Route("/changes", changes, methods=["GET"]),
    Route("/publication", get_publication, methods=["GET"]),
    Route("/publication", put_publication, methods=["PUT"]),
    Route("/broadcast", broadcast_batch, methods=["POST"]),
    Route("/broadcast/{topic:path}/events/{event}", broadcast_one, methods=["POST"]),
    Route("/status", status, methods=["GET"]),
]
