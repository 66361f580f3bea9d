"""The realtime engine of one server: change source → hub → connections, plus housekeeping.

Started and stopped by the app's lifespan. The change source is chosen by the database: SQLite's
trigger-fed change log, or PostgreSQL logical replication.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from wexlot.auth.principal import live_sessions
from wexlot.config import Settings
from wexlot.realtime import protocol
from wexlot.realtime.change import ChangeSource, RealtimeUnavailable
from wexlot.realtime.channel import expiry_message
from wexlot.realtime.fanout import Hub
from wexlot.realtime.limits import Limits
from wexlot.realtime.presence import Presence
from wexlot.realtime.session import Channel
from wexlot.storage.database import Database

log = logging.getLogger("wexlot.realtime")

IDLE_TIMEOUT_SECONDS = 60.0
HOUSEKEEPING_INTERVAL = 1.0


def make_source(settings: Settings, db: Database) -> ChangeSource:
    retention = settings.realtime_retention_seconds
    if db.is_sqlite:
        from wexlot.realtime.sources.sqlite import SqliteChangeSource

        return SqliteChangeSource(db.url, retention_seconds=retention)
    from wexlot.realtime.sources.postgres import PostgresChangeSource

    return PostgresChangeSource(db.url, node_id=settings.node_id, retention_seconds=retention)


class RealtimeService:
    def __init__(self, settings: Settings, db: Database, source: ChangeSource | None = None) -> None:
        self.settings = settings
        self.db = db
        self.hub = Hub(db)
        self.presence = Presence(self.hub)
        self.hub.presence = self.presence
        self.limits = Limits(
            max_connections=settings.realtime_max_connections,
            max_channels_per_connection=settings.realtime_max_channels,
            max_joins_per_second=settings.realtime_max_joins_per_second,
            max_events_per_second=settings.realtime_max_events_per_second,
            max_payload_bytes=settings.realtime_max_payload_bytes,
        )
        self.source = source if source is not None else make_source(settings, db)
        self.outbox_bytes = settings.realtime_outbox_bytes
        self.stall_seconds = float(settings.realtime_stall_seconds)
        self.started_at: float | None = None
        self.error: str | None = None
        self._housekeeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start capture and fan-out. If the database cannot stream changes (e.g. PostgreSQL without
        ``wal_level=logical``) REST keeps serving and realtime refuses connections with the reason."""
        try:
            async with self.db.read() as conn:
                await self.hub.parents.load(conn)
            self.hub.position = await self.source.current_position()
            await self.source.start(self.hub.on_transaction)
        except RealtimeUnavailable as exc:
            self.error = str(exc)
            log.error("realtime unavailable: %s", exc)
            return
        self._housekeeping = asyncio.create_task(self._housekeep(), name="realtime-housekeeping")
        self.started_at = time.time()
        log.info("realtime started at position %d (%d private parents cached)", self.hub.position,
                 self.hub.parents.count())  # fmt: skip

    @property
    def available(self) -> bool:
        return self.started_at is not None

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        if self.available:
            await self.source.stop()
        for conn in list(self.hub.connections):
            conn.close("server shutting down")

    def wake(self) -> None:
        self.source.wake()

    async def recheck_sessions(self, user_id: str) -> None:
        """After sessions ended (sign-out, password change, user deleted): their channels stop at once."""
        channels = [c for c in self.hub.channels() if c.principal.user_id == user_id and c.principal.session_id]
        if not channels:
            return
        async with self.db.read() as conn:
            alive = await live_sessions(conn, user_id)
        for channel in channels:
            if channel.principal.session_id not in alive:
                self.hub.close_channel(channel, "Token has been revoked: the session was signed out")

    # --- broadcast ------------------------------------------------------------------------------

    def client_event_allowed(self, channel: Channel, frame: protocol.Frame, size: int) -> bool:
        """Rate and size limits for what a client sends (broadcast, presence); only the offender is hit."""
        if not self.limits.on_client_event(channel.conn):
            log.info("connection %s over the message rate on %s", channel.conn.id, channel.topic)
            self.hub.close_channel(channel, "Too many messages per second")
            return False
        if size > self.limits.max_payload_bytes:
            log.info("connection %s sent %d bytes on %s: over the payload limit", channel.conn.id, size, channel.topic)
            if frame.event == "presence":
                self.hub.close_channel(channel, "Track message size exceeded")
            elif channel.broadcast_ack:
                channel.conn.send(protocol.reply(frame, "error", {"error": "payload_size_exceeded"}))
            return False
        return True

    def broadcast_from(self, channel: Channel, frame: protocol.Frame) -> None:
        payload = frame.payload if isinstance(frame.payload, dict) else {}
        self.broadcast(channel.topic, payload, sender=channel, private=channel.private)
        if channel.broadcast_ack:
            channel.conn.send(protocol.reply(frame, "ok", {}))

    def broadcast(
        self, topic: str, message: dict[str, Any], sender: Channel | None = None, private: bool = False
    ) -> int:
        """Deliver a broadcast to every channel on ``topic`` (of the same flavour); returns the count."""
        event = str(message.get("event", ""))
        body = message.get("payload")
        delivered = 0
        texts: dict[str, str] = {}
        binary: bytes | None = None
        for member in list(self.hub.by_topic.get(topic, ())):
            if member.private != private or (member is sender and not member.broadcast_self):
                continue
            vsn = member.conn.vsn
            if isinstance(body, bytes | bytearray):
                if vsn != protocol.V2:
                    continue  # raw bytes cannot be expressed in 1.0.0 JSON
                if binary is None:
                    binary = protocol.encode_binary_broadcast(topic, event, bytes(body), json_payload=False)
                member.conn.send_raw(binary)
            else:
                if vsn not in texts:
                    out = {"type": "broadcast", "event": event, "payload": body}
                    if "meta" in message:
                        out["meta"] = message["meta"]
                    texts[vsn] = protocol.encode(protocol.Frame(topic, "broadcast", out), vsn)
                member.conn.send_raw(texts[vsn])
            delivered += 1
        return delivered

    # --- status ---------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        hub = self.hub
        channels = [
            {
                "topic": ch.topic,
                "connection": ch.conn.id,
                "state": "joined",
                "principal": ch.principal.staff_id or ch.principal.role,
                "bindings": [dict(b.echo) | {"id": b.id} for b in ch.bindings],
                "presence": self.presence.count(ch.topic),
                "events_sent": ch.events_sent,
                "private": ch.private,
            }
            for ch in hub.channels()
        ]
        oldest = await self.source.oldest_position()
        return {
            "connections": len(hub.connections),
            "connection_details": [
                {
                    "id": c.id,
                    "remote": c.remote,
                    "vsn": c.vsn,
                    "channels": len(c.channels),
                    "outbox_bytes": c.outbox.size,
                    "outbox_frames": len(c.outbox),
                    "opened_at": c.opened_at,
                }
                for c in hub.connections
            ],
            "channels": channels,
            "presence": self.presence.count(),
            "events_by_table": dict(hub.table_counts),
            "deliveries": hub.deliveries,
            "position": hub.position,
            "oldest_position": oldest,
            "retention_seconds": self.settings.realtime_retention_seconds,
            "capture": await self._capture_status(),
            "started_at": self.started_at,
            "last_error": self.error or hub.last_error,
        }

    async def _capture_status(self) -> dict[str, Any]:
        describe = getattr(self.source, "status", None)
        if describe is None:
            return {"backend": self.db.dialect}
        result = describe()
        if asyncio.iscoroutine(result):
            result = await result
        return {"backend": self.db.dialect, **result}

    # --- housekeeping ---------------------------------------------------------------------------

    async def _housekeep(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            now, mono = time.time(), time.monotonic()
            for conn in list(self.hub.connections):
                if conn.outbox.check_stall():
                    log.warning("connection %s stopped reading; disconnecting", conn.id)
                    conn.close(f"client read nothing for {self.stall_seconds:.0f} s with a full outbox")
                elif mono - conn.last_frame_at > IDLE_TIMEOUT_SECONDS:
                    conn.close("heartbeat timeout")
                for channel in list(conn.channels.values()):
                    if channel.expires_at is not None and channel.expires_at <= now:
                        self.hub.close_channel(channel, expiry_message(channel.expires_at))
