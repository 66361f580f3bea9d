"""The unmodified npm ``@supabase/supabase-js`` (tests/compat/node, pinned in package.json) against ``wexlot serve``.

The node:test files in tests/compat/node do the work; this test starts the server (once per backend),
hands them its URL, keys and logins through the environment, runs ``node --test`` and fails with
node's report when any of them fails. ``scripts/test`` installs the node packages (``npm ci``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from node_runner import NODE_DIR, run_node_tests

if TYPE_CHECKING:
    from conftest import CompatServer  # tests/compat/conftest.py; annotations only

pytestmark = pytest.mark.compat

NODE_TIMEOUT = 240.0  # seconds for the whole node run
TEST_TIMEOUT_MS = 60_000  # per node test
MIN_NODE_TESTS = 25  # the node files hold at least this many tests; fewer means some silently vanished


OTHER_SUITES = ("realtime", "broadcast", "presence")  # run by their own pytest files, with their own servers


def node_test_files() -> list[str]:
    """The REST/auth node tests: every *.test.mjs but the realtime, broadcast and presence ones."""
    return sorted(p.name for p in NODE_DIR.glob("*.test.mjs") if not p.name.startswith(OTHER_SUITES))


def test_supabase_js(compat_server: CompatServer) -> None:
    summary = run_node_tests(
        node_test_files(), compat_server.node_env(), what="supabase-js tests", backend=compat_server.backend,
        timeout=NODE_TIMEOUT, test_timeout_ms=TEST_TIMEOUT_MS,
    )  # fmt: skip
    # Guard against a run that silently tested nothing.
    assert summary.get("tests", 0) >= MIN_NODE_TESTS, f"too few node tests ran: {summary}"
