"""uvicorn's HTTP protocol with a deadline on request headers, against slowloris.

uvicorn bounds an idle keep-alive connection (``timeout_keep_alive``, armed after each response) and
the number of connections (``limit_concurrency``), but not the time a client takes to send a request's
headers: a connection that trickles one header byte every few seconds, or sends nothing at all, stays
open for ever. This protocol arms a deadline when a connection opens and when each request begins, and
disarms it when the headers are complete; past it, the client gets ``408 Request Timeout`` and the
connection is closed. Headers still incomplete after ``max_header_bytes`` get ``431``. The body and the
response (a live event stream may last hours) are not bounded here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class HeaderLimits:
    timeout: float = 10.0
    max_bytes: int = 64 * 1024


def _refusal(status: str, text: str) -> bytes:
    body = text.encode() + b"\r\n"
    return (f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


_REFUSALS = {408: _refusal("408 Request Timeout", "the request headers did not arrive in time"),
             431: _refusal("431 Request Header Fields Too Large", "the request headers are too large")}


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose requests must finish their headers within ``limits.timeout`` seconds."""

    limits: HeaderLimits | None = None  # set by ``configure``; a worker process reads the settings

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if type(self).limits is None:
            from ..settings import Settings

            s = Settings()
            configure(HeaderLimits(s.header_timeout, s.max_header_bytes))
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    @classmethod
    def configure(cls, limits: HeaderLimits) -> None:
        cls.limits = limits

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_deadline is not None:
            self._header_bytes += len(data)
        super().data_received(data)
        limits = type(self).limits or HeaderLimits()
        if self._header_deadline is not None and self._header_bytes > limits.max_bytes:
            self._refuse(431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        if self._header_deadline is None:
            limits = type(self).limits or HeaderLimits()
            self._header_bytes = 0
            self._header_deadline = self.loop.call_later(limits.timeout, self._refuse, 408)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _refuse(self, status: int) -> None:
        self._disarm()
        if self.transport is not None and not self.transport.is_closing():
            self.logger.info("closing the connection from %s: HTTP %s before its headers were in",
                             self.client, status)
            self.transport.write(_REFUSALS[status])
            self.transport.close()


def configure(limits: HeaderLimits) -> None:
    HeaderDeadlineProtocol.configure(limits)
