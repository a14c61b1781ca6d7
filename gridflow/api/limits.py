"""A ceiling on request bodies, enforced before anything reads or parses them.

``BodyLimit`` is plain ASGI: a ``Content-Length`` over the limit is answered 413 at once, without
reading a byte; a body without one (chunked) is read into memory only up to the limit, then handed on
unchanged, or refused with 413 as soon as it goes over. Either way a route never sees a body larger
than its limit, and the caller gets ``payload_too_large`` problem+json with the ``limit`` in bytes.

The limit is ``GRIDFLOW_MAX_BODY_BYTES`` for every route; a route that needs another (a hotline file
import, say) gets its own by path prefix — ``create_app`` passes :data:`ROUTE_BODY_LIMITS`, where the
longest matching prefix wins: ``{"/api/v1/imports/": 20 * 1024 * 1024}``.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import problem

#: Per-route body limits in bytes, by path prefix (the longest matching prefix wins over the default).
ROUTE_BODY_LIMITS: dict[str, int] = {}


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, routes: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # longest prefix first, so the most specific route decides
        self.routes = sorted((routes or {}).items(), key=lambda kv: len(kv[0]), reverse=True)

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.routes:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = _content_length(scope)
        if declared == -1:
            await _refuse(scope, receive, send, 400, "bad_request",
                          "the Content-Length header is not a number of bytes")
        elif declared is not None and declared > limit:
            await _too_large(scope, receive, send, limit)
        elif declared is not None:  # the server holds the client to what it declared
            await self.app(scope, receive, send)
        else:
            await self._buffered(scope, receive, send, limit)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """A body of unknown length (chunked, or none at all): read up to the limit, then replay it."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(scope, receive, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length; None when not declared, -1 when it is not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 20 else -1
    return None


def _replay(messages: list[Message], receive: Receive) -> Callable[[], Awaitable[Message]]:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    await _refuse(scope, receive, send, 413, "payload_too_large",
                  f"the request body is larger than {limit} bytes, the limit for this route", limit=limit)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str,
                  **extensions: Any) -> None:
    response = problem(Request(scope), status, code, detail, headers={"Connection": "close"}, **extensions)
    await response(scope, receive, send)
