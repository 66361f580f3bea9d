"""The README's nginx config (deploy/nginx.conf), run for real in front of a live server.

nginx (the Debian package; ``./scripts/test`` installs it when missing) runs in the foreground with
its pid, logs and temp files in a temp dir. The test renders the shipped config with free ports, a
self-signed certificate and the live server as upstream. Then it checks HTTPS, REST, sign-in and
WSS through nginx, and that the X-Forwarded-* headers reach the server, which trusts them because of
``WEXLOT_TRUSTED_PROXIES``. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets

from support.live_server import LiveServer, keys
from support.pg_cluster import free_port

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
DEMO_ADMIN = ("admin@wexlot.demo", "wexlot-demo")
CLIENT_ADDRESS = "127.0.0.2"  # another loopback address, so the server can tell the client from nginx
SPOOFED = "203.0.113.9"  # what a client might put in X-Forwarded-For itself
TIMEOUT = 10.0


@dataclass
class Stack:
    server: LiveServer
    https_url: str
    http_url: str
    anon_key: str
    service_key: str


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.fail("nginx is not installed; ./scripts/test installs it (apt-get install nginx)")
    return found


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, made with the openssl CLI (or `cryptography` when there is no CLI)."""
    cert, key = directory / "wexlot.crt", directory / "wexlot.key"
    if shutil.which("openssl"):
        subprocess.run(
            [
                "openssl", "req", "-x509", "-nodes", "-days", "2",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-keyout", str(key), "-out", str(cert),
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        return cert, key
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key


def render(text: str, *, https_port: int, http_port: int, upstream_port: int, cert: Path, key: Path) -> str:
    """deploy/nginx.conf with test ports and paths; each replaced line must occur exactly once."""
    replacements = {
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "server 127.0.0.1:54321;": f"server 127.0.0.1:{upstream_port};",
        "/etc/ssl/certs/wexlot.crt;": f"{cert};",
        "/etc/ssl/private/wexlot.key;": f"{key};",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"deploy/nginx.conf should contain {old!r} exactly once"
        text = text.replace(old, new)
    return text


def main_config(prefix: Path, site: Path) -> str:
    """The nginx.conf around the site file: foreground, and every path inside ``prefix``."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers then can read the 0700 temp dirs
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{
    worker_connections 512;
}}
http {{
    access_log {prefix / "access.log"};
{temp}
    include {site};
}}
"""


class NginxError(AssertionError):
    """nginx did not come up; the message carries its logs."""


class Nginx:
    """nginx in the foreground (``daemon off``), stopped by its PID."""

    def __init__(self, prefix: Path, https_port: int) -> None:
        self.prefix = prefix
        self.https_port = https_port
        self.conf = prefix / "nginx.conf"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = nginx_binary()
        check = subprocess.run(
            [binary, "-t", "-p", str(self.prefix), "-c", str(self.conf)], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, f"nginx -t rejected the config:\n{check.stderr}"
        with (self.prefix / "stdout.log").open("ab") as out, (self.prefix / "stderr.log").open("ab") as err:
            self.process = subprocess.Popen(
                [binary, "-p", str(self.prefix), "-c", str(self.conf)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )  # fmt: skip
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                raise NginxError(f"nginx exited with {code}\n{self.logs()}")
            # nginx writes its pid file once it has bound every listening socket.
            with contextlib.suppress(OSError, ValueError):
                if int((self.prefix / "nginx.pid").read_text()) == self.process.pid:
                    return
            time.sleep(0.05)
        self.stop()
        raise NginxError(f"nginx did not listen on {self.https_port} within {TIMEOUT}s\n{self.logs()}")

    def stop(self) -> None:
        """SIGQUIT (graceful), then SIGTERM, then SIGKILL, each with a bounded wait."""
        process, self.process = self.process, None
        if process is None:
            return
        for sig in (signal.SIGQUIT, signal.SIGTERM, signal.SIGKILL):
            if process.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)

    def logs(self) -> str:
        parts = []
        for name in ("stderr.log", "error.log"):
            path = self.prefix / name
            parts.append(f"--- nginx {name} ---\n{path.read_text(errors='replace') if path.exists() else ''}")
        return "\n".join(parts)


def start_nginx(prefix: Path, upstream_port: int, https_port: int, attempts: int = 3) -> tuple[Nginx, int, int]:
    """nginx with deploy/nginx.conf in front of ``upstream_port``; returns it and its HTTPS and HTTP ports."""
    cert, key = self_signed_cert(prefix)
    site = prefix / "wexlot.conf"
    for attempt in range(1, attempts + 1):
        http_port = free_port()
        text = render(
            CONFIG.read_text(),
            https_port=https_port,
            http_port=http_port,
            upstream_port=upstream_port,
            cert=cert,
            key=key,
        )
        site.write_text(text)
        nginx = Nginx(prefix, https_port)
        nginx.conf.write_text(main_config(prefix, site))
        try:
            nginx.start()
            return nginx, https_port, http_port
        except NginxError:
            # A port may have been taken between free_port() and nginx's bind().
            if attempt == attempts or "address already in use" not in nginx.logs().lower():
                raise
            https_port = free_port()
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("proxy-server")
    database_url = f"sqlite:///{data_dir / 'wexlot.db'}"
    https_port = free_port()
    # As the README runs it behind nginx (the public URL is only stale if nginx had to retry a port).
    env = {"WEXLOT_TRUSTED_PROXIES": "127.0.0.1", "WEXLOT_PUBLIC_URL": f"https://127.0.0.1:{https_port}"}
    with LiveServer(data_dir, database_url, extra_args=["--demo"], env=env, startup_timeout=60) as server:
        nginx, https_port, http_port = start_nginx(tmp_path_factory.mktemp("nginx"), server.port, https_port)
        try:
            api = keys(data_dir, database_url)
            yield Stack(
                server,
                f"https://127.0.0.1:{https_port}",
                f"http://127.0.0.1:{http_port}",
                api["anon_key"],
                api["service_role_key"],
            )
        finally:
            nginx.stop()


def client(stack: Stack, local_address: str = "127.0.0.1") -> httpx.Client:
    transport = httpx.HTTPTransport(verify=False, local_address=local_address)
    return httpx.Client(base_url=stack.https_url, transport=transport, timeout=TIMEOUT)


def sign_in(http: httpx.Client, stack: Stack, headers: dict[str, str] | None = None) -> str:
    email, password = DEMO_ADMIN
    response = http.post(
        "/auth/v1/token",
        params={"grant_type": "password"},
        headers={"apikey": stack.anon_key, **(headers or {})},
        json={"email": email, "password": password},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def session_ip(stack: Stack, access_token: str) -> str | None:
    """The client address the server recorded for this token's session."""
    from wexlot.auth.tables import auth_tables

    session_id = jwt.decode(access_token, options={"verify_signature": False})["session_id"]
    table = auth_tables("sqlite").sessions.name
    conn = sqlite3.connect(stack.server.data_dir / "wexlot.db")
    try:
        row = conn.execute(f"SELECT ip FROM {table} WHERE id = ?", (session_id,)).fetchone()
    finally:
        conn.close()
    assert row is not None, f"no session {session_id}"
    ip: str | None = row[0]
    return ip


def test_health_over_https(stack: Stack) -> None:
    with client(stack) as http:
        response = http.get("/auth/v1/health")
    assert response.status_code == 200
    assert response.json()["name"] == "GoTrue"


def test_plain_http_redirects_to_https(stack: Stack) -> None:
    response = httpx.get(stack.http_url + "/rest/v1/contacts", timeout=TIMEOUT)
    assert response.status_code == 301
    assert response.headers["location"] == "https://127.0.0.1/rest/v1/contacts"


def test_rest_read_with_the_anon_key(stack: Stack) -> None:
    with client(stack) as http:
        anon = http.get("/rest/v1/contacts", params={"select": "id"}, headers={"apikey": stack.anon_key})
        token = sign_in(http, stack)
        staff = http.get(
            "/rest/v1/contacts",
            params={"select": "id,first_name", "limit": "5"},
            headers={"apikey": stack.anon_key, "Authorization": f"Bearer {token}"},
        )
    assert anon.status_code == 200, anon.text
    assert anon.json() == []  # anon reads nothing in the CRM tables
    assert staff.status_code == 200, staff.text
    assert len(staff.json()) == 5


def test_server_sees_the_client_address_and_https(stack: Stack) -> None:
    # Through nginx (a trusted proxy): the client's own address, never what the client claimed.
    with client(stack, CLIENT_ADDRESS) as http:
        token = sign_in(http, stack, headers={"X-Forwarded-For": SPOOFED})
        service = {"apikey": stack.service_key, "Authorization": f"Bearer {stack.service_key}"}
        users = http.get("/auth/v1/admin/users", params={"per_page": "1"}, headers=service)
    assert session_ip(stack, token) == CLIENT_ADDRESS
    # X-Forwarded-Proto and Host reach the server: the links it builds are the public https ones.
    assert users.status_code == 200, users.text
    assert f"<{stack.https_url}/auth/v1/admin/users?" in users.headers["link"]

    # Straight to the server from an address that is not a trusted proxy: forwarded headers are ignored.
    direct = httpx.Client(
        base_url=stack.server.url, transport=httpx.HTTPTransport(local_address=CLIENT_ADDRESS), timeout=TIMEOUT
    )
    with direct:
        token = sign_in(direct, stack, headers={"X-Forwarded-For": SPOOFED})
    assert session_ip(stack, token) == CLIENT_ADDRESS


async def _frame(ws: Any, predicate: Any, what: str) -> dict[str, Any]:
    seen: list[Any] = []

    async def wait() -> dict[str, Any]:
        async for raw in ws:
            frame = json.loads(raw)
            seen.append(frame)
            if predicate(frame):
                return dict(frame)
        raise AssertionError(f"connection closed before {what}; got {seen}")

    try:
        return await asyncio.wait_for(wait(), TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"no {what} within {TIMEOUT}s; got {seen}") from None


@pytest.mark.parametrize("path", ["/realtime/v1/websocket", "/socket/websocket"])
async def test_websocket_join_and_change_over_wss(stack: Stack, path: str) -> None:
    with client(stack) as http:
        token = sign_in(http, stack)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = stack.https_url.replace("https://", "wss://") + f"{path}?apikey={stack.anon_key}&vsn=1.0.0"
    topic = "realtime:contacts"
    join = {
        "topic": topic,
        "event": "phx_join",
        "ref": "1",
        "join_ref": "1",
        "payload": {
            "config": {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "contacts"}]},
            "access_token": token,
        },
    }
    async with websockets.connect(url, ssl=context, open_timeout=TIMEOUT) as ws:
        await ws.send(json.dumps(join))
        reply = await _frame(ws, lambda f: f.get("event") == "phx_reply" and f.get("ref") == "1", "join reply")
        assert reply["payload"]["status"] == "ok", reply

        # A write through the proxy comes back to the subscriber through the proxy.
        async with httpx.AsyncClient(base_url=stack.https_url, verify=False, timeout=TIMEOUT) as http:
            created = await http.post(
                "/rest/v1/contacts",
                headers={
                    "apikey": stack.anon_key,
                    "Authorization": f"Bearer {token}",
                    "Prefer": "return=representation",
                },
                json={"first_name": "Proxy", "last_name": path},
            )
        assert created.status_code == 201, created.text
        new_id = created.json()[0]["id"]
        change = await _frame(
            ws,
            lambda f: (
                f.get("event") == "postgres_changes"
                and f["payload"].get("data", {}).get("record", {}).get("id") == new_id
            ),
            f"INSERT of contact {new_id}",
        )
        assert change["payload"]["data"]["type"] == "INSERT"
