"""The unmodified npm ``@supabase/supabase-js`` (tests/compat/node, pinned in package.json) against ``wexlot serve``.

The node:test files in tests/compat/node do the work; this test starts the server (once per backend),
hands them its URL, keys and logins through the environment, runs ``node --test`` and fails with
node's report when any of them fails. ``scripts/test`` installs the node packages (``npm ci``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import CompatServer  # tests/compat/conftest.py; annotations only

pytestmark = pytest.mark.compat

NODE_DIR = Path(__file__).parent / "node"
NODE_TIMEOUT = 240.0  # seconds for the whole node run
TEST_TIMEOUT_MS = 60_000  # per node test
MIN_NODE_TESTS = 25  # the node files hold at least this many tests; fewer means some silently vanished


OTHER_SUITES = ("realtime", "broadcast", "presence")  # run by their own pytest files, with their own servers


def node_test_files() -> list[str]:
    """The REST/auth node tests: every *.test.mjs but the realtime, broadcast and presence ones."""
    return sorted(p.name for p in NODE_DIR.glob("*.test.mjs") if not p.name.startswith(OTHER_SUITES))


def test_supabase_js(compat_server: CompatServer) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/test installs nodejs and npm)")
    if not (NODE_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir():
        pytest.fail(f"node packages missing: run `npm ci` in {NODE_DIR} (scripts/test does)")
    files = node_test_files()
    assert files, f"no *.test.mjs files in {NODE_DIR}"
    cmd = [
        node, "--test", "--test-reporter=spec", "--test-concurrency=1",
        f"--test-timeout={TEST_TIMEOUT_MS}", *files,
    ]  # fmt: skip
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", **compat_server.node_env()}
    try:
        result = subprocess.run(
            cmd, cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=NODE_TIMEOUT,
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        pytest.fail(f"node --test timed out after {NODE_TIMEOUT}s on {compat_server.backend}\n{out}")
    if result.returncode != 0:
        pytest.fail(
            f"supabase-js tests failed on {compat_server.backend} (node exit {result.returncode})\n"
            f"--- node stdout ---\n{result.stdout}\n--- node stderr ---\n{result.stderr}",
            pytrace=False,
        )
    sys.stdout.write(result.stdout)  # shown with -rP / -s
    # Guard against a run that silently tested nothing or skipped tests.
    summary = dict(re.findall(r"^\u2139 (tests|pass|fail|skipped|todo|cancelled) (\d+)$", result.stdout, re.MULTILINE))
    assert int(summary.get("tests", 0)) >= MIN_NODE_TESTS, f"too few node tests ran: {summary}\n{result.stdout}"
    assert summary.get("pass") == summary.get("tests"), f"not every node test passed: {summary}\n{result.stdout}"
