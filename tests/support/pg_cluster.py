"""A throwaway PostgreSQL cluster for tests.

Lifecycle: `start()` runs initdb into a fresh temp dir, picks a free port on 127.0.0.1 and starts
the postmaster with pg_ctl; `stop()` shuts it down immediately (nothing in it is worth keeping)
and deletes the directory. Durability is switched off for speed; `wal_level=logical` is on because
the realtime change feed reads the logical replication stream.

When the tests run as root, the server binaries run as the `postgres` OS user, because postgres
refuses to run as root.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg2

MIN_MAJOR = 15
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
    # The realtime benchmark opens many client connections at once.
    "max_connections": "300",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
}


class PgClusterError(RuntimeError):
    """The cluster could not be set up, started or stopped."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on a lost race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _major_version(bindir: Path) -> int:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    if match is None:
        raise PgClusterError(f"cannot parse postgres version from {out!r}")
    return int(match.group(1))


def find_bindir() -> Path:
    """The directory with initdb/pg_ctl/postgres: $WEXLOT_PG_BINDIR, pg_config, Debian's, or PATH."""
    candidates: list[Path] = []
    if env_dir := os.environ.get("WEXLOT_PG_BINDIR"):
        candidates.append(Path(env_dir))
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(subprocess.CalledProcessError, OSError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(out.stdout.strip()))
    # pg_config may come from libpq-dev with no server beside it, so Debian's tree is next.
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    debian.sort(key=lambda p: int(v) if (v := Path(p).parent.name).isdigit() else -1, reverse=True)
    candidates.extend(Path(p) for p in debian)
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)

    seen: list[str] = []
    for bindir in candidates:
        if not all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            continue
        major = _major_version(bindir)
        if major >= MIN_MAJOR:
            return bindir
        seen.append(f"{bindir} (PostgreSQL {major})")
    raise PgClusterError(
        f"no PostgreSQL {MIN_MAJOR}+ server binaries found (saw: {', '.join(seen) or 'none'}); "
        "install them with `apt-get install postgresql` or run ./scripts/test"
    )


class PgCluster:
    """A private PostgreSQL server on 127.0.0.1:<random port>, trust auth, superuser `postgres`."""

    def __init__(
        self, bindir: Path | None = None, start_timeout: float = 30.0, settings: dict[str, str] | None = None
    ) -> None:
        self.bindir = bindir or find_bindir()
        self.start_timeout = start_timeout
        # postgresql.conf values over SERVER_SETTINGS, e.g. {"wal_level": "replica"} for a doctor test.
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.port = 0
        self.root: Path | None = None
        self._run_as = self._os_user()

    # -- paths -----------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._root() / "data"

    @property
    def socket_dir(self) -> Path:
        return self._root() / "sock"

    @property
    def log_path(self) -> Path:
        return self._root() / "server.log"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _root(self) -> Path:
        if self.root is None:
            raise PgClusterError("cluster is not started")
        return self.root

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, attempts: int = 3) -> PgCluster:
        if self.root is not None:
            return self
        self.root = Path(tempfile.mkdtemp(prefix="wexlot-pg-", dir=self._temp_base()))
        atexit.register(self.stop)
        try:
            self._initdb()
            self._start_server(attempts)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._shutdown()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
            atexit.unregister(self.stop)

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def server_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"

    # -- SQL helpers -----------------------------------------------------------------------

    def psql(self, sql: str, dbname: str = "postgres", params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode; return its rows ([] when it returns none)."""
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, connect_timeout=10)
        try:
            conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall()) if cur.description is not None else []
        finally:
            conn.close()

    def create_database(self, name: str, template: str | None = None) -> str:
        sql = f'CREATE DATABASE "{_ident(name)}"'
        if template is not None:
            sql += f' TEMPLATE "{_ident(template)}"'
        self.psql(sql)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop `name` even while clients or logical replication slots still use it."""
        name = _ident(name)
        self.psql(
            # The timeout makes the call wait until the backends are gone, freeing their slots.
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            params=(name,),
        )
        # A database that still owns a replication slot cannot be dropped, even WITH (FORCE).
        slots = self.psql("SELECT slot_name FROM pg_replication_slots WHERE database = %s", params=(name,))
        for (slot,) in slots:
            with contextlib.suppress(psycopg2.Error):
                self.psql("SELECT pg_drop_replication_slot(%s)", params=(slot,))
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _os_user() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError:
            msg = "running as root but there is no `postgres` OS user to run postgres as"
            raise PgClusterError(msg) from None

    def _temp_base(self) -> str:
        base = tempfile.gettempdir()
        # The postgres user must be able to reach the directory; a root-only TMPDIR would not do.
        if self._run_as is not None and not _world_traversable(Path(base)):
            base = "/tmp"
        return base

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self._run_as is not None:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        # cwd: the tools fail when they cannot read the current directory (e.g. /root as postgres).
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=self._root(), env=env, check=False
        )

    def _initdb(self) -> None:
        root = self._root()
        self.socket_dir.mkdir()
        if self._run_as is not None:
            for path in (root, self.socket_dir):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        result = self._run(
            str(self.bindir / "initdb"),
            "-D", str(self.data_dir),
            "-U", "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )  # fmt: skip
        if result.returncode != 0:
            raise PgClusterError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        settings = {**self.settings, "unix_socket_directories": f"'{self.socket_dir}'"}
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# wexlot test cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start_server(self, attempts: int) -> None:
        for attempt in range(1, attempts + 1):
            self.port = free_port()
            result = self._run(
                str(self.bindir / "pg_ctl"),
                "start",
                "-D", str(self.data_dir),
                "-l", str(self.log_path),
                "-o", f"-p {self.port}",
                "-w",
                "-t", str(int(self.start_timeout)),
                timeout=self.start_timeout + 15,
            )  # fmt: skip
            if result.returncode == 0:
                return
            # Another process may have taken the port between free_port() and the server's bind().
            if attempt == attempts or "already in use" not in self.server_log():
                raise PgClusterError(
                    f"postgres failed to start (pg_ctl: {result.stderr.strip()}); server log:\n{self.server_log()}"
                )

    def _shutdown(self) -> None:
        pid = self._postmaster_pid()
        pg_ctl, data = str(self.bindir / "pg_ctl"), str(self.data_dir)
        result = self._run(pg_ctl, "stop", "-D", data, "-m", "immediate", "-w", "-t", "15", timeout=30)
        if result.returncode == 0 or pid is None:
            return
        # pg_ctl gave up: kill this cluster's postmaster by its own PID, nothing broader.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0]
            return int(first)
        except (OSError, IndexError, ValueError):
            return None


def _ident(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return name


def _world_traversable(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie counts as gone (PID 1 may not reap it promptly)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
