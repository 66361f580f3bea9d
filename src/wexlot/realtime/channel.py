"""Channel events of one connection: join, leave, access_token, broadcast, presence, heartbeat.

The join reply is sent only once the subscription is registered in the hub, so ``SUBSCRIBED`` is
truthful: every change committed after the position in the reply reaches this channel.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from wexlot.auth.principal import principal_for
from wexlot.auth.tokens import TokenError
from wexlot.realtime import protocol
from wexlot.realtime.bindings import BindingError, parse_bindings
from wexlot.realtime.fanout import send_position
from wexlot.realtime.presence import Presence
from wexlot.realtime.session import Channel, Connection
from wexlot.runtime import Runtime

log = logging.getLogger("wexlot.realtime")


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class ChannelHandler:
    """Handles the frames of one connection (the endpoint owns the socket itself)."""

    def __init__(self, runtime: Runtime, conn: Connection) -> None:
        self.runtime = runtime
        self.conn = conn
        self.hub = runtime.realtime.hub
        self.presence: Presence = runtime.realtime.presence

    async def handle(self, frame: protocol.Frame, size: int = 0) -> None:
        """Act on one decoded frame; ``size`` is its wire size (for the payload limit)."""
        if frame.topic == "phoenix":
            if frame.event == "heartbeat":
                self.conn.send(protocol.reply(frame, "ok", {}))
            return
        if frame.event == "phx_join":
            await self.join(frame)
            return
        channel = self.conn.channels.get(frame.topic)
        if frame.event == "phx_leave":
            if channel is not None:
                self.leave(channel)
            self.conn.send(protocol.reply(frame, "ok", {}))
            return
        if channel is None:
            self.conn.send(protocol.reply(frame, "error", {"reason": "unmatched topic"}))
            return
        if frame.event == "access_token":
            await self.refresh_token(channel, frame.payload)
        elif frame.event in ("broadcast", "presence"):
            if not self.runtime.realtime.client_event_allowed(channel, frame, size):
                return
            if frame.event == "broadcast":
                self.runtime.realtime.broadcast_from(channel, frame)
            else:
                self.presence.handle(channel, frame)
        # Unknown events on a joined channel are ignored, as the real server does.

    # --- join / leave ----------------------------------------------------------------------------

    async def join(self, frame: protocol.Frame) -> None:
        payload = frame.payload if isinstance(frame.payload, dict) else {}
        config = payload.get("config") if isinstance(payload.get("config"), dict) else {}
        name = frame.topic.removeprefix("realtime:")
        if not frame.topic.startswith("realtime:"):
            self.conn.send(protocol.reply(frame, "error", {"reason": "unmatched topic"}))
            return
        if not name:
            self.conn.send(
                protocol.reply(frame, "error", {"reason": "TopicNameRequired: You must provide a topic name"})
            )
            return
        refusal = self.runtime.realtime.limits.on_join(self.conn, frame.topic)
        if refusal:
            log.info("join refused on connection %s (%s): %s", self.conn.id, frame.topic, refusal)
            self.conn.send(protocol.reply(frame, "error", {"reason": refusal}))
            return
        try:
            claims = self._claims(payload.get("access_token") or payload.get("user_token"))
        except TokenError as exc:
            reason = f"InvalidJWTToken: {exc.message}"
            log.info("join refused on connection %s (%s): %s", self.conn.id, frame.topic, reason)
            self.conn.send(protocol.reply(frame, "error", {"reason": reason}))
            return
        try:
            bindings = parse_bindings(config.get("postgres_changes"))
        except BindingError as exc:
            bindings, binding_error = [], str(exc)
        else:
            binding_error = None
        async with self.runtime.db.read() as db:
            principal = await principal_for(db, claims)
        private = _flag(config.get("private"))
        if private and not (principal.is_staff or principal.is_service):
            reason = f"Unauthorized: You do not have permissions to read from this Channel topic: {name}"
            log.info("join refused on connection %s (%s): %s", self.conn.id, frame.topic, reason)
            self.conn.send(protocol.reply(frame, "error", {"reason": reason}))
            return
        broadcast = config.get("broadcast") if isinstance(config.get("broadcast"), dict) else {}
        presence = config.get("presence") if isinstance(config.get("presence"), dict) else {}
        old = self.conn.channels.get(frame.topic)
        if old is not None:  # a duplicate join replaces the old one silently (see reference §7.2)
            self.leave(old, quiet=True)
        channel = Channel(
            conn=self.conn,
            topic=frame.topic,
            join_ref=frame.join_ref or frame.ref,
            principal=principal,
            claims=claims,
            bindings=bindings,
            broadcast_self=_flag(broadcast.get("self")),
            broadcast_ack=_flag(broadcast.get("ack")),
            presence_key=str(presence.get("key") or ""),
            presence_enabled=_flag(presence.get("enabled")),
            private=private,
            expires_at=float(claims["exp"]) if isinstance(claims.get("exp"), int | float) else None,
        )
        self.conn.channels[frame.topic] = channel
        self.hub.add_channel(channel)
        echo = [{**b.echo, "id": b.id} for b in bindings]
        self.conn.send(protocol.reply(frame, "ok", {"postgres_changes": echo, "position": self.hub.position}))
        log.info(
            "joined %s on connection %s as %s (%d bindings)",
            frame.topic, self.conn.id, principal.staff_id or principal.role, len(bindings),
        )  # fmt: skip
        if channel.presence_enabled:
            channel.push("presence_state", self.presence.state(channel.topic))
        if binding_error:
            channel.push("system", {"extension": "postgres_changes", "status": "error", "message": binding_error,
                                    "channel": name})  # fmt: skip
        elif bindings:
            channel.push("system", {"extension": "postgres_changes", "status": "ok",
                                    "message": "Subscribed to PostgreSQL", "channel": name})  # fmt: skip
        if self.conn.checkpoints:
            send_position(channel, self.hub.position)

    def leave(self, channel: Channel, quiet: bool = False) -> None:
        self.hub.remove_channel(channel)
        self.conn.channels.pop(channel.topic, None)
        if not quiet:
            log.info("left %s on connection %s", channel.topic, self.conn.id)

    def leave_all(self) -> None:
        for channel in list(self.conn.channels.values()):
            self.leave(channel, quiet=True)

    # --- tokens ----------------------------------------------------------------------------------

    def _claims(self, token: Any) -> dict[str, Any]:
        """The join's token, or the connection's API key when absent (the supabase-js first-join race)."""
        if not isinstance(token, str) or not token or token.startswith("sb_"):
            return dict(self.conn.apikey_claims)
        return self.runtime.tokens.decode(token)

    async def refresh_token(self, channel: Channel, payload: Any) -> None:
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token or token.startswith("sb_"):
            return
        try:
            claims = self.runtime.tokens.decode(token)
        except TokenError as exc:
            self.hub.close_channel(channel, _token_message(exc))
            return
        async with self.runtime.db.read() as db:
            principal = await principal_for(db, claims)
        if channel.private and not (principal.is_staff or principal.is_service):
            self.hub.close_channel(
                channel, f"You no longer have permission to read from this Channel topic: {channel.name}"
            )
            return
        channel.claims = claims
        channel.principal = principal
        channel.expires_at = float(claims["exp"]) if isinstance(claims.get("exp"), int | float) else None


def _token_message(exc: TokenError) -> str:
    return "Token has expired" if exc.reason == "expired" else f"Invalid token: {exc.message}"


def expiry_message(expires_at: float) -> str:
    return f"Token has expired {max(0, int(time.time() - expires_at))} seconds ago"
