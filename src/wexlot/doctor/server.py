"""Talking to a running WeXlot server as the service_role: its realtime status, and an end-to-end probe.

Used by ``wexlot realtime status`` and by the doctor's ``realtime-probe`` check. The service_role key
is derived from the secret exactly as ``wexlot keys`` does, but nothing is ever generated here: with
no secret there is no key (a fresh secret could not match the running server's anyway).

Every network wait is bounded. Failures are :class:`ServerError` with a one-line message;
``unreachable`` is True when nothing answered at the URL at all (connection refused, unknown host,
time-out), as opposed to a server that answered with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.exceptions import InvalidStatus, WebSocketException

from wexlot.auth.tokens import Tokens
from wexlot.config import ConfigError, Settings

HTTP_TIMEOUT = 5.0
PROBE_TIMEOUT = 10.0
PROBE_TOPIC = "realtime:wexlot-doctor"
PROBE_PREFIX = "wexlot-doctor-"
HEALTH_PATH = "/auth/v1/health"
STATUS_PATH = "/realtime/v1/api/status"


class ServerError(Exception):
    """One line saying what went wrong talking to the server."""

    def __init__(self, message: str, *, unreachable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        self.status = status


def service_key(settings: Settings) -> str:
    """The service_role API key for ``settings`` (as ``wexlot keys`` prints it); never creates a secret."""
    if not settings.jwt_secret and not settings.secret_path.exists():
        raise ServerError(
            f"no JWT secret (no {settings.secret_path}, WEXLOT_JWT_SECRET unset), so no service_role key to "
            "sign in with; use the --data-dir (or WEXLOT_JWT_SECRET) of the running server"
        )
    try:
        with_secret = settings.with_secret()
    except (ConfigError, OSError) as exc:
        raise ServerError(f"cannot derive the service_role key: {exc}") from None
    return Tokens(with_secret.jwt_secret, with_secret.base_url, with_secret.jwt_expiry).service_key


def describe(exc: BaseException) -> str:
    """A short reason for a failed connection attempt."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else OSError(str(exc.reason))
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return False
    if isinstance(exc, urllib.error.URLError):
        return True
    return isinstance(exc, OSError | TimeoutError)


