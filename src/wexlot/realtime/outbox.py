"""A connection's bounded outbox: encoded frames waiting for the socket writer.

Fan-out never awaits a slow client: it appends here and moves on. The outbox is bounded in bytes.
Over ``max_bytes`` it is *stalled*; if it stays stalled for ``stall_seconds`` (the client stopped
reading) or ever exceeds ``hard_factor x max_bytes``, the connection is cut with a reason — the
client reconnects and catches up from its last position instead of the server growing memory.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

Frame = str | bytes


class OutboxOverflow(Exception):
    pass


class Outbox:
    def __init__(self, max_bytes: int, stall_seconds: float, hard_factor: int = 4) -> None:
        self.max_bytes = max_bytes
        self.hard_bytes = max_bytes * hard_factor
        self.stall_seconds = stall_seconds
        self._frames: deque[Frame] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self.stalled_since: float | None = None
        self.closed = False

    @property
    def size(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, frame: Frame) -> None:
        """Queue a frame; raises :class:`OutboxOverflow` when the client must be cut off."""
        if self.closed:
            return
        self._frames.append(frame)
        self._bytes += len(frame)
        self._ready.set()
        if self._bytes > self.max_bytes:
            now = time.monotonic()
            if self.stalled_since is None:
                self.stalled_since = now
            if self._bytes > self.hard_bytes:
                raise OutboxOverflow(f"outbox exceeded {self.hard_bytes} bytes")
            if now - self.stalled_since > self.stall_seconds:
                raise OutboxOverflow(f"client read nothing for {self.stall_seconds:.0f} s with a full outbox")

    async def get(self) -> Frame | None:
        """The next frame, or None once the outbox is closed."""
        while not self._frames:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        frame = self._frames.popleft()
        self._bytes -= len(frame)
        if self._bytes <= self.max_bytes:
            self.stalled_since = None
        return frame

    def check_stall(self) -> bool:
        """True when a stalled outbox has now been stalled too long (polled by the hub's timer)."""
        return self.stalled_since is not None and time.monotonic() - self.stalled_since > self.stall_seconds

    def close(self) -> None:
        self.closed = True
        self._frames.clear()
        self._bytes = 0
        self._ready.set()
