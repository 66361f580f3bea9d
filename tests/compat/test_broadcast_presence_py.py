"""Broadcast and presence with the unmodified PyPI ``supabase`` async client (realtime-py 2.34.1, vsn 1.0.0).

The reduced counterpart of tests/compat/node/broadcast*.test.mjs and presence*.test.mjs, on both
backends with one live server per backend (tests/compat/conftest.py): ``send_broadcast`` with
self/ack (and the ack as the client reports it), the payload limit, ``http_send`` (202), private
channels refused to the anon key and accepted for staff; presence join/leave/sync callbacks,
``presence_state()``, ``untrack()``, and cleanup when a client closes its socket without untracking.
Every wait is bounded; a failed wait shows what did arrive.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest
from realtime.exceptions import RealtimeHTTPError
from realtime.types import ChannelEvents, RealtimeAcknowledgementStatus, RealtimeSubscribeStates
from supabase import AsyncClient, acreate_client

if TYPE_CHECKING:
    from conftest import CompatServer  # tests/compat/conftest.py; annotations only
    from realtime import AsyncRealtimeChannel

pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(120),
    # supabase 2.34.1 itself passes these deprecated arguments to its postgrest client on every sign-in.
    pytest.mark.filterwarnings(r"ignore:The '(timeout|verify)' parameter is deprecated:DeprecationWarning"),
]

WAIT = 5.0  # longest wait for anything that should arrive
QUIET = 0.4  # how long "nothing arrives" is watched, after a later message proved delivery
UNAUTHORIZED = "Unauthorized: You do not have permissions to read from this Channel topic: {}"


def tag() -> str:
    return uuid.uuid4().hex[:8]


async def until(
    check: Callable[[], Any], what: str, state: Callable[[], Any] = lambda: None, wait: float = WAIT
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``wait`` seconds showing ``state()``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"no {what} within {wait}s; state: {state()!r}")
        await asyncio.sleep(0.02)


class Clients:
    """The clients a test opened; all are closed at the end, whatever happened."""

    def __init__(self, server: CompatServer) -> None:
        self.server = server
        self.opened: list[AsyncClient] = []

    async def anon(self) -> AsyncClient:
        client = await acreate_client(self.server.url, self.server.anon_key)
        self.opened.append(client)
        return client

    async def signed_in(self, who: str) -> AsyncClient:
        client = await self.anon()
        login = self.server.users[who]
        response = await client.auth.sign_in_with_password({"email": login.email, "password": login.password})
        assert response.session is not None
        token = response.session.access_token
        # supabase-py hands the new token to realtime in a background task (SIGNED_IN event).
        await until(lambda: client.realtime.access_token == token, f"realtime token of {who}")
        return client

    async def close(self) -> None:
        for client in self.opened:
            try:
                await asyncio.wait_for(client.remove_all_channels(), 5)
            except Exception:
                pass
            try:
                await asyncio.wait_for(client.realtime.close(), 5)
            except Exception:
                pass


@pytest.fixture
async def clients(compat_server: CompatServer) -> AsyncIterator[Clients]:
    c = Clients(compat_server)
    try:
        yield c
    finally:
        await c.close()


async def subscribe(channel: AsyncRealtimeChannel) -> tuple[RealtimeSubscribeStates, Exception | None]:
    """``subscribe()`` waits for the join reply; returns the first status the callback reported."""
    statuses: list[tuple[RealtimeSubscribeStates, Exception | None]] = []
    await asyncio.wait_for(channel.subscribe(lambda status, err: statuses.append((status, err))), 15)
    await until(lambda: statuses, f"a subscribe status for {channel.topic}")
    return statuses[0]


async def joined(channel: AsyncRealtimeChannel) -> AsyncRealtimeChannel:
    status, err = await subscribe(channel)
    assert status == RealtimeSubscribeStates.SUBSCRIBED, f"{channel.topic}: {status} {err}"
    return channel


class Inbox:
    """Broadcasts received on one channel (``on_broadcast('*')``)."""

    def __init__(self, client: AsyncClient, name: str, config: dict[str, Any] | None = None) -> None:
        self.items: list[dict[str, Any]] = []
        self.channel = client.channel(name, {"config": config or {}})
        self.channel.on_broadcast("*", lambda message: self.items.append(dict(message)))

    async def wait(self, event: str) -> dict[str, Any]:
        found = await until(
            lambda: [m for m in self.items if m["event"] == event], f"broadcast {event}", lambda: self.items
        )
        return found[0]

    async def none(self, event: str) -> None:
        await asyncio.sleep(QUIET)
        assert [m for m in self.items if m["event"] == event] == [], f"unexpected {event}: {self.items}"


async def push_broadcast(channel: AsyncRealtimeChannel, event: str, payload: dict[str, Any]) -> tuple[str, Any]:
    """``channel.push`` (what ``send_broadcast`` does) keeping the push, to see the server's ack as the client does."""
    push = await channel.push(ChannelEvents.broadcast, {"type": "broadcast", "event": event, "payload": payload})
    outcome: asyncio.Future[tuple[str, Any]] = asyncio.get_running_loop().create_future()

    def settle(status: str) -> Callable[..., None]:
        return lambda *response: outcome.done() or outcome.set_result((status, response[0] if response else None))

    push.receive(RealtimeAcknowledgementStatus.Ok, settle("ok"))
    push.receive(RealtimeAcknowledgementStatus.Error, settle("error"))
    push.receive(RealtimeAcknowledgementStatus.Timeout, settle("timeout"))
    return await asyncio.wait_for(outcome, 15)


