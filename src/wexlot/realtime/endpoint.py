"""``/realtime/v1/websocket`` (and ``/socket/websocket``): accept, pick the serializer, read, write.

The reader decodes frames and hands them to the channel handler; the writer drains the bounded
outbox. Malformed frames are logged and ignored; the socket and everyone else carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from wexlot.auth.principal import api_key_role
from wexlot.auth.tokens import TokenError
from wexlot.realtime import protocol
from wexlot.realtime.channel import ChannelHandler
from wexlot.realtime.outbox import Outbox
from wexlot.realtime.session import Connection
from wexlot.runtime import runtime_of

log = logging.getLogger("wexlot.realtime")


async def _deny(ws: WebSocket, status: int, message: str) -> None:
    log.info("websocket refused (%d): %s", status, message)
    try:
        await ws.send_denial_response(JSONResponse({"error": message}, status_code=status))
    except RuntimeError:  # server without the denial-response extension
        await ws.close(code=1008, reason=message)


async def websocket_endpoint(ws: WebSocket) -> None:
    rt = runtime_of(ws)
    service = rt.realtime
    params = ws.query_params
    apikey = ws.headers.get("x-api-key") or params.get("apikey")
    vsn = params.get("vsn") or protocol.V1
    if not apikey:
        return await _deny(ws, 401, "API key is missing")
    if vsn not in protocol.VERSIONS:
        return await _deny(ws, 400, f"unsupported serializer version {vsn}")
    if api_key_role(rt.tokens, apikey) is None:
        return await _deny(ws, 401, "Invalid API key")
    try:
        claims = rt.tokens.decode(apikey)
    except TokenError as exc:
        return await _deny(ws, 401, exc.message)
    if len(service.hub.connections) >= service.limits.max_connections:
        return await _deny(ws, 429, "Too many connected users")
    await ws.accept()
    remote = f"{ws.client.host}:{ws.client.port}" if ws.client else ""
    conn = Connection(
        vsn=vsn,
        outbox=Outbox(service.outbox_bytes, service.stall_seconds),
        apikey_claims=claims,
        remote=remote,
        checkpoints=params.get("checkpoints", "").lower() in ("1", "true", "yes"),
    )
    handler = ChannelHandler(rt, conn)
    service.hub.connections.add(conn)
    log.info("connection %s opened from %s (vsn %s)", conn.id, remote, vsn)
    writer = asyncio.create_task(_write_loop(ws, conn), name=f"realtime-writer-{conn.id}")
    try:
        await _read_loop(ws, conn, handler)
    finally:
        handler.leave_all()
        service.limits.forget(conn)
        service.hub.connections.discard(conn)
        conn.close(conn.close_reason or "client closed the connection")
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
        log.info("connection %s closed: %s", conn.id, conn.close_reason)


async def _read_loop(ws: WebSocket, conn: Connection, handler: ChannelHandler) -> None:
    while conn.close_reason is None:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            conn.close_reason = conn.close_reason or f"client closed ({message.get('code', 1000)})"
            return
        data = message.get("text")
        if data is None:
            data = message.get("bytes")
        if data is None:
            continue
        conn.last_frame_at = time.monotonic()
        conn.frames_in += 1
        try:
            frame = protocol.decode(data, conn.vsn)
        except protocol.ProtocolError as exc:
            log.info("connection %s sent a malformed frame: %s", conn.id, exc)
            continue
        try:
            await handler.handle(frame)
        except Exception:
            log.exception("error handling %s on %s (connection %s)", frame.event, frame.topic, conn.id)
            if frame.ref is not None:
                conn.send(protocol.reply(frame, "error", {"reason": "Unknown Error on Channel"}))


async def _write_loop(ws: WebSocket, conn: Connection) -> None:
    try:
        while True:
            data = await conn.outbox.get()
            if data is None:
                break
            if isinstance(data, bytes):
                await ws.send_bytes(data)
            else:
                await ws.send_text(data)
    except Exception as exc:  # the peer vanished mid-write
        conn.close(conn.close_reason or f"write failed: {exc.__class__.__name__}")
        return
    reason = conn.close_reason or "closed"
    if reason.startswith(("outbox full", "client read nothing")):
        log.warning("connection %s cut: %s", conn.id, reason)
        for channel in list(conn.channels.values()):
            payload = {
                "extension": "system",
                "status": "error",
                "message": f"Disconnected: {reason}",
                "channel": channel.name,
            }
            with contextlib.suppress(Exception):
                await ws.send_text(protocol.encode(protocol.Frame(channel.topic, "system", payload), conn.vsn))
    with contextlib.suppress(Exception):
        await ws.close(code=1011 if reason.startswith("outbox") else 1000, reason=reason[:120])
