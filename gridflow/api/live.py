"""Server-Sent Events for dispatch boards: committed case changes, filtered to what each caller may see.

The service publishes every committed change to its listeners from whichever
thread committed it (a request, the timer runner). The hub hands each change
to every subscriber's event loop; each stream then checks the change against
its caller's scope and masks contacts before sending it.

A caller holds at most ``GRIDFLOW_SSE_STREAMS_PER_CALLER`` streams at once (per API process); the next
is refused with 429 before it starts, and a stream's slot is freed when it ends, however it ends.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from typing import Any, AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool

from ..service.auth import Caller, RateLimited
from ..service.context import Change, Services
from ..service.masking import events_for, hidden_reporter
from ..service.scopes import change_facts, needs_lookup, scope_of, sees_change


class Subscription:
    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Change] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, change: Change) -> None:
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:  # a client too slow to keep up loses changes, and is told so
            self.dropped += 1


class EventHub:
    def __init__(self, maxsize: int = 1000) -> None:
        self.maxsize = maxsize
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._streams: dict[str, int] = {}

    def publish(self, change: Change) -> None:
        """A :class:`Services` listener: called in the committing thread, never blocks it."""
        for sub in list(self._subs):
            try:
                sub.loop.call_soon_threadsafe(sub.offer, change)
            except RuntimeError:  # that client's loop has closed
                self.unsubscribe(sub)

    def subscribe(self) -> Subscription:
        sub = Subscription(asyncio.get_running_loop(), self.maxsize)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def claim_stream(self, who: str, cap: int) -> Callable[[], None]:
        """A stream slot for ``who``, or 429 when it holds ``cap`` already; returns its (idempotent)
        release."""
        with self._lock:
            held = self._streams.get(who, 0)
            if held >= cap:
                raise RateLimited(f"{held} live event streams are open for these credentials "
                                  f"(at most {cap}); close one first", retry_after=5, open_streams=held)
            self._streams[who] = held + 1
        released = threading.Event()

        def release() -> None:
            with self._lock:
                if released.is_set():
                    return
                released.set()
                left = self._streams.get(who, 1) - 1
                if left > 0:
                    self._streams[who] = left
                else:
                    self._streams.pop(who, None)
        return release

    def streams_of(self, who: str) -> int:
        return self._streams.get(who, 0)


def stream_owner(caller: Caller) -> str:
    """Whose slots a stream takes: the user behind an API key, or the case of a resident's token."""
    return f"case:{caller.case_number}" if caller.case_number else f"user:{caller.id}"


def open_stream(hub: EventHub, svc: Services, caller: Caller, *, cap: int,
                **options: Any) -> AsyncIterator[str]:
    """:func:`stream` in one of the caller's slots (429 :class:`RateLimited` when none is free). The slot is
    freed when the stream ends, and — should the response never start it — when it is collected."""
    release = hub.claim_stream(stream_owner(caller), cap)
    body = stream(hub, svc, caller, release=release, **options)
    weakref.finalize(body, release)
    return body


def _message(change: Change, caller: Caller) -> str:
    body: dict[str, Any] = {
        "number": change.number, "workflow": change.workflow, "state": change.state,
        "version": change.version, "holder_unit": change.holder_unit,
        "escalation_unit": change.escalation_unit, "source": change.source,
        "events": events_for(caller, change.events, from_report=change.source == "report", hide_actor=(
            hidden_reporter(caller, confidential=change.confidential, number=change.number,
                            reporter_id=change.reporter_id))),
    }
    data = json.dumps(body, ensure_ascii=False, default=str)
    return f"id: {change.number}:{change.version}\nevent: case\ndata: {data}\n\n"


async def stream(hub: EventHub, svc: Services, caller: Caller, *, limit: int | None = None,
                 heartbeat: float = 15.0, is_disconnected=None,
                 release: Callable[[], None] | None = None) -> AsyncIterator[str]:
    """The SSE body: ``case`` events for changes in the caller's scope, comments as keep-alives."""
    try:
        scope = await run_in_threadpool(scope_of, svc, caller)
    except BaseException:
        if release is not None:
            release()
        raise
    lookup = needs_lookup(scope)
    sub = hub.subscribe()
    try:
        yield "retry: 3000\n: connected\n\n"
        sent = 0
        while limit is None or sent < limit:
            try:
                change = await asyncio.wait_for(sub.queue.get(), heartbeat)
            except asyncio.TimeoutError:
                if is_disconnected is not None and await is_disconnected():
                    return
                yield ": keep-alive\n\n"
                continue
            if sub.dropped:
                yield f"event: lagged\ndata: {json.dumps({'dropped': sub.dropped})}\n\n"
                sub.dropped = 0
            visible = (await run_in_threadpool(sees_change, svc, scope, change) if lookup
                       else scope.contains(change_facts(change)))
            if visible:
                yield _message(change, caller)
                sent += 1
    finally:
        hub.unsubscribe(sub)
        if release is not None:
            release()