def request(
    base_url: str,
    method: str,
    path: str,
    key: str | None,
    body: Any = None,
    *,
    prefer: str | None = None,
    timeout: float = HTTP_TIMEOUT,
) -> Any:
    """One HTTP call with the service_role key; the decoded JSON answer (None when empty)."""
    headers = {"Accept": "application/json"}
    if key:
        headers |= {"apikey": key, "Authorization": f"Bearer {key}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if prefer:
        headers["Prefer"] = prefer
    req = urllib.request.Request(base_url.rstrip("/") + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise ServerError(f"{method} {path} answered HTTP {exc.code}: {_error_message(exc)}", status=exc.code) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ServerError(
            f"no server answering at {base_url} ({describe(exc)})", unreachable=_unreachable(exc)
        ) from None
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        raise ServerError(f"{method} {path} did not answer JSON (is {base_url} a WeXlot server?)") from None


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        body = {}
    if isinstance(body, dict):
        for field in ("message", "msg", "error_description", "error"):
            if isinstance(body.get(field), str) and body[field]:
                return str(body[field])
    return exc.reason or "error"


def answers(base_url: str, timeout: float = 2.0) -> bool:
    """True when a server answers the (open) health endpoint at ``base_url``."""
    try:
        request(base_url, "GET", HEALTH_PATH, None, timeout=timeout)
    except ServerError as exc:
        return not exc.unreachable
    return True


def realtime_status(base_url: str, key: str, timeout: float = HTTP_TIMEOUT) -> dict[str, Any]:
    """``GET /realtime/v1/api/status`` as the service_role."""
    status = request(base_url, "GET", STATUS_PATH, key, timeout=timeout)
    if not isinstance(status, dict):
        raise ServerError(f"GET {STATUS_PATH} did not answer a JSON object (is {base_url} a WeXlot server?)")
    return status


# --- the end-to-end probe ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    name: str  # the probe platform's name
    latency_ms: float  # from just before the INSERT request to the event's arrival
    write_ms: float  # the INSERT request's own round trip
    position: int | None  # the change's position in the history


def websocket_url(base_url: str, key: str) -> str:
    parts = urllib.parse.urlsplit(base_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = urllib.parse.urlencode({"apikey": key, "vsn": "1.0.0"})
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path + "/realtime/v1/websocket", query, ""))


def run_probe(base_url: str, key: str, timeout: float = PROBE_TIMEOUT) -> ProbeResult:
    """Subscribe, insert a uniquely named platform through REST, receive its INSERT, delete it.

    Each step waits at most ``timeout`` seconds. The platform is deleted whatever happens once the
    insert was sent; a failed clean-up is reported (naming the row) rather than hidden.
    """
    return asyncio.run(_probe(base_url.rstrip("/"), key, timeout))


async def _probe(base_url: str, key: str, timeout: float) -> ProbeResult:
    name = PROBE_PREFIX + secrets.token_hex(6)
    ws = await _connect(base_url, key, timeout)
    written = False
    try:
        await _join(ws, name, key, timeout)
        written = True  # from here on the platform may exist: always clean up
        result = await _write_and_receive(ws, base_url, key, name, timeout)
    except ServerError as exc:
        problem = await _cleanup(ws, base_url, key, name, timeout, written)
        if problem:
            raise ServerError(f"{exc}; {problem}", unreachable=exc.unreachable, status=exc.status) from None
        raise
    except BaseException:
        await _cleanup(ws, base_url, key, name, timeout, written)
        raise
    problem = await _cleanup(ws, base_url, key, name, timeout, written)
    if problem:
        raise ServerError(problem)
    return result


async def _connect(base_url: str, key: str, timeout: float) -> Any:
    try:
        return await websockets.connect(websocket_url(base_url, key), open_timeout=timeout, max_size=None)
    except InvalidStatus as exc:
        code = exc.response.status_code
        try:
            reason = str(json.loads(exc.response.body or b"{}").get("error") or "")
        except (ValueError, AttributeError):
            reason = ""
        hint = " (the server signs with another JWT secret than this data dir's)" if code == 401 else ""
        message = f"the server at {base_url} refused the realtime WebSocket: HTTP {code}"
        raise ServerError(f"{message} {reason}".strip() + hint, status=code) from None
    except (OSError, TimeoutError) as exc:
        raise ServerError(f"server not reachable at {base_url} ({describe(exc)})", unreachable=True) from None
    except WebSocketException as exc:
        raise ServerError(f"the realtime WebSocket at {base_url} failed: {describe(exc)}") from None


async def _join(ws: Any, name: str, key: str, timeout: float) -> None:
    """Join the probe topic with an INSERT binding on platforms for exactly ``name``; wait until subscribed."""
    binding = {"event": "INSERT", "schema": "public", "table": "platforms", "filter": f"name=eq.{name}"}
    config = {"broadcast": {"ack": False, "self": False}, "presence": {"key": "", "enabled": False},
              "postgres_changes": [binding], "private": False}  # fmt: skip
    frame = {"topic": PROBE_TOPIC, "event": "phx_join", "ref": "1", "join_ref": "1",
             "payload": {"config": config, "access_token": key}}  # fmt: skip
    await ws.send(json.dumps(frame))
    try:
        reply = await _expect(ws, lambda f: f.get("event") == "phx_reply" and f.get("ref") == "1", timeout)
        status = reply.get("payload") or {}
        if status.get("status") != "ok":
            reason = (status.get("response") or {}).get("reason", status)
            raise ServerError(f"joining {PROBE_TOPIC} was refused: {reason}")
        system = await _expect(ws, lambda f: f.get("event") == "system" and f.get("topic") == PROBE_TOPIC, timeout)
    except TimeoutError:
        raise ServerError(f"no answer to joining {PROBE_TOPIC} within {timeout:.0f} s") from None
    if (system.get("payload") or {}).get("status") != "ok":
        raise ServerError(f"the postgres_changes subscription failed: {system['payload'].get('message')}")


async def _write_and_receive(ws: Any, base_url: str, key: str, name: str, timeout: float) -> ProbeResult:
    """INSERT the platform through REST while reading the socket; time from the request to the event."""

    def is_ours(frame: dict[str, Any]) -> bool:
        data = (frame.get("payload") or {}).get("data") or {}
        return frame.get("event") == "postgres_changes" and (data.get("record") or {}).get("name") == name

    body = {"name": name, "kind": "wexlot doctor probe", "is_active": False}
    written_at: list[float] = []
    started = time.perf_counter()
    write = asyncio.create_task(
        asyncio.to_thread(request, base_url, "POST", "/rest/v1/platforms", key, body, prefer="return=minimal",
                          timeout=timeout)
    )  # fmt: skip
    write.add_done_callback(lambda _task: written_at.append(time.perf_counter()))
    receive = asyncio.create_task(_expect(ws, is_ours, timeout))
    await asyncio.wait({write, receive}, return_when=asyncio.FIRST_EXCEPTION)
    if write.done() and write.exception() is not None:
        receive.cancel()
        with contextlib.suppress(BaseException):
            await receive
        raise ServerError(f"the probe INSERT into platforms failed: {write.exception()}")
    try:
        frame = await receive
    except TimeoutError:
        raise ServerError(f"no INSERT event for the probe platform within {timeout:.0f} s of writing it") from None
    received = time.perf_counter()
    await write
    position = (frame["payload"]["data"]).get("position")
    return ProbeResult(
        name=name,
        latency_ms=(received - started) * 1000,
        write_ms=((written_at[0] if written_at else received) - started) * 1000,
        position=position if isinstance(position, int) else None,
    )


async def _cleanup(ws: Any, base_url: str, key: str, name: str, timeout: float, written: bool) -> str | None:
    """Close the socket and delete the probe platform (if it may exist); a problem as one phrase, else None."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(), 2)
    if not written:
        return None
    query = urllib.parse.urlencode({"name": f"eq.{name}"})
    try:
        await asyncio.to_thread(request, base_url, "DELETE", f"/rest/v1/platforms?{query}", key, timeout=timeout)
    except ServerError as exc:
        return f"could not delete the probe platform {name!r} ({exc})"
    return None


async def _expect(ws: Any, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
    """The next frame matching ``predicate`` (others are passed over); TimeoutError after ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                raw = await ws.recv()
            except websockets.ConnectionClosed as exc:
                closed = exc.rcvd or "no close frame"
                raise ServerError(f"the server closed the realtime WebSocket ({closed})") from None
            if isinstance(raw, bytes):
                continue
            try:
                frame = json.loads(raw)
            except ValueError:
                continue
            if isinstance(frame, dict) and predicate(frame):
                return frame
