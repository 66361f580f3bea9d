"""The shape of a doctor check and the loop that runs them.

A check is a plain function ``(Context) -> CheckResult`` registered under a name. The runner times
it, turns any exception into a failed result carrying the error's first line (never a traceback),
and skips a check whose prerequisites (``requires``) did not pass, so an unreachable database gives
one failure plus skips instead of a cascade of connection errors.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from wexlot.config import Settings
from wexlot.storage.engine import dialect_of, sync_engine

CONNECT_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class CheckResult:
    """One line of the report. ``skipped`` and ``warning`` results have ``ok`` True: they never fail the run.

    A warning is a risk worth printing with its fix (e.g. nothing caps the WAL a replication slot keeps).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False
    elapsed_ms: float = 0.0
    warning: bool = False

    @property
    def status(self) -> str:
        return "skip" if self.skipped else "warn" if self.warning else "pass" if self.ok else "fail"

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "status": self.status, "elapsed_ms": round(self.elapsed_ms, 1)}


def passed(detail: str) -> CheckResult:
    return CheckResult(name="", ok=True, detail=detail)


def failed(detail: str, fix: str) -> CheckResult:
    return CheckResult(name="", ok=False, detail=detail, fix=fix)


def skipped(detail: str) -> CheckResult:
    return CheckResult(name="", ok=True, detail=detail, skipped=True)


def warned(detail: str, fix: str) -> CheckResult:
    return CheckResult(name="", ok=True, detail=detail, fix=fix, warning=True)


@dataclass
class Context:
    """What checks share: the settings, one lazily opened engine (with a connect timeout), the server URL."""

    settings: Settings
    results: dict[str, CheckResult] = field(default_factory=dict)
    _engine: Engine | None = None
    server_url: str = ""  # a running server's URL (``--url``); default the settings' public URL

    @property
    def url(self) -> str:
        return self.settings.db_url

    @property
    def base_url(self) -> str:
        return (self.server_url or self.settings.base_url).rstrip("/")

    @property
    def dialect(self) -> str:
        return dialect_of(self.url)

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = sync_engine(_with_connect_timeout(self.url))
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


CheckFn = Callable[[Context], CheckResult]


@dataclass(frozen=True)
class Check:
    name: str
    run: CheckFn
    requires: tuple[str, ...] = ()


def run_checks(settings: Settings, checks: Iterable[Check], server_url: str | None = None) -> list[CheckResult]:
    ctx = Context(settings, server_url=server_url or "")
    try:
        for check in checks:
            ctx.results[check.name] = _run_one(ctx, check)
    finally:
        ctx.close()
    return list(ctx.results.values())


def _run_one(ctx: Context, check: Check) -> CheckResult:
    blocked = [name for name in check.requires if not (r := ctx.results.get(name)) or not r.ok or r.skipped]
    if blocked:
        return dataclasses.replace(skipped(f"not run: needs the {', '.join(blocked)} check to pass"), name=check.name)
    start = time.perf_counter()
    try:
        result = check.run(ctx)
    except Exception as exc:
        result = failed(first_line(exc), "")
    return dataclasses.replace(result, name=check.name, elapsed_ms=(time.perf_counter() - start) * 1000)


def first_line(exc: BaseException) -> str:
    """The first line of an error, without SQLAlchemy's ``(driver.Error)`` prefix and help links."""
    source: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(source).strip()
    return text.splitlines()[0].strip() if text else type(source).__name__


def _with_connect_timeout(url: str) -> str:
    """Bound PostgreSQL connection attempts so a black-holed host fails in seconds, not minutes."""
    if dialect_of(url) != "postgresql":
        return url
    parsed = make_url(url)
    if "connect_timeout" in parsed.query:
        return url
    parsed = parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_SECONDS)})
    return parsed.render_as_string(hide_password=False)
