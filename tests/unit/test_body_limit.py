"""The body limit as plain ASGI: what reaches the app, and what is refused before the app is called."""

from __future__ import annotations

import asyncio
import json

from gridflow.api.limits import BodyLimit


def call(limit: BodyLimit, messages: list[dict], headers: list[tuple[bytes, bytes]] = ()):
    """Run one request through ``limit``; returns (what the app read or None if it never ran, sent)."""
    inbox = list(messages)
    sent: list[dict] = []
    seen: dict = {}

    async def receive():
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen["body"] = body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limit.app = app
    scope = {"type": "http", "method": "POST", "path": "/api/v1/cases", "headers": list(headers),
             "query_string": b"", "server": ("test", 80), "scheme": "http", "root_path": ""}
    asyncio.run(limit(scope, receive, send))
    return seen.get("body"), sent


def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body():
    read, sent = call(BodyLimit(None, max_bytes=10), [], [(b"content-length", b"11")])
    assert read is None and sent[0]["status"] == 413
    problem = json.loads(sent[1]["body"])
    assert problem["code"] == "payload_too_large" and problem["limit"] == 10
    assert problem["instance"] == "/api/v1/cases"


def test_a_chunked_body_reaches_the_app_whole_when_it_fits_and_never_when_it_does_not():
    chunks = [{"type": "http.request", "body": b"12345", "more_body": True},
              {"type": "http.request", "body": b"67890", "more_body": False}]
    read, sent = call(BodyLimit(None, max_bytes=10), list(chunks))
    assert read == b"1234567890" and sent[0]["status"] == 200
    read, sent = call(BodyLimit(None, max_bytes=9), list(chunks))
    assert read is None and sent[0]["status"] == 413


def test_a_content_length_that_is_not_a_number_is_a_bad_request():
    read, sent = call(BodyLimit(None, max_bytes=10), [], [(b"content-length", b"ten")])
    assert read is None and sent[0]["status"] == 400


def test_a_route_prefix_overrides_the_default_limit():
    limit = BodyLimit(None, max_bytes=10, routes={"/api/v1/": 100})
    read, sent = call(limit, [{"type": "http.request", "body": b"x" * 50}], [(b"content-length", b"50")])
    assert read == b"x" * 50 and sent[0]["status"] == 200
