"""The circuit breaker of one deployment: closed → open → half-open → closed.

Closed: requests flow; it opens after `consecutive_failures` failures in a row, or when the
error rate over the health window reaches `error_rate` with at least `min_requests` outcomes.
Open: the deployment is skipped until `cooldown` seconds have passed. Half-open: one probe
request goes through; its success closes the breaker, its failure opens it again. A probe
forced through before the cooldown ends (every deployment of an alias is open) that fails
re-opens the breaker without logging it again: it never stopped being open.

Time is passed in (`now`, monotonic seconds) so the state machine is tested with a fake clock.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from perpetuo.config.model import CircuitBreakerConfig

log = logging.getLogger("perpetuo.routing")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_CLOSED, _OPEN, _HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class CircuitBreaker:
    __slots__ = (
        "config",
        "consecutive",
        "forced",
        "name",
        "open_until",
        "probe_started",
        "state",
    )

    def __init__(self, config: CircuitBreakerConfig, name: str = "") -> None:
        self.config = config
        self.name = name
        self.state = _CLOSED
        self.consecutive = 0  # failures in a row while closed
        self.open_until = 0.0
        self.probe_started: float | None = None  # a half-open probe is in flight
        self.forced = False  # half-open only by a forced probe, inside the open cooldown

    # -- asking --------------------------------------------------------------------------

    def available(self, now: float) -> bool:
        """Would a request be let through now? (Does not change state.)"""
        state = self.state
        if state is _CLOSED:
            return True
        if state is _OPEN:
            return now >= self.open_until
        return not self._probe_busy(now)

    def acquire(self, now: float, *, force: bool = False) -> bool:
        """Let one request through if the state allows; half-open lets one probe at a time.
        `force` probes an open breaker before its cooldown ends (every deployment is open)."""
        state = self.state
        if state is _CLOSED:
            return True
        if state is _OPEN:
            early = now < self.open_until
            if early and not force:
                return False
            self.state = _HALF_OPEN
            self.forced = early
        elif self._probe_busy(now):
            return False
        self.probe_started = now
        return True

    def _probe_busy(self, now: float) -> bool:
        # A probe that never reported back (its request was abandoned) expires after a cooldown.
        started = self.probe_started
        return started is not None and now - started < self.config.cooldown

    # -- reporting -----------------------------------------------------------------------

    def on_success(self, now: float) -> None:
        if self.state is _HALF_OPEN:
            self._close()
        elif self.state is _CLOSED:
            self.consecutive = 0
        # Open: a request admitted before the breaker opened; the cooldown still stands.

    def on_failure(self, now: float, window_total: int, window_failures: int) -> None:
        """A failure that says something about this deployment (never a client fault)."""
        if self.state is _HALF_OPEN:
            self.trip(now)
            return
        if self.state is _OPEN:
            return
        self.consecutive += 1
        cfg = self.config
        if self.consecutive >= cfg.consecutive_failures or (
            window_total >= cfg.min_requests and window_failures >= cfg.error_rate * window_total
        ):
            self.trip(now)

    def on_neutral(self, now: float) -> None:
        """An outcome that proves nothing (client fault, abandoned request): free the probe."""
        if self.state is _HALF_OPEN:
            self.probe_started = None

    def trip(self, now: float) -> None:
        """Open now (also used directly when our provider credential is rejected)."""
        # A failed forced probe is no news (logged, it repeated on every request to a dead alias).
        if self.state is _CLOSED or (self.state is _HALF_OPEN and not self.forced):
            log.warning(
                "circuit opened for %s for %.1fs", self.name or "deployment", self.config.cooldown
            )
        self.state = _OPEN
        self.open_until = now + self.config.cooldown
        self.probe_started = None
        self.consecutive = 0
        self.forced = False

    def hasten(self, now: float) -> None:
        """End an open breaker's cooldown now (an active health check passed)."""
        if self.state is _OPEN and self.open_until > now:
            self.open_until = now

    def _close(self) -> None:
        log.info("circuit closed for %s", self.name or "deployment")
        self.state = _CLOSED
        self.consecutive = 0
        self.probe_started = None
        self.forced = False

    def reopens_in(self, now: float) -> float:
        return max(0.0, self.open_until - now) if self.state is _OPEN else 0.0
