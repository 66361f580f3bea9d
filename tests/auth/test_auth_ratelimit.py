"""The failure windows on their own, with a fake clock: sliding expiry and bounded memory."""

from __future__ import annotations

import pytest

from wexlot.auth.policy import AuthPolicy
from wexlot.auth.ratelimit import FailureWindow, LoginLimiter, RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_defaults_match_the_documented_limits() -> None:
    policy = AuthPolicy()
    assert (policy.failures_per_account, policy.failures_per_address, policy.failure_window) == (10, 30, 300.0)
    assert policy.refresh_reuse_interval == 10.0


def test_window_slides() -> None:
    clock = Clock()
    window = FailureWindow(limit=3, window=60, clock=clock)
    for _ in range(3):
        window.record("k")
        clock.now += 10
    assert window.retry_after("k") == pytest.approx(30)
    clock.now += 31
    assert window.retry_after("k") == 0


def test_memory_is_bounded() -> None:
    window = FailureWindow(limit=5, window=60, max_keys=100, clock=Clock())
    for n in range(10_000):
        window.record(f"key{n}")
    assert len(window) == 100
    assert all(len(stamps) <= 5 for stamps in window._failures.values())


def test_limiter_blocks_and_success_gives_the_attempt_back() -> None:
    clock = Clock()
    limiter = LoginLimiter(per_account=2, per_address=3, window=60, clock=clock)
    limiter.begin("a@x", "1.1.1.1")
    ok = limiter.begin("a@x", "1.1.1.1")
    limiter.succeeded(ok)  # the account starts afresh, the address only gets this attempt back
    limiter.begin("b@x", "1.1.1.1")
    limiter.begin("c@x", "1.1.1.1")
    with pytest.raises(RateLimited) as caught:
        limiter.begin("d@x", "1.1.1.1")
    assert caught.value.status == 429 and caught.value.code == "over_request_rate_limit"
    assert caught.value.headers["Retry-After"] == "60"
    limiter.begin("d@x", "2.2.2.2")  # another address is fine
