"""Per-connection and per-channel state: who is listening, for what, with which rights.

A :class:`Connection` owns one WebSocket, its serializer version and its bounded outbox. A
:class:`Channel` is one joined topic on it, with its principal (re-resolved on ``access_token`` and
on changes to the subscriber's own staff row) and its ``postgres_changes`` bindings.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from wexlot.crm.access import Principal
from wexlot.realtime import protocol
from wexlot.realtime.bindings import Binding
from wexlot.realtime.outbox import Outbox, OutboxOverflow

_ids = itertools.count(1)


@dataclass(eq=False)
class Channel:
    conn: Connection
    topic: str
    join_ref: str | None
    principal: Principal
    claims: dict[str, Any]
    bindings: list[Binding]
    broadcast_self: bool = False
    broadcast_ack: bool = False
    presence_key: str = ""
    presence_enabled: bool = False
    private: bool = False
    expires_at: float | None = None
    joined_at: float = field(default_factory=time.time)
    events_sent: int = 0

    @property
    def name(self) -> str:
        return self.topic.removeprefix("realtime:")

    @property
    def tables(self) -> set[str]:
        return {b.table for b in self.bindings}

    def push(self, event: str, payload: Any, *, ref: str | None = None) -> None:
        """A server push on this channel (``system``, ``presence_state``…), carrying the join_ref."""
        frame = protocol.Frame(self.topic, event, payload, ref, self.join_ref)
        self.conn.send(frame)


@dataclass(eq=False)
class Connection:
    vsn: str
    outbox: Outbox
    apikey_claims: dict[str, Any]
    remote: str = ""
    checkpoints: bool = False
    id: int = field(default_factory=lambda: next(_ids))
    channels: dict[str, Channel] = field(default_factory=dict)
    opened_at: float = field(default_factory=time.time)
    last_frame_at: float = field(default_factory=time.monotonic)
    close_reason: str | None = None
    frames_in: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, frame: protocol.Frame) -> None:
        self.send_raw(protocol.encode(frame, self.vsn))

    def send_raw(self, data: str | bytes) -> None:
        if self.close_reason is not None:
            return
        try:
            self.outbox.put(data)
        except OutboxOverflow as exc:
            self.close(f"outbox full: {exc}")

    def close(self, reason: str) -> None:
        """Mark for closing; the endpoint's writer notices, tells the client, and closes the socket."""
        if self.close_reason is None:
            self.close_reason = reason
            self.outbox.close()
            self.closed.set()
