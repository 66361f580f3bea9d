"""The realtime engine end to end: a live server, real WebSockets, writes through REST and from outside.

Every test runs on SQLite and PostgreSQL; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg2
import pytest

from support.crm import Login, make_login
from support.live_server import LiveServer, keys
from support.phoenix import PhoenixClient, pg_binding
from wexlot.auth.tokens import Tokens

pytestmark = pytest.mark.timeout(120)


class Env:
    def __init__(self, server: LiveServer, url: str, data_dir: Path) -> None:
        self.server = server
        self.url = url
        k = keys(data_dir, url)
        self.anon, self.service = k["anon_key"], k["service_role_key"]
        secret = (data_dir / "jwt-secret").read_text().strip()
        self.tokens = Tokens(secret, server.url, 3600)
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def login(self, role: str, **kw: Any) -> Login:
        return make_login(self.url, self.tokens, role, **kw)

    def rest(self, method: str, path: str, token: str | None = None, body: Any = None, **headers: str) -> Any:
        token = token or self.service
        apikey = self.service if token == self.service else self.anon
        r = self.http.request(method, f"/rest/v1/{path}", json=body,
                              headers={"apikey": apikey, "Authorization": f"Bearer {token}",
                                       "Prefer": "return=representation", **headers})  # fmt: skip
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    def client(self, vsn: str = "1.0.0", rcvbuf: int | None = None, **params: str) -> PhoenixClient:
        return PhoenixClient(self.server.url, self.anon, vsn, rcvbuf, **params)

    def outside_write(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """A write that does not go through our server (psql / the sqlite3 shell)."""
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(sql.replace("%s", "?"), params)
            conn.commit()
            conn.close()
        else:
            conn = psycopg2.connect(self.url)
            with conn, conn.cursor() as cur:
                cur.execute(sql, params)
            conn.close()


@pytest.fixture
def env(database_url: str, data_dir: Path, request: pytest.FixtureRequest) -> Iterator[Env]:
    extra_env = getattr(request, "param", {})
    with LiveServer(data_dir, database_url, env=extra_env) as server:
        e = Env(server, database_url, data_dir)
        yield e
        e.http.close()


@pytest.fixture
def team(env: Env) -> dict[str, Login]:
    return {"a": env.login("rep"), "b": env.login("rep"), "admin": env.login("admin"), "manager": env.login("manager")}


@pytest.mark.parametrize("vsn", ["1.0.0", "2.0.0"])
async def test_insert_update_delete_reach_a_subscriber(env: Env, team: dict[str, Login], vsn: str) -> None:
    async with env.client(vsn) as ws:
        reply = await ws.join("realtime:contacts", {"postgres_changes": [pg_binding("contacts")]}, team["b"].token)
        assert reply["status"] == "ok"
        (echo,) = reply["response"]["postgres_changes"]
        assert echo["table"] == "contacts" and isinstance(echo["id"], int)
        await ws.expect(lambda f: f.get("event") == "system" and f["payload"]["status"] == "ok", what="system ok")
        (row,) = env.rest(
            "POST", "contacts", team["a"].token, {"first_name": "Jane", "last_name": "Smith", "tags": ["vip"]}
        )
        msg = await ws.changes("realtime:contacts", type="INSERT", first_name="Jane")
        data = msg["data"]
        assert msg["ids"] == [echo["id"]]
        assert data["record"]["tags"] == ["vip"] and data["record"]["version"] == 1 and "old_record" not in data
        assert data["commit_timestamp"].endswith("Z") and len(data["commit_timestamp"]) == 24
        assert {"name": "tags", "type": "_text"} in data["columns"] and data["errors"] is None
        assert isinstance(data["position"], int)
        env.rest("PATCH", f"contacts?id=eq.{row['id']}", team["a"].token, {"last_name": "Doe"})
        msg = await ws.changes("realtime:contacts", type="UPDATE", last_name="Doe")
        assert msg["data"]["old_record"]["last_name"] == "Smith" and msg["data"]["record"]["version"] == 2
        assert msg["data"]["record"]["updated_by"] == team["a"].staff_id
        env.rest("DELETE", f"contacts?id=eq.{row['id']}", team["a"].token)
        msg = await ws.changes("realtime:contacts", type="DELETE")
        assert msg["data"]["old_record"]["id"] == row["id"] and "record" not in msg["data"]


async def test_writes_from_outside_the_server_are_delivered(env: Env, team: dict[str, Login]) -> None:
    async with env.client() as ws:
        await ws.join("realtime:contacts", {"postgres_changes": [pg_binding("contacts", "INSERT")]}, team["b"].token)
        env.outside_write("INSERT INTO contacts (first_name, last_name) VALUES (%s, %s)", ("Outside", "Writer"))
        msg = await ws.changes("realtime:contacts", first_name="Outside")
        assert msg["data"]["record"]["updated_by"] is None and msg["data"]["record"]["version"] == 1
        env.outside_write("UPDATE contacts SET last_name = %s WHERE first_name = %s", ("Changed", "Outside"))
        await ws.nothing(lambda f: f.get("event") == "postgres_changes" and f["payload"]["data"]["type"] == "UPDATE")


async def test_filters_and_move_in_move_out(env: Env, team: dict[str, Login]) -> None:
    async with env.client("2.0.0") as ws:
        await ws.join("realtime:won", {"postgres_changes": [pg_binding("deals", "*", "stage=eq.won")]}, team["b"].token)
        (deal,) = env.rest("POST", "deals", team["a"].token, {"title": "Filtered", "amount": 5})
        await ws.nothing(lambda f: f.get("event") == "postgres_changes", 0.4)
        env.rest("PATCH", f"deals?id=eq.{deal['id']}", team["a"].token, {"stage": "won"})
        msg = await ws.changes("realtime:won", type="INSERT", title="Filtered")
        assert msg["data"]["record"]["closed_at"] is not None
        env.rest("PATCH", f"deals?id=eq.{deal['id']}", team["a"].token, {"stage": "lost"})
        msg = await ws.changes("realtime:won", type="DELETE")
        assert msg["data"]["old_record"] == {"id": deal["id"]}


async def test_private_rows_never_reach_other_reps(env: Env, team: dict[str, Login]) -> None:
    a, b = team["a"], team["b"]
    async with env.client() as wa, env.client() as wb, env.client() as anon:
        for ws, login in ((wa, a), (wb, b)):
            await ws.join("realtime:deals", {"postgres_changes": [pg_binding("deals")]}, login.token)
        await anon.join("realtime:deals", {"postgres_changes": [pg_binding("deals")]})
        env.rest("POST", "deals", a.token, {"title": "Secret", "amount": 1, "visibility": "private"})
        (team_deal,) = env.rest("POST", "deals", a.token, {"title": "Shared", "amount": 2})
        await wa.changes("realtime:deals", title="Secret")
        await wb.changes("realtime:deals", title="Shared")
        assert not any(f.get("event") == "postgres_changes" and f["payload"]["data"]["record"]["title"] == "Secret"
                       for f in wb.frames)  # fmt: skip
        # Made private: B is told the row is gone (key only); made team again: it comes back.
        env.rest("PATCH", f"deals?id=eq.{team_deal['id']}", a.token, {"visibility": "private"})
        msg = await wb.changes("realtime:deals", type="DELETE")
        assert msg["data"]["old_record"] == {"id": team_deal["id"]}
        env.rest("PATCH", f"deals?id=eq.{team_deal['id']}", a.token, {"visibility": "team"})
        await wb.changes("realtime:deals", type="INSERT", title="Shared")
        await anon.nothing(lambda f: f.get("event") == "postgres_changes", 0.3)


async def test_children_follow_their_parent_visibility(env: Env, team: dict[str, Login]) -> None:
    a, b = team["a"], team["b"]
    async with env.client() as wb:
        await wb.join("realtime:activities", {"postgres_changes": [pg_binding("activities")]}, b.token)
        (deal,) = env.rest("POST", "deals", a.token, {"title": "Parent", "amount": 1})
        (act,) = env.rest("POST", "activities", a.token, {"subject": "Child task", "deal_id": deal["id"]})
        await wb.changes("realtime:activities", type="INSERT", subject="Child task")
        env.rest("PATCH", f"deals?id=eq.{deal['id']}", a.token, {"visibility": "private"})
        msg = await wb.changes("realtime:activities", type="DELETE")
        assert msg["data"]["old_record"] == {"id": act["id"]}
        env.rest("PATCH", f"activities?id=eq.{act['id']}", a.token, {"subject": "Hidden edit"})
        await wb.nothing(lambda f: f.get("event") == "postgres_changes" and f["payload"]["data"]["type"] == "UPDATE")
        env.rest("PATCH", f"deals?id=eq.{deal['id']}", a.token, {"visibility": "team"})
        msg = await wb.changes("realtime:activities", type="INSERT")
        assert msg["data"]["record"]["subject"] == "Hidden edit"


async def test_deactivation_stops_delivery_at_once(env: Env, team: dict[str, Login]) -> None:
    b = team["b"]
    async with env.client() as wb:
        await wb.join("realtime:contacts", {"postgres_changes": [pg_binding("contacts")]}, b.token)
        env.rest("PATCH", f"staff?id=eq.{b.staff_id}", team["admin"].token, {"is_active": False})
        system = await wb.expect(lambda f: f.get("event") == "system" and f["payload"]["status"] == "error")
        assert "no longer have permission" in system["payload"]["message"]
        await wb.expect(lambda f: f.get("event") == "phx_close")
        env.rest("POST", "contacts", team["a"].token, {"first_name": "After"})
        await wb.nothing(lambda f: f.get("event") == "postgres_changes", 0.4)


async def test_token_refresh_and_expiry(env: Env, team: dict[str, Login]) -> None:
    async with env.client() as ws:
        # No token in the join (the supabase-js first-join race): the API key's role (anon) applies …
        await ws.join("realtime:contacts", {"postgres_changes": [pg_binding("contacts")]})
        env.rest("POST", "contacts", team["a"].token, {"first_name": "Before"})
        await ws.nothing(lambda f: f.get("event") == "postgres_changes", 0.4)
        # … until the client sends its access token in-band.
        await ws.send(
            "realtime:contacts", "access_token", {"access_token": team["b"].token}, ws.join_refs["realtime:contacts"]
        )
        await asyncio.sleep(0.2)
        env.rest("POST", "contacts", team["a"].token, {"first_name": "AfterToken"})
        await ws.changes("realtime:contacts", first_name="AfterToken")
    now = int(time.time())
    short, _ = env.tokens.access_token({"id": team["b"].user_id, "email": team["b"].email}, str(uuid.uuid4()),
                                       now=now - 3600 + 2)  # fmt: skip
    async with env.client() as ws:
        reply = await ws.join("realtime:contacts", {"postgres_changes": [pg_binding("contacts")]}, short)
        assert reply["status"] == "ok"
        system = await ws.expect(lambda f: f.get("event") == "system" and f["payload"]["status"] == "error", 8)
        assert system["payload"]["message"].startswith("Token has expired")
        await ws.expect(lambda f: f.get("event") == "phx_close")
    expired = jwt.encode({"sub": team["b"].user_id, "role": "authenticated", "exp": now - 100}, "x" * 40)
    async with env.client() as ws:
        reply = await ws.join("realtime:contacts", {"postgres_changes": []}, expired)
        assert reply["status"] == "error" and reply["response"]["reason"].startswith("InvalidJWTToken")


async def test_catch_up_after_a_disconnect(env: Env, team: dict[str, Login]) -> None:
    a, b = team["a"], team["b"]
    async with env.client() as ws:
        reply = await ws.join("realtime:deals", {"postgres_changes": [pg_binding("deals")]}, b.token)
        position = reply["response"]["position"]
    env.rest("POST", "deals", a.token, {"title": "Missed 1", "amount": 1})
    env.rest("POST", "deals", a.token, {"title": "Private miss", "amount": 1, "visibility": "private"})
    env.rest("POST", "deals", a.token, {"title": "Missed 2", "amount": 2})
    headers = {"apikey": env.anon, "Authorization": f"Bearer {b.token}"}

    async def caught_up() -> dict[str, Any]:
        r = env.http.get(f"/realtime/v1/api/changes?since={position}&tables=deals", headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    body = await caught_up()
    for _ in range(50):  # PostgreSQL stores history asynchronously, within milliseconds
        if len(body["changes"]) >= 2:
            break
        await asyncio.sleep(0.1)
        body = await caught_up()
    titles = [c["record"]["title"] for c in body["changes"]]
    assert titles == ["Missed 1", "Missed 2"] and body["complete"] is True
    assert body["position"] > position and all(c["position"] > position for c in body["changes"])
    r = env.http.get("/realtime/v1/api/changes?since=-5&tables=deals", headers=headers)
    assert r.status_code == 410 and r.json()["code"] == "position_expired"
    r = env.http.get("/realtime/v1/api/changes?since=0&tables=nope", headers=headers)
    assert r.status_code == 404


async def test_checkpoints_and_publication_toggle(env: Env, team: dict[str, Login]) -> None:
    admin = team["admin"]
    headers = {"apikey": env.anon, "Authorization": f"Bearer {admin.token}"}
    async with env.client("2.0.0", checkpoints="1") as ws:
        await ws.join("realtime:contacts", {"postgres_changes": [pg_binding("contacts")]}, admin.token)
        first = await ws.expect(lambda f: f.get("event") == "broadcast" and f["payload"]["event"] == "position")
        others = ["staff", "companies", "deals", "activities", "interactions", "platforms"]
        r = env.http.put("/realtime/v1/api/publication", headers=headers, json={"tables": others})
        assert r.status_code == 200 and {"name": "contacts", "published": False} in r.json()["tables"]
        # Screens on the table's channel are told to read the publication again (a hint, no content).
        hint = await ws.expect(lambda f: f.get("event") == "broadcast" and f["payload"]["event"] == "publication")
        assert hint["topic"] == "realtime:contacts" and hint["payload"]["payload"] == {}
        env.rest("POST", "contacts", admin.token, {"first_name": "Unpublished"})
        await ws.nothing(lambda f: f.get("event") == "postgres_changes", 0.5)
        r = env.http.put("/realtime/v1/api/publication", headers=headers, json={"tables": ["contacts", "staff"]})
        assert r.status_code == 200 and {"name": "deals", "published": False} in r.json()["tables"]
        # Re-publishing is hinted too (expect() takes each frame once: this is a second hint).
        await ws.expect(lambda f: f.get("event") == "broadcast" and f["payload"]["event"] == "publication")
        env.rest("POST", "contacts", admin.token, {"first_name": "Published"})
        msg = await ws.changes("realtime:contacts", first_name="Published")
        # Delivery follows commit order, so an "Unpublished" event, had one been sent, would be here by now.
        assert not [f for f in ws.frames if "Unpublished" in json.dumps(f, default=str)]
        checkpoint = await ws.expect(lambda f: f.get("event") == "broadcast" and f["payload"]["event"] == "position")
        assert checkpoint["payload"]["payload"]["position"] >= msg["data"]["position"]
        assert checkpoint["payload"]["payload"]["position"] > first["payload"]["payload"]["position"]
    rep = {"apikey": env.anon, "Authorization": f"Bearer {team['a'].token}"}
    r = env.http.put("/realtime/v1/api/publication", headers=rep, json={"tables": []})
    assert r.status_code == 403
    # Any staff member may read it (their screens show a table that is not live); the anon key may not.
    r = env.http.get("/realtime/v1/api/publication", headers=rep)
    assert r.status_code == 200 and {"name": "contacts", "published": True} in r.json()["tables"]
    r = env.http.get("/realtime/v1/api/publication", headers={"apikey": env.anon})
    assert r.status_code == 401


async def test_bad_frames_and_join_errors_leave_the_socket_usable(env: Env, team: dict[str, Login]) -> None:
    async with env.client("2.0.0") as ws:
        await ws.send_raw("this is not json")
        await ws.send_raw(json.dumps({"not": "an array"}))
        await ws.send_raw(bytes([9, 9, 9]))
        reply = await ws.join("realtime:", {})
        assert reply["status"] == "error" and reply["response"]["reason"].startswith("TopicNameRequired")
        ref = await ws.send("realtime:never-joined", "broadcast", {"type": "broadcast", "event": "x", "payload": {}})
        msg = await ws.expect(lambda f: f.get("ref") == ref)
        assert msg["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}
        ref = await ws.send("phoenix", "heartbeat", {})
        assert (await ws.expect(lambda f: f.get("ref") == ref))["payload"]["status"] == "ok"
        reply = await ws.join(
            "realtime:x", {"postgres_changes": [pg_binding("deals", "*", "nope=eq.1")]}, team["b"].token
        )
        assert reply["status"] == "ok"
        system = await ws.expect(lambda f: f.get("event") == "system")
        assert system["payload"]["status"] == "error" and "filter" in system["payload"]["message"]


async def test_a_big_transaction_arrives_complete_and_in_order(env: Env, team: dict[str, Login]) -> None:
    async with env.client("2.0.0") as ws:
        await ws.join("realtime:contacts", {"postgres_changes": [pg_binding("contacts", "INSERT")]}, team["b"].token)
        rows = [{"first_name": f"Bulk{i:05d}"} for i in range(10_000)]
        r = env.http.post("/rest/v1/contacts", json=rows, headers={"apikey": env.service,
                          "Authorization": f"Bearer {env.service}"})  # fmt: skip
        assert r.status_code == 201
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loop.time() < deadline:
            got = [f for f in ws.frames if f.get("event") == "postgres_changes"]
            if len(got) >= 10_000:
                break
            await asyncio.sleep(0.2)
        names = [
            f["payload"]["data"]["record"]["first_name"] for f in ws.frames if f.get("event") == "postgres_changes"
        ]
        assert names == [row["first_name"] for row in rows]
        positions = [f["payload"]["data"]["position"] for f in ws.frames if f.get("event") == "postgres_changes"]
        assert positions == sorted(positions) and len(set(positions)) == 10_000


@pytest.mark.parametrize("env", [{"WEXLOT_REALTIME_OUTBOX_BYTES": "524288", "WEXLOT_REALTIME_STALL_SECONDS": "1"}],
                         indirect=True)  # fmt: skip
async def test_a_client_that_stops_reading_is_cut_off_alone(env: Env, team: dict[str, Login]) -> None:
    stuck = env.client(rcvbuf=4096)
    await stuck.connect()
    await stuck.join("realtime:contacts", {"postgres_changes": [pg_binding("contacts")]}, team["b"].token)
    stuck._reader.cancel()
    stuck.ws.transport.pause_reading()  # stop reading: the TCP window fills, the server's outbox grows
    async with env.client() as healthy:
        await healthy.join("realtime:contacts", {"postgres_changes": [pg_binding("contacts")]}, team["b"].token)
        # ~8 MB in small transactions, incompressible (permessage-deflate would shrink repeated text):
        # far more than the stuck client's socket buffers hold.
        rows = [{"first_name": f"Flood{i}", "notes": secrets.token_hex(2000)} for i in range(2000)]
        for start in range(0, 2000, 20):  # in a thread: the healthy client keeps reading meanwhile
            await asyncio.to_thread(env.rest, "POST", "contacts", env.service, rows[start : start + 20],
                                    Prefer="return=minimal")  # fmt: skip
        await healthy.changes("realtime:contacts", first_name="Flood1999", timeout=60)
        assert len([f for f in healthy.frames if f.get("event") == "postgres_changes"]) == 2000
    for _ in range(50):
        if "stopped reading" in env.server.logs() or "cut: outbox" in env.server.logs():
            break
        await asyncio.sleep(0.1)
    assert "stopped reading" in env.server.logs() or "cut: outbox" in env.server.logs()
    await stuck.close()


async def test_oversized_rows_are_reported_like_the_real_server(env: Env, team: dict[str, Login]) -> None:
    async with env.client() as ws:
        await ws.join("realtime:contacts", {"postgres_changes": [pg_binding("contacts", "INSERT")]}, team["b"].token)
        env.rest("POST", "contacts", team["a"].token, {"first_name": "Huge", "notes": secrets.token_hex(600_000)},
                 Prefer="return=minimal")  # fmt: skip
        msg = await ws.changes("realtime:contacts", first_name="Huge", timeout=15)
        data = msg["data"]
        assert data["errors"] == ["Error 413: Payload Too Large"]
        assert "notes" not in data["record"] and data["record"]["first_name"] == "Huge" and data["record"]["id"]


async def test_signing_out_stops_that_sessions_channels(env: Env, team: dict[str, Login]) -> None:
    b = team["b"]
    async with env.client() as wb:
        await wb.join("realtime:contacts", {"postgres_changes": [pg_binding("contacts")]}, b.token)
        r = env.http.post(
            "/auth/v1/logout?scope=global", headers={"apikey": env.anon, "Authorization": f"Bearer {b.token}"}
        )
        assert r.status_code == 204
        system = await wb.expect(lambda f: f.get("event") == "system" and f["payload"]["status"] == "error")
        assert "revoked" in system["payload"]["message"]
        await wb.expect(lambda f: f.get("event") == "phx_close")