# --- broadcast ------------------------------------------------------------------------------------


async def test_send_broadcast_with_self_and_ack(clients: Clients) -> None:
    name = f"room1-{tag()}"
    a_client, b_client = await clients.signed_in("rep_a"), await clients.signed_in("rep_b")
    a = Inbox(a_client, name, {"broadcast": {"self": True, "ack": True}})
    b = Inbox(b_client, name)
    await joined(a.channel)
    await joined(b.channel)

    payload = {"text": "hello", "n": 1, "nested": {"ok": True, "list": [1, "two"]}}
    await a.channel.send_broadcast("ping", payload)
    for inbox in (a, b):  # self: true — the sender gets its own message too
        message = await inbox.wait("ping")
        assert message["payload"] == payload

    assert (await push_broadcast(a.channel, "acked", {"n": 2}))[0] == "ok"
    await b.wait("acked")


async def test_self_false_and_an_oversize_payload(clients: Clients) -> None:
    name = f"room1-{tag()}"
    a_client, b_client = await clients.signed_in("rep_a"), await clients.signed_in("rep_b")
    a = Inbox(a_client, name, {"broadcast": {"self": False, "ack": True}})
    b = Inbox(b_client, name)
    await joined(a.channel)
    await joined(b.channel)
    await a.channel.send_broadcast("quiet", {"n": 1})
    await b.wait("quiet")
    await b.channel.send_broadcast("reply", {"n": 2})
    await a.wait("reply")  # A's socket delivers, so the absence of its own message means something
    await a.none("quiet")
    await b.none("reply")

    big = {"blob": "x" * (3_100 * 1024)}  # over the server's default 3,000 KB
    status, response = await push_broadcast(a.channel, "big", big)
    assert (status, response) == ("error", {"error": "payload_size_exceeded"})
    assert (await push_broadcast(a.channel, "small", {"n": 3}))[0] == "ok"
    await b.wait("small")
    assert [m for m in b.items if m["event"] == "big"] == []


async def test_http_send_is_delivered_with_202_and_refused_to_anon(clients: Clients) -> None:
    name = f"room1-{tag()}"
    a_client, b_client, anon = await clients.signed_in("rep_a"), await clients.signed_in("rep_b"), await clients.anon()
    b = Inbox(b_client, name)
    await joined(b.channel)
    sender = a_client.channel(name)  # never subscribed: http_send needs no socket
    assert await sender.http_send("http-ping", {"via": "http_send", "n": 7}) is None  # None means 202
    assert (await b.wait("http-ping"))["payload"] == {"via": "http_send", "n": 7}

    with pytest.raises(RealtimeHTTPError) as refused:
        await anon.channel(name).http_send("anon-ping", {"n": 0})
    assert refused.value.status == 401 and refused.value.message == "Unauthorized"
    await b.none("anon-ping")


