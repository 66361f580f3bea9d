"""The real server as a subprocess, for tests that talk HTTP/WebSocket to it like a client would.

The child's output goes to files in its data dir rather than pipes: nobody reads pipes while a test
runs, and a full pipe would block the server mid-write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .pg_cluster import free_port

HEALTH_PATH = "/auth/v1/health"


class LiveServerError(RuntimeError):
    """The server did not come up; the message carries its logs."""


class LiveServer:
    """`python -m wexlot serve` on 127.0.0.1:<free port>, stopped by its PID."""

    def __init__(
        self,
        data_dir: Path | str,
        database_url: str,
        *,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        name: str = "server",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        # Several servers may share one data dir (e.g. two "machines"); `name` keeps logs apart.
        self.stdout_path = self.data_dir / f"{name}.stdout.log"
        self.stderr_path = self.data_dir / f"{name}.stderr.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, attempts: int = 3) -> LiveServer:
        if self.process is not None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempt = 0
        while True:
            attempt += 1
            self.port = free_port()
            self._spawn()
            try:
                self._wait_healthy()
                return self
            except LiveServerError:
                self.stop()
                # The port may have been taken between free_port() and the server's bind().
                if attempt >= attempts or "address already in use" not in self.logs().lower():
                    raise

    def restart(self) -> LiveServer:
        """Stops the server and starts it again on the same port, so clients reconnect to the same URL."""
        port = self.port
        self.stop()
        self.port = port
        self._spawn()
        try:
            self._wait_healthy()
        except LiveServerError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGINT (graceful), then SIGTERM, then SIGKILL, each with a bounded wait."""
        process, self.process = self.process, None
        if process is None:
            return
        for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if process.poll() is not None:
                return
            try:
                os.kill(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def logs(self) -> str:
        parts = []
        for label, path in (("stdout", self.stdout_path), ("stderr", self.stderr_path)):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                text = ""
            parts.append(f"--- {label} ({path}) ---\n{text}")
        return "\n".join(parts)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _spawn(self) -> None:
        cmd = [
            sys.executable, "-m", "wexlot", "serve",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--data-dir", str(self.data_dir),
            "--database-url", self.database_url,
            *self.extra_args,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        # Append, so that the logs of an earlier attempt on the same files survive for the report.
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=self.data_dir
            )

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no attempt yet"
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise LiveServerError(f"server exited with code {code} during startup\n{self.logs()}")
            try:
                with urllib.request.urlopen(self.url + HEALTH_PATH, timeout=2) as response:
                    if response.status == 200:
                        return
                    last_error = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last_error = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                last_error = str(exc)
            time.sleep(0.1)
        raise LiveServerError(
            f"server not healthy at {self.url}{HEALTH_PATH} after {self.startup_timeout}s"
            f" (last: {last_error})\n{self.logs()}"
        )


def keys(data_dir: Path | str, url: str, timeout: float = 60.0) -> dict[str, Any]:
    """`wexlot keys --json` for this data dir and database: {url, anon_key, service_role_key}."""
    cmd = [
        sys.executable, "-m", "wexlot", "keys", "--json",
        "--data-dir", str(data_dir),
        "--database-url", url,
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"`wexlot keys` exited with {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed
