"""Per-connection limits with the real server's error strings; each affects only the offender.

Database changes are never rate-limited or dropped — only what clients send (joins, broadcasts,
presence) is.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from wexlot.realtime.session import Connection


@dataclass
class RateWindow:
    """Events in the last ``window`` seconds (a sliding log, bounded by the limit itself)."""

    limit: int
    window: float = 1.0
    stamps: deque[float] = field(default_factory=deque)

    def hit(self, now: float | None = None) -> bool:
        """Record one event; False when it goes over the limit."""
        now = time.monotonic() if now is None else now
        while self.stamps and now - self.stamps[0] > self.window:
            self.stamps.popleft()
        if len(self.stamps) >= self.limit:
            return False
        self.stamps.append(now)
        return True


@dataclass
class Limits:
    max_connections: int = 20_000
    max_channels_per_connection: int = 100
    max_joins_per_second: int = 100
    max_events_per_second: int = 100
    max_payload_bytes: int = 3_000 * 1024
    _joins: dict[int, RateWindow] = field(default_factory=dict)
    _events: dict[int, RateWindow] = field(default_factory=dict)

    def on_join(self, conn: Connection, topic: str) -> str | None:
        window = self._joins.setdefault(conn.id, RateWindow(self.max_joins_per_second))
        if not window.hit():
            return "ClientJoinRateLimitReached: Too many joins per second"
        if topic not in conn.channels and len(conn.channels) >= self.max_channels_per_connection:
            return "ChannelRateLimitReached: Too many channels"
        return None

    def on_client_event(self, conn: Connection) -> bool:
        window = self._events.setdefault(conn.id, RateWindow(self.max_events_per_second))
        return window.hit()

    def forget(self, conn: Connection) -> None:
        self._joins.pop(conn.id, None)
        self._events.pop(conn.id, None)
