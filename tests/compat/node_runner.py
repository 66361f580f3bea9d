"""Run node:test files of tests/compat/node against a compat server and fail with node's own output."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"
_SUMMARY = re.compile(r"^\u2139 (tests|pass|fail|skipped|todo|cancelled) (\d+)$", re.MULTILINE)


def run_node_tests(
    files: list[str], env: dict[str, str], *, what: str, backend: str, timeout: float, test_timeout_ms: int,
    concurrency: int = 1,
) -> dict[str, int]:  # fmt: skip
    """Run ``files`` with ``node --test``; returns the summary counts after checking every test passed."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/test installs nodejs and npm)")
    if not (NODE_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir():
        pytest.fail(f"node packages missing: run `npm ci` in {NODE_DIR} (scripts/test does)")
    assert files, f"no node test files for {what} in {NODE_DIR}"
    cmd = [node, "--test", "--test-reporter=spec", f"--test-concurrency={concurrency}",
           f"--test-timeout={test_timeout_ms}", *files]  # fmt: skip
    full_env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", **env}
    try:
        result = subprocess.run(
            cmd, cwd=NODE_DIR, env=full_env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        pytest.fail(f"{what} timed out after {timeout}s on {backend}\n{out}")
    if result.returncode != 0:
        pytest.fail(
            f"{what} failed on {backend} (node exit {result.returncode})\n"
            f"--- node stdout ---\n{result.stdout}\n--- node stderr ---\n{result.stderr}",
            pytrace=False,
        )
    sys.stdout.write(result.stdout)  # shown with -rP / -s
    summary = {k: int(v) for k, v in _SUMMARY.findall(result.stdout)}
    assert summary.get("pass") == summary.get("tests"), f"not every node test passed: {summary}\n{result.stdout}"
    summary["_stdout"] = result.stdout  # type: ignore[assignment]
    return summary
