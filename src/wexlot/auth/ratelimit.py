"""Failed-sign-in limits per account and per client address, in memory and bounded.

Each key keeps the times of its recent failures (at most ``limit`` of them, in a sliding window).
At ``limit`` failures inside the window the key is blocked until the oldest one ages out. At most
``max_keys`` keys are tracked; past that the least recently touched key is forgotten, so memory stays
bounded whatever an attacker sends (forgetting can only make the limiter more lenient, never lock
anybody out).

An attempt counts as a failure *before* its password is checked and is taken back when it succeeds,
so a burst of parallel guesses cannot overshoot the limit while hashes are being verified.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from wexlot.errors import AuthError

Clock = Callable[[], float]


class RateLimited(AuthError):
    """429 ``over_request_rate_limit`` with a ``Retry-After`` header."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(429, "over_request_rate_limit", "Request rate limit reached")
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}


@dataclass
class FailureWindow:
    limit: int
    window: float
    max_keys: int = 10_000
    clock: Clock = time.monotonic
    _failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it is not blocked."""
        stamps = self._recent(key)
        if stamps is None or len(stamps) < self.limit:
            return 0.0
        return max(0.0, stamps[0] + self.window - self.clock())

    def record(self, key: str) -> float:
        """Count a failure now; returns its timestamp (to :meth:`discard` it on success)."""
        stamps = self._recent(key)
        if stamps is None:
            stamps = self._failures[key] = deque(maxlen=self.limit)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
        now = self.clock()
        stamps.append(now)
        return now

    def discard(self, key: str, stamp: float) -> None:
        stamps = self._failures.get(key)
        if stamps is not None and stamp in stamps:
            stamps.remove(stamp)

    def reset(self, key: str) -> None:
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)

    def _recent(self, key: str) -> deque[float] | None:
        stamps = self._failures.get(key)
        if stamps is None:
            return None
        self._failures.move_to_end(key)
        horizon = self.clock() - self.window
        while stamps and stamps[0] <= horizon:
            stamps.popleft()
        return stamps


@dataclass
class Attempt:
    account: str
    address: str
    stamps: tuple[float, float]


class LoginLimiter:
    """The two windows password sign-in goes through: per account (email) and per address."""

    def __init__(
        self, per_account: int, per_address: int, window: float, max_keys: int = 10_000, clock: Clock = time.monotonic
    ) -> None:
        self.accounts = FailureWindow(per_account, window, max_keys, clock)
        self.addresses = FailureWindow(per_address, window, max_keys, clock)

    def begin(self, account: str, address: str) -> Attempt:
        """Raise 429 ``over_request_rate_limit`` when blocked; else count the attempt as a failure."""
        wait = max(self.accounts.retry_after(account), self.addresses.retry_after(address))
        if wait > 0:
            raise RateLimited(wait)
        return Attempt(account, address, (self.accounts.record(account), self.addresses.record(address)))

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: the account starts afresh; the address gets this attempt back."""
        self.accounts.reset(attempt.account)
        self.addresses.discard(attempt.address, attempt.stamps[1])
