"""Per-key token buckets: ``60/minute`` lets a key burst 60 requests, then refills one a second.

The clock is injectable (any ``() -> seconds`` callable, monotonic by default) so tests move
time by hand instead of sleeping.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptoai.errors import BadInputError

_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


def parse_rate(text: str) -> tuple[int, float]:
    """``"60/minute"`` -> ``(60, 60.0)``: requests and the period in seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*", str(text).lower())
    if not m or int(m.group(1)) < 1:
        raise BadInputError(
            f"rate limit {text!r} is not N/PERIOD: use e.g. 60/minute, 10/second, 1000/hour"
        )
    every = int(m.group(2)) if m.group(2) else 1
    return int(m.group(1)), _PERIODS[m.group(3)] * max(every, 1)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token bucket per key: ``allow(key)`` returns ``(allowed, retry_after_seconds)``."""

    def __init__(self, rate: str = "60/minute", clock: Callable[[], float] = time.monotonic):
        self.capacity, period = parse_rate(rate)
        self.refill = self.capacity / period  # tokens per second
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> tuple[bool, int]:
        now = self.clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = self._buckets[key] = _Bucket(float(self.capacity), now)
            b.tokens = min(self.capacity, b.tokens + (now - b.stamp) * self.refill)
            b.stamp = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return True, 0
            return False, max(1, math.ceil((1.0 - b.tokens) / self.refill))
