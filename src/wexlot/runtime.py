"""What a running server holds: settings, the database and the token service, built once at startup."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from wexlot.auth.tokens import Tokens
from wexlot.config import Settings
from wexlot.storage.database import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    tokens: Tokens

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        settings = settings.with_secret()
        tokens = Tokens(settings.jwt_secret, settings.base_url, settings.jwt_expiry)
        return cls(settings=settings, db=Database(settings.db_url), tokens=tokens)

    async def close(self) -> None:
        await self.db.close()


def runtime_of(conn: HTTPConnection) -> Runtime:
    runtime: Runtime = conn.app.state.runtime
    return runtime
