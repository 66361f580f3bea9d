"""Realtime limits at the protocol level: each hit once, with the real server's message, nobody else harmed.

One live server per backend for the module, started with small limits through the ``WEXLOT_REALTIME_*``
settings: channels per connection, joins per second, client messages (broadcast/presence) per second,
payload size and concurrent connections. In every test a second, well-behaved connection keeps
receiving postgres changes while the offender is refused. Database changes are never limited: a burst
far above the messages-per-second limit arrives complete.

Every wait is bounded (support/phoenix.py); a missed expectation lists the frames that did arrive.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from support.crm import Login, make_login
from support.databases import module_database_fixtures
from support.live_server import LiveServer, keys
from support.phoenix import PhoenixClient, pg_binding
from wexlot.auth.tokens import Tokens

pytestmark = pytest.mark.timeout(120)

MAX_CONNECTIONS = 6
MAX_CHANNELS = 3
MAX_JOINS_PER_SECOND = 8
MAX_EVENTS_PER_SECOND = 10
MAX_PAYLOAD_BYTES = 4096
LIMITS = {
    "WEXLOT_REALTIME_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    "WEXLOT_REALTIME_MAX_CHANNELS": str(MAX_CHANNELS),
    "WEXLOT_REALTIME_MAX_JOINS_PER_SECOND": str(MAX_JOINS_PER_SECOND),
    "WEXLOT_REALTIME_MAX_EVENTS_PER_SECOND": str(MAX_EVENTS_PER_SECOND),
    "WEXLOT_REALTIME_MAX_PAYLOAD_BYTES": str(MAX_PAYLOAD_BYTES),
}
WINDOW = 1.1  # a little more than the rate limits' one-second window


# --- one server per backend for the module --------------------------------------------------------
# Module-scoped versions of the root conftest's function-scoped fixtures (the root pytest_generate_tests
# still parametrizes ``backend``); tests keep apart by unique topics and names.


backend, data_dir, database_url = module_database_fixtures("limits")


class Env:
    def __init__(self, server: LiveServer, url: str, data_dir: Path) -> None:
        self.server = server
        k = keys(data_dir, url)
        self.anon, self.service = k["anon_key"], k["service_role_key"]
        tokens = Tokens((data_dir / "jwt-secret").read_text().strip(), server.url, 3600)
        self.rep: Login = make_login(url, tokens, "rep")
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def client(self, vsn: str = "1.0.0") -> PhoenixClient:
        return PhoenixClient(self.server.url, self.anon, vsn)

    def service_headers(self) -> dict[str, str]:
        return {"apikey": self.service, "Authorization": f"Bearer {self.service}"}

    def insert_contacts(self, rows: list[dict[str, Any]]) -> None:
        r = self.http.post(
            "/rest/v1/contacts", json=rows, headers={**self.service_headers(), "Prefer": "return=minimal"}
        )
        assert r.status_code == 201, r.text

    def connections(self) -> int:
        r = self.http.get("/realtime/v1/api/status", headers=self.service_headers())
        assert r.status_code == 200, r.text
        return int(r.json()["connections"])


@pytest.fixture(scope="module")
def env(data_dir: Path, database_url: str) -> Iterator[Env]:
    with LiveServer(data_dir, database_url, env=LIMITS, name="limits") as server:
        e = Env(server, database_url, data_dir)
        yield e
        e.http.close()


@pytest.fixture
async def watcher(env: Env) -> AsyncIterator[PhoenixClient]:
    """The well-behaved connection: a rep subscribed to contact inserts."""
    async with env.client() as ws:
        reply = await ws.join(
            "realtime:contacts", {"postgres_changes": [pg_binding("contacts", "INSERT")]}, env.rep.token
        )
        assert reply["status"] == "ok", reply
        yield ws


async def still_delivers(env: Env, *clients: PhoenixClient) -> None:
    """A contact inserted now reaches every given client subscribed to contacts."""
    name = f"Alive-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(env.insert_contacts, [{"first_name": name}])
    for ws in clients:
        await ws.changes("realtime:contacts", type="INSERT", first_name=name)


def reply_to(ref: str) -> Any:
    return lambda f: f.get("event") == "phx_reply" and f.get("ref") == ref


def join_payload(config: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"config": {"broadcast": {"ack": False, "self": False},
                                          "presence": {"key": "", "enabled": False},
                                          "postgres_changes": [], "private": False, **(config or {})}}  # fmt: skip
    if token:
        payload["access_token"] = token
    return payload


async def heartbeat_ok(ws: PhoenixClient) -> None:
    ref = await ws.send("phoenix", "heartbeat", {})
    assert (await ws.expect(reply_to(ref), what="heartbeat reply"))["payload"]["status"] == "ok"


def system_error(topic: str) -> Any:
    return lambda f: f.get("event") == "system" and f.get("topic") == topic and f["payload"].get("status") == "error"


def broadcasts(ws: PhoenixClient, topic: str, event: str) -> list[Any]:
    """Payloads of the ``event`` broadcasts ``ws`` received on ``topic``, in order."""
    return [
        f["payload"]["payload"]
        for f in ws.frames
        if f.get("event") == "broadcast" and f.get("topic") == topic and f["payload"].get("event") == event
    ]


def kind3(join_ref: str, ref: str, topic: str, event: str, payload: bytes) -> bytes:
    """A realtime-js 2.0.0 binary user broadcast push (kind 3, JSON encoded)."""
    fields = [join_ref.encode(), ref.encode(), topic.encode(), event.encode(), b""]
    return bytes([3, *(len(f) for f in fields), 1]) + b"".join(fields) + payload


# --- the limits -----------------------------------------------------------------------------------


async def test_channels_per_connection(env: Env, watcher: PhoenixClient) -> None:
    t = uuid.uuid4().hex[:8]
    async with env.client() as ws:
        first = f"realtime:contacts-{t}"
        reply = await ws.join(first, {"postgres_changes": [pg_binding("contacts", "INSERT")]}, env.rep.token)
        assert reply["status"] == "ok"
        for i in range(1, MAX_CHANNELS):
            assert (await ws.join(f"realtime:ch{i}-{t}"))["status"] == "ok"
        refused = await ws.join(f"realtime:one-too-many-{t}")
        assert refused == {"status": "error", "response": {"reason": "ChannelRateLimitReached: Too many channels"}}
        # Others are unharmed, and so are the offender's own channels and socket.
        name = f"Alive-{t}"
        await asyncio.to_thread(env.insert_contacts, [{"first_name": name}])
        await watcher.changes("realtime:contacts", type="INSERT", first_name=name)
        await ws.changes(first, type="INSERT", first_name=name)
        await heartbeat_ok(ws)
        # Re-joining a topic it already has is no new channel; leaving one frees a place.
        assert (await ws.join(f"realtime:ch1-{t}"))["status"] == "ok"
        ref = await ws.send(f"realtime:ch1-{t}", "phx_leave", {})
        await ws.expect(reply_to(ref), what="leave reply")
        assert (await ws.join(f"realtime:one-too-many-{t}"))["status"] == "ok"


async def test_joins_per_second(env: Env, watcher: PhoenixClient) -> None:
    t = uuid.uuid4().hex[:8]
    async with env.client() as ws:
        # Pipelined join/leave pairs (never more than one channel open), one join over the limit.
        refs = []
        for i in range(MAX_JOINS_PER_SECOND + 1):
            topic = f"realtime:j{i}-{t}"
            refs.append(await ws.send(topic, "phx_join", join_payload()))
            if i < MAX_JOINS_PER_SECOND:
                await ws.send(topic, "phx_leave", {})
        replies = [await ws.expect(reply_to(ref), what=f"join reply {ref}") for ref in refs]
        assert [r["payload"]["status"] for r in replies[:-1]] == ["ok"] * MAX_JOINS_PER_SECOND
        assert replies[-1]["payload"] == {
            "status": "error",
            "response": {"reason": "ClientJoinRateLimitReached: Too many joins per second"},
        }
        await still_delivers(env, watcher)
        await heartbeat_ok(ws)
        await asyncio.sleep(WINDOW)  # the window moves on: this connection may join again
        assert (await ws.join(f"realtime:after-{t}"))["status"] == "ok"


async def test_broadcasts_per_second_close_only_the_offending_channel(env: Env, watcher: PhoenixClient) -> None:
    t = uuid.uuid4().hex[:8]
    topic = f"realtime:chatty-{t}"
    async with env.client() as offender, env.client("2.0.0") as listener:
        assert (await listener.join(topic))["status"] == "ok"
        assert (await offender.join(topic))["status"] == "ok"
        for n in range(MAX_EVENTS_PER_SECOND + 1):
            await offender.send(topic, "broadcast", {"type": "broadcast", "event": "msg", "payload": {"n": n}},
                                offender.join_refs[topic])  # fmt: skip
        system = await offender.expect(system_error(topic), what="rate-limit system message")
        assert system["payload"] == {"extension": "system", "status": "error",
                                     "message": "Too many messages per second", "channel": f"chatty-{t}"}  # fmt: skip
        close = await offender.expect(lambda f: f.get("event") == "phx_close" and f.get("topic") == topic)
        assert system["ref"] is None and close["ref"] == offender.join_refs[topic]  # Phoenix: ref = join_ref
        last = {"n": MAX_EVENTS_PER_SECOND - 1}
        await listener.expect(lambda f: last in broadcasts(listener, topic, "msg"), what="the last allowed broadcast")
        await still_delivers(env, watcher)
        assert broadcasts(listener, topic, "msg") == [{"n": n} for n in range(MAX_EVENTS_PER_SECOND)]
        # The channel is gone, the socket is not.
        ref = await offender.send(topic, "broadcast", {"type": "broadcast", "event": "msg", "payload": {"n": -1}},
                                  offender.join_refs[topic])  # fmt: skip
        unmatched = {"status": "error", "response": {"reason": "unmatched topic"}}
        assert (await offender.expect(reply_to(ref)))["payload"] == unmatched
        await heartbeat_ok(offender)


async def test_presence_messages_count_too_and_the_closed_channel_leaves_presence(
    env: Env, watcher: PhoenixClient
) -> None:
    t = uuid.uuid4().hex[:8]
    topic, key = f"realtime:lobby-{t}", f"tracker-{t}"
    async with env.client() as offender, env.client() as listener:
        assert (await listener.join(topic, {"presence": {"key": f"listener-{t}", "enabled": True}}))["status"] == "ok"
        assert (await offender.join(topic, {"presence": {"key": key, "enabled": True}}))["status"] == "ok"
        refs = [await offender.send(topic, "presence", {"type": "presence", "event": "track", "payload": {"n": n}},
                                    offender.join_refs[topic]) for n in range(MAX_EVENTS_PER_SECOND + 1)]  # fmt: skip
        for ref in refs[:-1]:
            assert (await offender.expect(reply_to(ref)))["payload"]["status"] == "ok"
        system = await offender.expect(system_error(topic), what="rate-limit system message")
        assert system["payload"]["message"] == "Too many messages per second"
        await offender.expect(lambda f: f.get("event") == "phx_close" and f.get("topic") == topic)
        # The closed channel's presence is removed: the listener sees it leave.
        await listener.expect(lambda f: f.get("event") == "presence_diff" and key in f["payload"]["leaves"]
                              and f["payload"]["leaves"][key]["metas"][0]["n"] == MAX_EVENTS_PER_SECOND - 1,
                              what="presence leave of the closed channel")  # fmt: skip
        await still_delivers(env, watcher)
        async with env.client() as late:
            await late.join(topic, {"presence": {"key": f"late-{t}", "enabled": True}})
            state = await late.expect(lambda f: f.get("event") == "presence_state", what="presence_state")
            assert key not in state["payload"]


async def test_payload_size(env: Env, watcher: PhoenixClient) -> None:
    t = uuid.uuid4().hex[:8]
    topic = f"realtime:big-{t}"
    big = {"blob": "x" * (MAX_PAYLOAD_BYTES + 100)}
    async with env.client() as offender, env.client("2.0.0") as v2, env.client() as listener:
        assert (await listener.join(topic))["status"] == "ok"
        assert (await offender.join(topic, {"broadcast": {"ack": True, "self": False}}))["status"] == "ok"
        assert (await v2.join(topic, {"broadcast": {"ack": True, "self": False}}))["status"] == "ok"
        jr = offender.join_refs[topic]

        ref = await offender.send(topic, "broadcast", {"type": "broadcast", "event": "big", "payload": big}, jr)
        reply = await offender.expect(reply_to(ref), what="reply to the oversize broadcast")
        assert reply == {"topic": topic, "event": "phx_reply", "ref": ref,
                         "payload": {"status": "error", "response": {"error": "payload_size_exceeded"}}}  # fmt: skip
        # realtime-js 2.0.0 sends broadcasts as binary kind 3; the reply takes join_ref/ref from its header.
        await v2.send_raw(kind3(v2.join_refs[topic], "77", topic, "big", json.dumps(big).encode()))
        reply = await v2.expect(reply_to("77"), what="reply to the oversize kind-3 push")
        assert reply["join_ref"] == v2.join_refs[topic]
        assert reply["payload"] == {"status": "error", "response": {"error": "payload_size_exceeded"}}

        # The channel stays open and usable; the oversize messages never went out.
        ref = await offender.send(topic, "broadcast", {"type": "broadcast", "event": "small", "payload": {"n": 1}}, jr)
        assert (await offender.expect(reply_to(ref)))["payload"] == {"status": "ok", "response": {}}
        await listener.expect(lambda f: f.get("event") == "broadcast" and f["payload"]["event"] == "small")
        assert broadcasts(listener, topic, "big") == []
        await still_delivers(env, watcher)

        # HTTP broadcast (httpSend / http_send) has the same limit.
        headers = {"apikey": env.anon, "Authorization": f"Bearer {env.rep.token}"}
        r = env.http.post(f"/realtime/v1/api/broadcast/big-{t}/events/big", json=big, headers=headers)
        assert r.status_code == 413 and "payload_size_exceeded" in r.text, (r.status_code, r.text)
        await listener.nothing(lambda f: f.get("event") == "broadcast" and f["payload"]["event"] == "big", 0.3)


async def test_payload_size_counts_bytes_not_characters(env: Env, watcher: PhoenixClient) -> None:
    """A payload of two-byte characters, under the limit in characters but over it in bytes, is refused."""
    t = uuid.uuid4().hex[:8]
    topic = f"realtime:wide-{t}"
    wide = {"blob": "é" * (MAX_PAYLOAD_BYTES // 2 + 100)}  # ~2,150 characters, ~4,300 bytes
    text = json.dumps(wide, ensure_ascii=False)
    assert len(text) < MAX_PAYLOAD_BYTES < len(text.encode())
    async with env.client() as offender:
        assert (await offender.join(topic, {"broadcast": {"ack": True, "self": False}}))["status"] == "ok"
        frame = {"topic": topic, "event": "broadcast", "ref": "90", "join_ref": offender.join_refs[topic],
                 "payload": {"type": "broadcast", "event": "wide", "payload": wide}}  # fmt: skip
        await offender.send_raw(json.dumps(frame, ensure_ascii=False))  # UTF-8 on the wire, as clients send it
        reply = await offender.expect(reply_to("90"), what="reply to the wide broadcast")
        assert reply["payload"] == {"status": "error", "response": {"error": "payload_size_exceeded"}}
    await still_delivers(env, watcher)


async def test_oversize_presence_closes_the_channel(env: Env, watcher: PhoenixClient) -> None:
    t = uuid.uuid4().hex[:8]
    topic = f"realtime:heavy-{t}"
    async with env.client() as offender:
        assert (await offender.join(topic, {"presence": {"key": f"heavy-{t}", "enabled": True}}))["status"] == "ok"
        await offender.send(topic, "presence", {"type": "presence", "event": "track",
                                                "payload": {"blob": "x" * (MAX_PAYLOAD_BYTES + 100)}},
                            offender.join_refs[topic])  # fmt: skip
        system = await offender.expect(system_error(topic), what="track-size system message")
        assert system["payload"] == {"extension": "system", "status": "error",
                                     "message": "Track message size exceeded", "channel": f"heavy-{t}"}  # fmt: skip
        await offender.expect(lambda f: f.get("event") == "phx_close" and f.get("topic") == topic)
        await heartbeat_ok(offender)
    await still_delivers(env, watcher)


async def test_batch_http_broadcast_has_the_payload_limit_too(env: Env, watcher: PhoenixClient) -> None:
    """``POST /api/broadcast`` (supabase-js ``send()`` before subscribing) must not bypass the payload limit."""
    t = uuid.uuid4().hex[:8]
    async with env.client() as listener:
        assert (await listener.join(f"realtime:batch-{t}"))["status"] == "ok"
        headers = {"apikey": env.anon, "Authorization": f"Bearer {env.rep.token}"}
        message = {"topic": f"batch-{t}", "event": "big", "payload": {"blob": "x" * (MAX_PAYLOAD_BYTES + 100)}}
        r = env.http.post("/realtime/v1/api/broadcast", json={"messages": [message]}, headers=headers)
        assert r.status_code in (413, 422), (r.status_code, r.text)
        await listener.nothing(lambda f: f.get("event") == "broadcast", 0.3)
    await still_delivers(env, watcher)


async def test_connections(env: Env, watcher: PhoenixClient) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5  # earlier tests' sockets are closed; the server notices within moments
    while env.connections() != 1 and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert env.connections() == 1, "only the watcher should be connected"
    opened: list[PhoenixClient] = []
    try:
        for _ in range(MAX_CONNECTIONS - 1):
            ws = env.client()
            await ws.connect()
            opened.append(ws)
        refused = env.client()
        with pytest.raises(websockets.InvalidStatus) as caught:
            await refused.connect()
        response = caught.value.response
        assert response.status_code == 429
        assert json.loads(response.body) == {"error": "Too many connected users"}
        # Everyone connected carries on: the watcher gets changes, the others answer heartbeats.
        await still_delivers(env, watcher)
        for ws in opened:
            await heartbeat_ok(ws)
        # A freed place can be taken again.
        await opened.pop().close()
        while True:
            again = env.client()
            try:
                await again.connect()
                opened.append(again)
                break
            except websockets.InvalidStatus:
                assert loop.time() < deadline + 5, "no place freed after a connection closed"
                await asyncio.sleep(0.05)
        assert (await again.join("realtime:freed"))["status"] == "ok"
    finally:
        for ws in opened:
            await ws.close()


async def test_database_changes_are_never_rate_limited(env: Env, watcher: PhoenixClient) -> None:
    """A burst of changes far above the messages-per-second limit all arrive, in order."""
    t = uuid.uuid4().hex[:8]
    bulk = [{"first_name": f"Burst-{t}-{i:04d}"} for i in range(300)]
    singles = [{"first_name": f"Burst-{t}-s{i:03d}"} for i in range(30)]

    def write() -> None:
        env.insert_contacts(bulk)  # one transaction of 300
        for row in singles:  # and 30 transactions in quick succession
            env.insert_contacts([row])

    await asyncio.to_thread(write)
    expected = [r["first_name"] for r in bulk + singles]

    def got() -> list[str]:
        return [f["payload"]["data"]["record"]["first_name"] for f in watcher.frames
                if f.get("event") == "postgres_changes"
                and f["payload"]["data"]["record"]["first_name"].startswith(f"Burst-{t}-")]  # fmt: skip

    await watcher.expect(lambda f: len(got()) >= len(expected), timeout=20, what=f"{len(expected)} burst changes")
    assert got() == expected
