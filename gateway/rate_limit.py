"""Per-principal rate limiting: a token bucket per subject of the bearer token.

Each subject's bucket holds at most `burst` tokens and refills at `rate` tokens a second; a request
takes one. An empty bucket refuses the request with 429 and Retry-After, the whole seconds until a
token is back. Buckets live in the replica's memory: behind a load balancer with N replicas a
subject may get up to N times the rate (set the rate per replica accordingly). The number of
buckets is bounded: the least recently seen subject is forgotten first, and a forgotten subject
starts again with a full bucket, as an idle one would have anyway.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

RATE_LIMITED = "RATE_LIMITED"


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_subjects: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self._max_subjects = max_subjects
        self._clock = clock
        # subject -> (tokens left, when counted); most recently seen last.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, subject: str) -> int | None:
        """Take a token for `subject`: None when the request may proceed, otherwise the seconds
        (an integer, at least 1) to wait before the next token is there."""
        # No await in here: on one event loop, taking a token is atomic.
        now = self._clock()
        tokens, since = self._buckets.pop(subject, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - since) * self.rate)
        wait: int | None = None
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = max(1, math.ceil((1.0 - tokens) / self.rate))
        self._buckets[subject] = (tokens, now)
        while len(self._buckets) > self._max_subjects:
            self._buckets.popitem(last=False)
        return wait
