"""Fixtures for /auth/v1 tests; the harness itself is in ``auth_harness``."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

# `auth_harness` must import the same way under every --import-mode.
sys.path.insert(0, str(Path(__file__).parent))

from auth_harness import AuthApi, running

from wexlot.auth.policy import AuthPolicy
from wexlot.config import Settings


@pytest.fixture
def settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(data_dir=str(data_dir), database_url=database_url, jwt_secret=secrets.token_urlsafe(48))


@pytest.fixture
def policy() -> AuthPolicy:
    """Override in a module (or use ``running`` with its own policy) to shorten windows and limits."""
    return AuthPolicy()


@pytest_asyncio.fixture
async def api(settings: Settings, policy: AuthPolicy) -> AsyncIterator[AuthApi]:
    async with running(settings, policy) as api:
        yield api
