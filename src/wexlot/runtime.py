"""What a running server holds: settings, the database and the token service, built once at startup."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from wexlot.auth.tokens import Tokens
from wexlot.config import Settings
from wexlot.storage.database import Database

if TYPE_CHECKING:
    from wexlot.realtime.service import RealtimeService


@dataclass
class Runtime:
    settings: Settings
    db: Database
    tokens: Tokens
    realtime: RealtimeService

    @classmethod
    def create(cls, settings: Settings) -> Runtime:
        from wexlot.realtime.service import RealtimeService

        settings = settings.with_secret()
        tokens = Tokens(settings.jwt_secret, settings.base_url, settings.jwt_expiry)
        db = Database(settings.db_url)
        return cls(settings=settings, db=db, tokens=tokens, realtime=RealtimeService(settings, db))

    async def start(self) -> None:
        await self.realtime.start()

    async def close(self) -> None:
        await self.realtime.stop()
        await self.db.close()


def runtime_of(conn: HTTPConnection) -> Runtime:
    runtime: Runtime = conn.app.state.runtime
    return runtime
