"""The CRM web app at ``/``: the single-page shell and its static files.

The app itself is plain ES modules under ``static/`` that talk only to the public APIs
(``/rest/v1``, ``/auth/v1``, ``/realtime/v1``) through the vendored, unmodified supabase-js; this
module only serves files. Mounted at ``/`` after the API mounts, so it never shadows them.

* ``/static/<path>``: files from ``static/`` with explicit content types (browsers refuse ES modules
  served with a non-JavaScript type, and the platform's ``mimetypes`` table varies). Files under
  ``vendor/`` whose name carries a version (``supabase-js-2.119.1.js``) never change and are cached
  for a year as immutable; everything else is revalidated on each load (ETag / Last-Modified → 304).
* Any other ``GET`` path without a file extension (``/``, ``/contacts``, ``/deals/…``): the shell,
  ``index.html``, with the public anon key filled in, so client-side routes survive a reload. Paths
  with an extension that match no file are 404s, not the shell.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from pathlib import Path, PurePosixPath

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from wexlot.runtime import runtime_of

STATIC_DIR = Path(__file__).parent / "static"
SHELL = STATIC_DIR / "index.html"

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}
# First path segments that belong to the APIs: an unknown path there is a 404, never the app shell.
API_PREFIXES = frozenset({"rest", "auth", "realtime", "socket", "static"})
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
VERSIONED = re.compile(r"-\d+\.\d+\.\d+(?:[-.][0-9A-Za-z.]+)?\.m?js$")

# The app connects only to its own origin: REST and auth over fetch, realtime over ws(s) ('self' covers the
# same-origin WebSocket in CSP 3). No inline script or style anywhere, so none is allowed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def cache_control(path: str) -> str:
    """Year-long immutable caching for versioned vendor bundles; revalidation for the rest."""
    parts = PurePosixPath(path).parts
    if parts and parts[0] == "vendor" and VERSIONED.search(path):
        return IMMUTABLE
    return REVALIDATE


class AppFiles(StaticFiles):
    """``StaticFiles`` with fixed content types and the caching policy above."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        relative = PurePosixPath(Path(full_path).relative_to(STATIC_DIR).as_posix())
        content_type = CONTENT_TYPES.get(relative.suffix)
        if content_type and "content-type" in response.headers:
            response.headers["content-type"] = content_type
        response.headers["cache-control"] = cache_control(str(relative))
        response.headers.update(SECURITY_HEADERS)
        return response


def render_shell(anon_key: str) -> bytes:
    """``index.html`` with the public anon key in its ``<meta name="wexlot-anon-key">``."""
    text = SHELL.read_text(encoding="utf-8")
    return text.replace("{{anon_key}}", html.escape(anon_key, quote=True)).encode()


async def shell(request: Request) -> Response:
    path = request.path_params.get("path", "")
    if PurePosixPath(path).suffix or path.split("/", 1)[0] in API_PREFIXES:
        return PlainTextResponse("Not Found", status_code=404)
    state = request.app.state
    body: bytes | None = getattr(state, "ui_shell", None)
    if body is None:
        body = state.ui_shell = render_shell(runtime_of(request).tokens.anon_key)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": REVALIDATE, "ETag": etag, "Content-Security-Policy": CSP, **SECURITY_HEADERS}
    if etag in Headers(scope=request.scope).get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return HTMLResponse(body, headers=headers)


routes: list[BaseRoute] = [
    Mount("/static", app=AppFiles(directory=STATIC_DIR), name="static"),
    Route("/", shell, methods=["GET", "HEAD"]),
    Route("/{path:path}", shell, methods=["GET", "HEAD"]),
]
