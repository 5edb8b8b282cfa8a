"""How long to wait before trying a deployment that already failed in this request again.

Exponential backoff with full jitter (a uniform draw between 0 and base * 2^(n-1), capped),
so that many clients retrying at once spread out. An upstream Retry-After is honored as a
minimum wait, but only up to `max_retry_after`: a longer one is not worth holding the request
for. No wait ever ends past the request's deadline. Failing over to a deployment not yet
tried in this request never waits.
"""

from __future__ import annotations

import random

from perpetuo.config.model import RetryConfig


class RetryPolicy:
    def __init__(self, config: RetryConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self.rng = rng or random.Random()

    def delay(
        self, tries: int, retry_after: float | None, now: float, deadline: float
    ) -> float | None:
        """Seconds to wait before try number `tries + 1` of one deployment, or None when it
        should not be retried (its Retry-After is too long, or the deadline would pass)."""
        cfg = self.config
        if retry_after is not None and retry_after > cfg.max_retry_after:
            return None
        ceiling = min(cfg.max_delay, cfg.base_delay * (2 ** max(tries - 1, 0)))
        wait = self.rng.uniform(0.0, ceiling)
        if retry_after is not None:
            wait = max(wait, retry_after)
        if now + wait >= deadline:
            return None
        return wait