async def test_private_channel_refused_for_anon_accepted_for_staff(clients: Clients) -> None:
    name = f"private-{tag()}"
    anon = await clients.anon()
    refused = anon.channel(name, {"config": {"private": True}})
    status, err = await subscribe(refused)
    assert status == RealtimeSubscribeStates.CHANNEL_ERROR
    assert UNAUTHORIZED.format(name) in str(err), err
    await anon.remove_channel(refused)  # stops the client's rejoin timer

    a_client, b_client = await clients.signed_in("rep_a"), await clients.signed_in("rep_b")
    a = Inbox(a_client, name, {"private": True, "broadcast": {"ack": True}})
    b = Inbox(b_client, name, {"private": True})
    outsider = Inbox(anon, name, {"broadcast": {"self": True}})  # the public channel of the same name
    for inbox in (a, b, outsider):
        await joined(inbox.channel)
    assert (await push_broadcast(a.channel, "secret", {"n": 1}))[0] == "ok"
    await b.wait("secret")
    await a.channel.http_send("secret-http", {"n": 2})  # ?private=true
    await b.wait("secret-http")
    await outsider.channel.send_broadcast("public", {})
    await outsider.wait("public")
    assert [m for m in outsider.items if m["event"].startswith("secret")] == []
    await b.none("public")


# --- presence -------------------------------------------------------------------------------------


class Watcher:
    """A channel with presence callbacks registered before subscribing (so the join enables presence)."""

    def __init__(self, client: AsyncClient, name: str, key: str) -> None:
        self.events: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.syncs = 0
        self.channel = client.channel(name, {"config": {"presence": {"key": key, "enabled": True}}})
        self.channel.on_presence_sync(self._sync)
        self.channel.on_presence_join(lambda key, _current, new: self.events.append(("join", key, list(new))))
        self.channel.on_presence_leave(lambda key, _current, left: self.events.append(("leave", key, list(left))))

    def _sync(self) -> None:
        self.syncs += 1

    async def saw(self, kind: str, key: str) -> list[dict[str, Any]]:
        found = await until(
            lambda: [p for k, got_key, p in self.events if k == kind and got_key == key],
            f"presence {kind} of {key}",
            lambda: (self.events, self.channel.presence_state()),
        )
        return found[-1]


async def test_presence_track_join_sync_state_and_untrack(clients: Clients) -> None:
    name = f"lobby-{tag()}"
    a_client, b_client = await clients.signed_in("rep_a"), await clients.signed_in("rep_b")
    a, b = Watcher(a_client, name, f"a-{name}"), Watcher(b_client, name, f"b-{name}")
    await joined(a.channel)
    await a.channel.track({"online_at": "2026-01-01T00:00:00Z", "who": "a"})
    await a.saw("join", f"a-{name}")  # the tracker gets its own join
    await joined(b.channel)
    await b.saw("join", f"a-{name}")  # from the presence_state sent after B's join
    await b.channel.track({"online_at": "2026-01-01T00:00:01Z", "who": "b"})
    (new,) = await a.saw("join", f"b-{name}")
    assert new["who"] == "b" and new["online_at"] == "2026-01-01T00:00:01Z" and isinstance(new["presence_ref"], str)
    assert a.syncs > 0 and b.syncs > 0
    for watcher in (a, b):
        state = await until(
            lambda w=watcher: len(w.channel.presence_state()) == 2 and w.channel.presence_state(),
            "presence_state with both keys",
            lambda w=watcher: w.channel.presence_state(),
        )
        assert sorted(state) == [f"a-{name}", f"b-{name}"]
        assert [p["who"] for p in state[f"a-{name}"]] == ["a"] and [p["who"] for p in state[f"b-{name}"]] == ["b"]

    await b.channel.untrack()
    (left,) = await a.saw("leave", f"b-{name}")
    assert left["who"] == "b"
    await until(lambda: list(a.channel.presence_state()) == [f"a-{name}"], "only A left", a.channel.presence_state)


async def test_presence_is_removed_when_a_client_closes_without_untrack(clients: Clients) -> None:
    name = f"lobby-{tag()}"
    a_client, gone_client = await clients.signed_in("rep_a"), await clients.signed_in("rep_b")
    a, gone = Watcher(a_client, name, f"a-{name}"), Watcher(gone_client, name, f"gone-{name}")
    await joined(a.channel)
    await joined(gone.channel)
    await gone.channel.track({"who": "gone"})
    await a.saw("join", f"gone-{name}")
    await gone_client.realtime.close()  # the socket goes away: no untrack, no phx_leave
    (left,) = await a.saw("leave", f"gone-{name}")
    assert left["who"] == "gone"
    assert f"gone-{name}" not in a.channel.presence_state()
