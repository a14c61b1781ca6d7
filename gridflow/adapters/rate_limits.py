"""Attempt counters in a moving window (the ``limits`` library): in memory in the embedded default, in Redis
when one is configured, so every API worker counts against the same window.

Storage trouble never refuses a caller: a limiter that cannot count lets the request through and says so
in the log (the counters protect the service, they must not take it down with Redis).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Mapping

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)


class RateLimits:
    """Named rates (``{"auth_failure": "20/minute"}``), counted per key (an address, a credential's hash)."""

    def __init__(self, rates: Mapping[str, str], *, storage_url: str | None = None,
                 prefix: str = "gridflow") -> None:
        self.rates: dict[str, RateLimitItem] = {name: parse(rate) for name, rate in rates.items()}
        self.prefix = prefix
        self.shared = storage_url is not None
        # Redis unreachable must cost a request milliseconds, not the client's whole timeout.
        options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5} if storage_url else {}
        self._storage = storage_from_string(storage_url or "memory://", wrap_exceptions=True, **options)
        self._limiter = MovingWindowRateLimiter(self._storage)

    def retry_after(self, rule: str, *key: str) -> int | None:
        """Seconds until ``key`` may try again if its window for ``rule`` is full, else None."""
        item = self.rates[rule]
        try:
            if self._limiter.test(item, self.prefix, rule, *key):
                return None
            reset_at = self._limiter.get_window_stats(item, self.prefix, rule, *key).reset_time
        except StorageError as exc:
            log.warning("rate limits unavailable, not counting %s: %s", rule, exc)
            return None
        return max(1, math.ceil(reset_at - time.time()))

    def hit(self, rule: str, *key: str) -> int | None:
        """Count one attempt; if the window was already full, the seconds until the next may be made."""
        try:
            if self._limiter.hit(self.rates[rule], self.prefix, rule, *key):
                return None
        except StorageError as exc:
            log.warning("rate limits unavailable, not counting %s: %s", rule, exc)
            return None
        return self.retry_after(rule, *key) or 1
