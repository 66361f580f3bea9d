"""Composition root: build the ASGI app for a set of settings.

Mounts ``/rest/v1`` (PostgREST-compatible), ``/auth/v1`` (GoTrue-compatible), the realtime WebSocket
(``/realtime/v1/websocket`` and ``/socket/websocket``) with its HTTP API, and the CRM web app at ``/``;
the lifespan starts and stops the database and the realtime engine. No SQL, rules or parsing here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, WebSocketRoute

from wexlot.auth.routes import routes as auth_routes
from wexlot.config import Settings
from wexlot.realtime.api import routes as realtime_routes
from wexlot.realtime.endpoint import websocket_endpoint
from wexlot.rest.routes import routes as rest_routes
from wexlot.runtime import Runtime
from wexlot.ui.routes import routes as ui_routes

EXPOSED_HEADERS = ["Content-Range", "X-Supabase-Api-Version", "X-Total-Count", "Link", "Location"]


def build_app(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rt = runtime or Runtime.create(settings)
        app.state.runtime = rt
        await rt.start()
        try:
            yield
        finally:
            await rt.close()

    middleware = [
        Middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )
    ]
    return Starlette(
        routes=[
            Mount("/rest/v1", routes=rest_routes),
            Mount("/auth/v1", routes=auth_routes),
            WebSocketRoute("/realtime/v1/websocket", websocket_endpoint),
            WebSocketRoute("/socket/websocket", websocket_endpoint),
            Mount("/realtime/v1/api", routes=realtime_routes),
            Mount("/", routes=ui_routes),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
