"""The developer sign-in of the embedded default: a token for a chosen user name and roles.

It exists only where the server signs with the development secret it generated itself (the embedded
default with neither ``TODO_JWT_SECRET`` nor ``TODO_JWT_JWKS_URL``): that secret protects nothing but
one person's local data. With a configured secret or a JWKS the route is not mounted at all, so the
path answers 404 like any other unknown path. Even then only loopback clients get a token (``todo
serve --host 0.0.0.0`` must not hand tokens to the network), and only for a JSON body (a form
posted from another site cannot send one without a CORS preflight, which this server never grants).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..settings import Settings
from .auth import ROLES, mint
from .problems import HttpProblem, field_errors, invalid
from .schemas import Strict
from .static import EVERY_METHOD

PATH = "/dev/sign-in"
TTL_SECONDS = 12 * 3600


class DevSignInIn(Strict):
    sub: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
    roles: Annotated[list[Literal["user", "admin", "auditor"]], Field(max_length=3)] = []


def available(settings: Settings) -> bool:
    """True only for the embedded default signing with its own generated secret."""
    return settings.embedded and not settings.jwt_secret and not settings.jwt_jwks_url


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dev_sign_in_routes(settings: Settings) -> list[BaseRoute]:
    if not available(settings):
        return []

    async def endpoint(request: Request) -> Response:
        if request.method in ("GET", "HEAD"):
            return JSONResponse({"roles": sorted(ROLES), "ttl_seconds": TTL_SECONDS})
        if request.method != "POST":
            return HttpProblem(405, "Method not allowed", headers={"Allow": "GET, POST"}).response()
        if not _loopback(request):
            return HttpProblem(403, "Forbidden", "the developer sign-in answers loopback clients only").response()
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            return HttpProblem(415, "Unsupported media type", "send application/json").response()
        body = await request.body()
        if len(body) > 4096:
            return HttpProblem(413, "Request body too large", "the limit is 4096 bytes").response()
        try:
            data = json.loads(body)
        except ValueError as exc:  # UnicodeDecodeError too
            return HttpProblem(400, "Malformed JSON", str(exc)).response()
        try:
            chosen = DevSignInIn.model_validate(data)
        except ValidationError as exc:
            return invalid(field_errors(exc)).response()
        token = mint(settings, chosen.sub, list(dict.fromkeys(chosen.roles)) or None, TTL_SECONDS)
        return JSONResponse({"token": token, "expires_in": TTL_SECONDS}, headers={"Cache-Control": "no-store"})

    return [Route(PATH, endpoint, methods=EVERY_METHOD)]
