"""A minimal Phoenix/Supabase-Realtime test client where every wait has a timeout.

Failures explain themselves: a missed expectation lists the frames that did arrive.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import websockets

Frame = dict[str, Any]


class PhoenixClient:
    def __init__(
        self, base_url: str, apikey: str, vsn: str = "1.0.0", rcvbuf: int | None = None, **params: str
    ) -> None:
        self.rcvbuf = rcvbuf  # a small receive buffer lets a test simulate a client that stops reading
        query = urlencode({"apikey": apikey, "vsn": vsn, **params})
        self.url = base_url.replace("http://", "ws://").rstrip("/") + f"/realtime/v1/websocket?{query}"
        self.vsn = vsn
        self._refs = itertools.count(1)
        self.ws: Any = None
        self.frames: list[Frame] = []  # everything received, in order
        self._unseen: list[Frame] = []
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.join_refs: dict[str, str] = {}
        self.closed = asyncio.Event()

    async def __aenter__(self) -> PhoenixClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        sock = None
        if self.rcvbuf:
            host, _, port = self.url.split("//", 1)[1].split("/", 1)[0].partition(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.connect((host, int(port)))
        self.ws = await asyncio.wait_for(websockets.connect(self.url, max_size=None, sock=sock, max_queue=4), 10)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    frame = {"binary": raw}
                else:
                    obj = json.loads(raw)
                    if isinstance(obj, list):
                        frame = dict(zip(("join_ref", "ref", "topic", "event", "payload"), obj, strict=True))
                    else:
                        frame = obj
                self.frames.append(frame)
                self._unseen.append(frame)
                self._arrived.set()
        finally:
            self.closed.set()
            self._arrived.set()

    async def send(self, topic: str, event: str, payload: Any, join_ref: str | None = None) -> str:
        ref = str(next(self._refs))
        if self.vsn == "2.0.0":
            text = json.dumps([join_ref, ref, topic, event, payload])
        else:
            text = json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": join_ref})
        await self.ws.send(text)
        return ref

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def expect(self, predicate: Callable[[Frame], bool], timeout: float = 5.0, what: str = "frame") -> Frame:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, frame in enumerate(self._unseen):
                if predicate(frame):
                    del self._unseen[i]
                    return frame
            remaining = deadline - loop.time()
            if remaining <= 0 or (self.closed.is_set() and not self._unseen):
                recent = json.dumps(self.frames[-8:], default=str)[:2000]
                raise AssertionError(
                    f"no {what} within {timeout}s (closed={self.closed.is_set()}); last frames: {recent}"
                )
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass

    async def nothing(self, predicate: Callable[[Frame], bool], wait: float = 0.5) -> None:
        """Assert no matching frame arrives within ``wait`` seconds."""
        try:
            frame = await self.expect(predicate, wait)
        except AssertionError:
            return
        raise AssertionError(f"unexpected frame: {frame}")

    async def join(self, topic: str, config: dict[str, Any] | None = None, access_token: str | None = None,
                   timeout: float = 5.0) -> Frame:  # fmt: skip
        payload: dict[str, Any] = {"config": {"broadcast": {"ack": False, "self": False},
                                              "presence": {"key": "", "enabled": False},
                                              "postgres_changes": [], "private": False, **(config or {})}}  # fmt: skip
        if access_token:
            payload["access_token"] = access_token
        ref = await self.send(topic, "phx_join", payload)
        ref_join = ref
        if self.vsn == "2.0.0":
            pass
        self.join_refs[topic] = ref_join
        reply = await self.expect(
            lambda f: f.get("event") == "phx_reply" and f.get("ref") == ref, timeout, "join reply"
        )
        return reply["payload"]

    async def changes(self, topic: str, timeout: float = 5.0, **match: Any) -> Frame:
        def pred(f: Frame) -> bool:
            if f.get("event") != "postgres_changes" or f.get("topic") != topic:
                return False
            data = f["payload"]["data"]
            return all((data.get("record") or data.get("old_record") or {}).get(k) == v if k not in ("type", "table")
                       else data.get(k) == v for k, v in match.items())  # fmt: skip

        frame = await self.expect(pred, timeout, f"postgres_changes {match} on {topic}")
        return frame["payload"]


def pg_binding(table: str, event: str = "*", flt: str | None = None) -> dict[str, Any]:
    binding = {"event": event, "schema": "public", "table": table}
    if flt:
        binding["filter"] = flt
    return binding
