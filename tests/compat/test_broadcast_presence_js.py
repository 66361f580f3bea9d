"""Broadcast and presence with the unmodified npm ``@supabase/supabase-js`` against ``wexlot serve``, per backend.

The node:test files ``tests/compat/node/broadcast*.test.mjs`` and ``presence*.test.mjs`` do the work
(self/ack, binary kind-3/kind-4 frames, ``httpSend`` and the REST fallback with 202, the payload
limit, private channels refused to the anon key and accepted for staff; presence join/sync/leave,
``presenceState()``, cleanup after a disconnect and after a SIGKILLed process). This test starts the
server once per backend (tests/compat/conftest.py), runs only those files and fails with node's report.
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

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

NODE_DIR = Path(__file__).parent / "node"
PATTERNS = ("broadcast*.test.mjs", "presence*.test.mjs")
NODE_TIMEOUT = 150.0  # seconds for the whole node run (both files run at once; each lingers ~10 s on exit:
# realtime-js' disconnect() leaves an uncleared 10 s timer, socketAdapter.js:59)
TEST_TIMEOUT_MS = 45_000  # per node test; every wait inside is bounded well below this
MIN_NODE_TESTS = 10  # fewer means some test silently vanished


def node_test_files() -> list[str]:
    return sorted({p.name for pattern in PATTERNS for p in NODE_DIR.glob(pattern)})


def test_broadcast_and_presence_with_supabase_js(compat_server: CompatServer) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (scripts/test installs nodejs and npm)")
    if not (NODE_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir():
        pytest.fail(f"node packages missing: run `npm ci` in {NODE_DIR} (scripts/test does)")
    files = node_test_files()
    assert files, f"no {' / '.join(PATTERNS)} files in {NODE_DIR}"
    cmd = [
        node, "--test", "--test-reporter=spec", "--test-concurrency=2",
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
            f"supabase-js broadcast/presence tests failed on {compat_server.backend} (node exit {result.returncode})\n"
            f"--- node stdout ---\n{result.stdout}\n--- node stderr ---\n{result.stderr}",
            pytrace=False,
        )
    sys.stdout.write(result.stdout)  # shown with -rP / -s
    summary = dict(re.findall(r"^\u2139 (tests|pass|fail|skipped|todo|cancelled) (\d+)$", result.stdout, re.MULTILINE))
    assert int(summary.get("tests", 0)) >= MIN_NODE_TESTS, f"too few node tests ran: {summary}\n{result.stdout}"
    assert summary.get("pass") == summary.get("tests"), f"not every node test passed: {summary}\n{result.stdout}"
