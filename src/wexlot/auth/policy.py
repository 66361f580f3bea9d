"""Auth knobs that are code, not settings (GoTrue's fixed defaults), and the per-app state they drive.

The state lives on ``app.state`` and is created on first use; tests install their own
:class:`AuthPolicy` with :func:`configure` (e.g. a short refresh-token reuse interval) instead of
sleeping through the real one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp

from wexlot.auth import passwords
from wexlot.auth.ratelimit import LoginLimiter

STATE_ATTRIBUTE = "wexlot_auth"


@dataclass(frozen=True)
class AuthPolicy:
    # A refresh token already exchanged may be exchanged again for this long (GoTrue's
    # REFRESH_TOKEN_REUSE_INTERVAL), so tabs refreshing at the same moment are not signed out.
    refresh_reuse_interval: float = 10.0
    failures_per_account: int = 10
    failures_per_address: int = 30
    failure_window: float = 300.0
    tracked_keys: int = 10_000
    # argon2 uses 64 MiB per hash: bound the hashes running at once.
    concurrent_hashes: int = 4


class AuthState:
    def __init__(self, policy: AuthPolicy) -> None:
        self.policy = policy
        self.limiter = LoginLimiter(
            policy.failures_per_account, policy.failures_per_address, policy.failure_window, policy.tracked_keys
        )
        self._hashing = asyncio.Semaphore(policy.concurrent_hashes)

    async def hash_password(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(passwords.hash_password, password)

    async def verify_password(self, password_hash: str | None, password: str) -> bool:
        async with self._hashing:
            return await asyncio.to_thread(passwords.verify_password, password_hash, password)


def configure(app: ASGIApp, policy: AuthPolicy) -> AuthState:
    state = AuthState(policy)
    setattr(app.state, STATE_ATTRIBUTE, state)  # type: ignore[attr-defined]
    return state


def auth_state(conn: HTTPConnection) -> AuthState:
    state: AuthState | None = getattr(conn.app.state, STATE_ATTRIBUTE, None)
    if state is None:
        state = configure(conn.app, AuthPolicy())
    return state
