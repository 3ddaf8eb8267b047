"""The HTTP/1.1 transport of ``todo serve`` and ``todo proxy``: uvicorn's h11 protocol, whose refusals of a
request it cannot parse are problems like every other answer.

uvicorn answers a request head h11 refuses (larger than 16 KiB, say a 100 KB ``Authorization`` header, or
malformed) with ``400 text/plain`` before any application sees it. h11 knows which status is due (431 for
a head too large, 400 otherwise: ``error_status_hint``); this protocol answers with it, as
``application/problem+json`` (issue 10, found 6).
"""

from __future__ import annotations

import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .problems import HEAD_TOO_LARGE, PROBLEM_TYPE

MAX_HEAD_BYTES = 16 * 1024  # uvicorn's and h11's default, stated here because docs/limits.md states it


class ProblemH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused_with = 400
        parse = self.conn.next_event

        def next_event() -> Any:  # remembers the status h11 names for what it refuses
            try:
                event = parse()
            except h11.RemoteProtocolError as exc:
                self._refused_with = exc.error_status_hint
                raise
            # h11 measures only a head that arrives in pieces; one that came whole is measured here.
            if isinstance(event, h11.Request) and _head_size(event) > MAX_HEAD_BYTES:
                self._refused_with = HEAD_TOO_LARGE.status
                raise h11.RemoteProtocolError("request head too large", HEAD_TOO_LARGE.status)
            return event

        self.conn.next_event = next_event  # type: ignore[method-assign]

    def send_400_response(self, msg: str) -> None:
        status = self._refused_with if self._refused_with in (400, HEAD_TOO_LARGE.status) else 400
        title = HEAD_TOO_LARGE.title if status == HEAD_TOO_LARGE.status else "Bad request"
        detail = (f"the request line and headers exceed {MAX_HEAD_BYTES} bytes" if status == HEAD_TOO_LARGE.status
                  else "the request is not valid HTTP/1.1")
        body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
        headers = [(b"content-type", PROBLEM_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        for event in (h11.Response(status_code=status, headers=headers), h11.Data(data=body), h11.EndOfMessage()):
            try:
                self.transport.write(self.conn.send(event))
            except h11.LocalProtocolError:  # the connection's state forbids an answer: close without one
                break
        self.transport.close()


def _head_size(request: h11.Request) -> int:
    return len(request.method) + len(request.target) + sum(len(k) + len(v) + 4 for k, v in request.headers)
