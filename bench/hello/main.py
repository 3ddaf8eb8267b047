"""The baseline of P1: a hello-world functions-framework function (no database, no todo import)."""

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


@aio.http
async def hello(request: Request) -> Response:
    return JSONResponse({"hello": "world"})
