from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"version": "wexlot", "name": "GoTrue", "description": "WeXlot auth"})


routes: list[BaseRoute] = [Route("/health", health)]
