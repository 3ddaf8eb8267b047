"""The web client: the files of ``web/`` served at ``/`` by the gateway (embedded and proxy alike).

Every file is read once, when the app is built, and served from memory: a request names a file of
that table or gets a 404, so no request path ever reaches the file system. Assets live under
``/assets/<version>/``, where the version is a hash of every file of ``web/``: their URLs change
with any change, so they are cached for a year (``immutable``), and ``index.html``, which names the
current version, is revalidated on each load (``no-cache`` with an ``ETag``). Modules import each
other by relative paths, so they stay inside the version they were loaded from.

Every answer carries a strict Content-Security-Policy: scripts and styles only from files of this
origin (no inline code, no ``eval``), Trusted Types required for DOM sinks (so an ``innerHTML`` with
a string fails outright), no framing, no plugins, and fetches and WebSockets to this origin only.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .problems import HttpProblem

log = logging.getLogger(__name__)

# In the repository and in the image alike, web/ sits beside shared/ (the image: /app/web, /app/shared).
WEB_DIR = Path(__file__).resolve().parents[3] / "web"
ASSETS_PREFIX = "/assets"

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",  # the API and /ws (CSP 3: 'self' covers ws: and wss: of this host)
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",  # forms are handled by the page's scripts, never submitted
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# By suffix, not the mimetypes module: its answers depend on the machine's /etc/mime.types.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
}
# Routes take every method and answer the ones they do not serve with a problem: a Starlette route
# would send plain text, and a route without the method would fall through to the API's dispatcher.
EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str

    def response(self, request: Request, cache_control: str) -> Response:
        headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": self.etag}
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = b"" if request.method == "HEAD" else self.body
        response = Response(body, headers=headers, media_type=self.content_type)
        if request.method == "HEAD":
            response.headers["Content-Length"] = str(len(self.body))
        return response


def _file(body: bytes, content_type: str) -> StaticFile:
    return StaticFile(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


@dataclass(frozen=True)
class WebClient:
    version: str
    index: StaticFile
    assets: dict[str, StaticFile]  # by path below /assets/<version>/

    @classmethod
    def load(cls, web_dir: Path, *, dev_sign_in: bool) -> WebClient | None:
        """The client in ``web_dir``; None when there is none (an image built without it).

        ``index.html`` names its assets as ``{{assets}}/…`` and learns from ``{{dev_sign_in}}``
        whether this server offers the developer sign-in (a meta tag, so the page need not probe
        an endpoint that does not exist elsewhere)."""
        index_path = web_dir / "index.html"
        if not index_path.is_file():
            return None
        files = {p.relative_to(web_dir).as_posix(): p.read_bytes()
                 for p in sorted(web_dir.rglob("*")) if p.is_file() and p.suffix in CONTENT_TYPES}
        digest = hashlib.sha256()
        for name, body in files.items():
            digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
        version = digest.hexdigest()[:12]
        page = (files.pop("index.html").decode()
                .replace("{{assets}}", f"{ASSETS_PREFIX}/{version}")
                .replace("{{dev_sign_in}}", "on" if dev_sign_in else "off"))
        assets = {name: _file(body, CONTENT_TYPES[Path(name).suffix]) for name, body in files.items()}
        return cls(version, _file(page.encode(), CONTENT_TYPES[".html"]), assets)


def web_routes(web_dir: Path = WEB_DIR, *, dev_sign_in: bool = False) -> list[BaseRoute]:
    """``GET /`` and ``GET /assets/<version>/<file>``, for the gateway to put before its dispatcher."""
    client = WebClient.load(web_dir, dev_sign_in=dev_sign_in)
    if client is None:
        log.warning("no web client to serve", extra={"web_dir": str(web_dir)})
        return []

    async def index(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _not_allowed()
        return client.index.response(request, REVALIDATE)

    async def asset(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _not_allowed()
        found = client.assets.get(request.path_params["path"])
        if request.path_params["version"] != client.version or found is None:
            # An old version's URL too: the page that named it is gone, a reload brings the new one.
            return HttpProblem(404, "Not found", f"no resource at {request.url.path}").response()
        return found.response(request, IMMUTABLE)

    return [Route("/", index, methods=EVERY_METHOD),
            Route(ASSETS_PREFIX + "/{version}/{path:path}", asset, methods=EVERY_METHOD)]


def _not_allowed() -> Response:
    return HttpProblem(405, "Method not allowed", headers={"Allow": "GET, HEAD"}).response()
