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
    if not service.available:
        return await _deny(ws, 503, f"Realtime is unavailable: {service.error or 'starting'}")
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
    reader = asyncio.create_task(_read_loop(ws, conn, handler), name=f"realtime-reader-{conn.id}")
    closing = asyncio.create_task(conn.closed.wait())
    try:
        # Whichever comes first: the client goes away, or the server cuts the connection (then the
        # writer may be stuck on a socket the client no longer reads, so it is cancelled below).
        await asyncio.wait({reader, closing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        topics = [(ch.topic, ch.name) for ch in conn.channels.values()]
        handler.leave_all()
        service.limits.forget(conn)
        service.hub.connections.discard(conn)
        conn.close(conn.close_reason or "client closed the connection")
        for task in (reader, closing, writer):
            task.cancel()
        await asyncio.gather(reader, closing, writer, return_exceptions=True)
        await _say_goodbye(ws, conn, topics)
        log.info("connection %s closed: %s", conn.id, conn.close_reason)


async def _say_goodbye(ws: WebSocket, conn: Connection, topics: list[tuple[str, str]]) -> None:
    """Tell a cut-off client why (bounded: its socket may not be writable), then close."""
    reason = conn.close_reason or "closed"
    if reason.startswith(("outbox full", "client read nothing")):
        log.warning("connection %s cut: %s", conn.id, reason)
        for topic, name in topics:
            payload = {"extension": "system", "status": "error", "message": f"Disconnected: {reason}", "channel": name}
            with contextlib.suppress(Exception):
                text = protocol.encode(protocol.Frame(topic, "system", payload), conn.vsn)
                await asyncio.wait_for(ws.send_text(text), 0.5)
    if not reason.startswith("client closed"):
        code = 1011 if reason.startswith(("outbox", "client read nothing")) else 1000
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=code, reason=reason[:120]), 0.5)


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
            await handler.handle(frame, len(data) if isinstance(data, bytes) else len(data.encode()))
        except Exception:
            log.exception("error handling %s on %s (connection %s)", frame.event, frame.topic, conn.id)
            if frame.ref is not None:
                conn.send(protocol.reply(frame, "error", {"reason": "Unknown Error on Channel"}))


async def _write_loop(ws: WebSocket, conn: Connection) -> None:
    try:
        while (data := await conn.outbox.get()) is not None:
            # uvicorn's send waits while the socket's write buffer is full, so a client that stops
            # reading leaves frames here in the bounded outbox, where the stall is detected.
            if isinstance(data, bytes):
                await ws.send_bytes(data)
            else:
                await ws.send_text(data)
    except Exception as exc:  # the peer vanished mid-write
        conn.close(conn.close_reason or f"write failed: {exc.__class__.__name__}")
