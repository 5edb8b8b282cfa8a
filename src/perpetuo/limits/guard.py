"""What happens when the shared backend (Redis) fails: fail open or fail closed, never hang.

Fail open: the request is checked against this process's own counters instead (each instance
then enforces the limits alone), and the failure is counted. Fail closed: 503 at once.
After a failure Redis is left alone for a short pause, so an outage costs each request
nothing rather than a timeout; warnings are logged at most once a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from perpetuo.limits.backend import BackendUnavailable, LimitBackend
from perpetuo.limits.refusals import limits_unavailable

log = logging.getLogger("perpetuo.limits")

FailurePolicy = Literal["open", "closed"]
PAUSE_SECONDS = 2.0  # after a failure, skip Redis this long before trying again
LOG_EVERY_SECONDS = 60.0

T = TypeVar("T")


@dataclass(slots=True)
class LimitStats:
    """Counters for metrics (in memory, per process)."""

    admitted_shared: int = 0  # admissions checked by the primary (Redis, or memory alone)
    admitted_leased: int = 0  # of those, admitted on this instance's leases of Redis counters
    redis_failures: int = 0  # calls to Redis that failed
    local_fallbacks: int = 0  # admissions checked by local counters because Redis was away
    unavailable: int = 0  # requests refused with 503 (fail closed)
    alerts_fired: int = 0
    alerts_failed: int = 0  # listeners that raised (delivery is the alert path's)
    refused: int = 0
    settles_queued: int = 0  # settlements that could not reach Redis, queued to be sent again
    settles_retried: int = 0  # of those, sent to Redis later (applied there once)
    settles_dropped: int = 0  # of those, dropped: the queue was full, or the process stopped


class BackendGuard:
    def __init__(
        self,
        primary: LimitBackend,
        fallback: LimitBackend | None,
        policy: FailurePolicy,
        stats: LimitStats,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback  # None: the primary is already local
        self.policy = policy
        self.stats = stats
        self._clock = clock
        self._paused_until = 0.0
        self._last_log = -LOG_EVERY_SECONDS

    @property
    def paused(self) -> bool:
        """True while the primary is left alone after a failure."""
        return self.fallback is not None and self._clock() < self._paused_until

    def pause_left(self) -> float:
        """Seconds until the primary may be tried again (0 when it may be now)."""
        return max(0.0, self._paused_until - self._clock())

    def pick(self) -> LimitBackend:
        """The backend for a new admission: the primary unless it is paused after a failure."""
        return self._degraded() if self.paused else self.primary

    async def run(
        self, backend: LimitBackend, call: Callable[[LimitBackend], Awaitable[T]]
    ) -> tuple[T, LimitBackend]:
        """`call` on `backend`; on failure of the primary, the policy's answer."""
        try:
            result = await call(backend)
        except BackendUnavailable as exc:
            if backend is not self.primary or self.fallback is None:
                raise
            self.failed(exc)
            backend = self._degraded()
            result = await call(backend)
        else:
            if backend is self.primary and self._paused_until:
                log.warning("limits: %s is back; counting there again", backend.name)
                self._paused_until = 0.0
        return result, backend

    def failed(self, exc: Exception) -> None:
        """Count a failure of the primary, pause it, and warn (at most once a minute)."""
        self.stats.redis_failures += 1
        now = self._clock()
        self._paused_until = now + PAUSE_SECONDS
        if now - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = now
            action = "checking limits locally" if self.policy == "open" else "refusing requests"
            log.warning(
                "limits: %s unavailable (%s); %s (%d failures so far)",
                self.primary.name,
                exc,
                action,
                self.stats.redis_failures,
            )

    def _degraded(self) -> LimitBackend:
        assert self.fallback is not None
        if self.policy == "closed":
            self.stats.unavailable += 1
            raise limits_unavailable()
        self.stats.local_fallbacks += 1
        return self.fallback
