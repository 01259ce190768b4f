"""Rate limits: token buckets per API key, per client IP without one, and per client IP
for failed authentications (whatever credential it tried).

In-process and in memory: each backend process counts on its own, so with N processes
behind a load balancer a key gets up to N times the configured rate. That bounds abuse
well enough for a pool; a shared limiter (Redis, PostgreSQL) can replace :class:`RateLimiter`
without touching the routes. Buckets idle long enough to be full again are evicted, and the
table never holds more than ``max_keys`` buckets (the least recently used go first).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token buckets: ``burst`` requests at once, refilled at ``rate`` per second."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}/s, burst={self.burst}, keys={len(self._buckets)})"

    def acquire(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if allowed, else the seconds until one is free."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def peek(self, key: str) -> float:
        """0.0 if ``key`` has a token now, else the seconds until it has one; spends nothing."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
