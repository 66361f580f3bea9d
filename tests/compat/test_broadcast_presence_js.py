"""Broadcast and presence with the unmodified npm ``@supabase/supabase-js`` against ``wexlot serve``, per backend.

The node:test files ``tests/compat/node/broadcast*.test.mjs`` and ``presence*.test.mjs`` do the work
(self/ack, binary kind-3/kind-4 frames, ``httpSend`` and the REST fallback with 202, the payload
limit, private channels refused to the anon key and accepted for staff; presence join/sync/leave,
``presenceState()``, cleanup after a disconnect and after a SIGKILLed process). This test starts the
server once per backend (tests/compat/conftest.py), runs only those files and fails with node's report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from node_runner import NODE_DIR, run_node_tests

if TYPE_CHECKING:
    from conftest import CompatServer  # tests/compat/conftest.py; annotations only

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

PATTERNS = ("broadcast*.test.mjs", "presence*.test.mjs")
NODE_TIMEOUT = 150.0  # seconds for the whole node run (both files run at once; each lingers ~10 s on exit:
# realtime-js' disconnect() leaves an uncleared 10 s timer, socketAdapter.js:59)
TEST_TIMEOUT_MS = 45_000  # per node test; every wait inside is bounded well below this
MIN_NODE_TESTS = 10  # fewer means some test silently vanished


def node_test_files() -> list[str]:
    return sorted({p.name for pattern in PATTERNS for p in NODE_DIR.glob(pattern)})


def test_broadcast_and_presence_with_supabase_js(compat_server: CompatServer) -> None:
    summary = run_node_tests(
        node_test_files(), compat_server.node_env(), what="supabase-js broadcast/presence tests",
        backend=compat_server.backend, timeout=NODE_TIMEOUT, test_timeout_ms=TEST_TIMEOUT_MS, concurrency=2,
    )  # fmt: skip
    assert summary.get("tests", 0) >= MIN_NODE_TESTS, f"too few node tests ran: {summary}"
