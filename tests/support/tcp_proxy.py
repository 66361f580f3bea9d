"""A small TCP relay for simulating network trouble between a client and a live server.

``TcpProxy`` listens on 127.0.0.1:<random port> and relays every accepted connection to a target.
A test can ``cut()`` all relayed connections at once (both sides are aborted, so the client sees a
dropped connection, not a clean WebSocket close), ``pause()`` accepting (new connections are
refused: the listening socket is closed) and ``resume()`` on the same port. It runs its own event
loop in a daemon thread, so sync and async tests can use it alike, and it is bounded: at most
``max_connections`` relays at a time, every control call has a timeout, and it stops by itself after
``lifetime`` seconds if nobody stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

CHUNK = 64 * 1024
CONTROL_TIMEOUT = 10.0


class TcpProxyError(RuntimeError):
    pass


class _Relay:
    """One client connection and its upstream connection, pumped in both directions."""

    def __init__(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.client_reader = client_reader
        self.client_writer = client_writer
        self.upstream_writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    def close_transports(self) -> None:
        for writer in (self.client_writer, self.upstream_writer):
            if writer is not None:
                writer.transport.abort()

    def abort(self) -> None:
        self.close_transports()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()


class TcpProxy:
    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        lifetime: float = 300.0,
        max_connections: int = 64,
        connect_timeout: float = 5.0,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.lifetime = lifetime
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.port = 0
        self.accepted = 0  # connections relayed so far
        self.refused = 0  # connections closed at once because max_connections were open
        self.cuts = 0  # connections ended by cut()
        self._relays: set[_Relay] = set()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # --- public API (thread-safe, callable from any thread but the proxy's own) --------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        return len(self._relays)

    @property
    def paused(self) -> bool:
        return self._server is None

    def start(self) -> TcpProxy:
        if self._thread is not None:
            return self
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._listen())
                loop.call_later(self.lifetime, self._shutdown)
            except BaseException as exc:  # reported to start()
                errors.append(exc)
                ready.set()
                loop.close()
                self._stopped.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._close_all())
                loop.close()
                self._stopped.set()

        self._thread = threading.Thread(target=run, name=f"tcp-proxy->{self.target_port}", daemon=True)
        self._thread.start()
        if not ready.wait(CONTROL_TIMEOUT):
            raise TcpProxyError("proxy did not start listening in time")
        if errors:
            raise TcpProxyError(f"proxy failed to start: {errors[0]!r}")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or self._stopped.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the loop may have stopped by itself meanwhile
            loop.call_soon_threadsafe(self._shutdown)
        thread.join(CONTROL_TIMEOUT)

    def cut(self) -> int:
        """Abort every relayed connection (both directions) at once; returns how many were cut."""
        return self._call(self._cut())

    def pause(self) -> None:
        """Stop accepting: the listening socket is closed, so new connections are refused."""
        self._call(self._pause())

    def resume(self) -> None:
        """Accept again, on the same port."""
        self._call(self._listen())

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- inside the proxy's loop ---------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None or self._stopped.is_set():
            coro.close()
            raise TcpProxyError("proxy is not running")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(CONTROL_TIMEOUT)

    async def _listen(self) -> None:
        if self._server is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._handle, sock=sock, backlog=self.max_connections)

    async def _pause(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # closes the listening socket only; relayed connections carry on

    async def _cut(self) -> int:
        relays = list(self._relays)
        for relay in relays:
            relay.abort()
        self.cuts += len(relays)
        await asyncio.sleep(0)
        return len(relays)

    def _shutdown(self) -> None:
        loop = self._loop
        if loop is None:
            return
        if self._server is not None:
            self._server.close()
            self._server = None
        for relay in list(self._relays):
            relay.abort()
        loop.stop()

    async def _close_all(self) -> None:
        tasks = [r.task for r in self._relays if r.task is not None]
        for relay in list(self._relays):
            relay.abort()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._relays) >= self.max_connections:
            self.refused += 1
            writer.transport.abort()
            return
        relay = _Relay(reader, writer)
        relay.task = asyncio.current_task()  # type: ignore[assignment]
        self._relays.add(relay)
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port), self.connect_timeout
            )
            relay.upstream_writer = up_writer
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except (OSError, TimeoutError, asyncio.CancelledError):
            pass
        finally:
            self._relays.discard(relay)
            relay.close_transports()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()  # half-close, as a real TCP path would
        except (OSError, RuntimeError):
            writer.transport.abort()
