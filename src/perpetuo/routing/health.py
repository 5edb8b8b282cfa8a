"""What the router has learned about each deployment, and the one object that holds it all.

RoutingState is owned by the Router and keyed by Deployment.id, so it outlives a reload of
the routing table; `snapshot()` is the read-only view for /health/ready and metrics. All of
it is touched from the event loop only: plain counters, no locks.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from perpetuo.config.model import RoutingConfig
from perpetuo.routing.breaker import BreakerState, CircuitBreaker
from perpetuo.routing.capacity import CapacityCounter, LocalCapacityCounter
from perpetuo.routing.classify import counts_against_health
from perpetuo.routing.stats import Ewma, OutcomeWindow
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind

if TYPE_CHECKING:
    from perpetuo.routing.table import Alias

_CLOSED = BreakerState.CLOSED
_HALF_OPEN = BreakerState.HALF_OPEN
_OPEN = BreakerState.OPEN


class DeploymentHealth:
    """One deployment's recent latency, time to first token, error rate, in-flight count,
    circuit breaker, and how long an upstream Retry-After asked us to stay away."""

    __slots__ = (
        "alpha",
        "breaker",
        "config",
        "id",
        "in_flight",
        "latency",
        "outcomes",
        "retry_at",
        "ttft",
    )

    def __init__(self, deployment_id: str, config: RoutingConfig) -> None:
        self.id = deployment_id
        self.config = config
        self.alpha = config.health.latency_alpha
        self.breaker = CircuitBreaker(config.circuit_breaker, deployment_id)
        self.outcomes = OutcomeWindow(config.health.window)
        self.latency = Ewma()  # seconds, whole non-streamed responses
        self.ttft = Ewma()  # seconds, streams: until the first chunk
        self.in_flight = 0
        self.retry_at = 0.0  # monotonic time before which an upstream asked not to be called

    # -- one request's life ----------------------------------------------------------------

    def begin(self) -> None:
        self.in_flight += 1

    def first_token(self, seconds: float, now: float) -> None:
        self.ttft.update(seconds, now, self.alpha)

    def succeeded(self, now: float, latency: float | None = None) -> None:
        self.in_flight -= 1
        if latency is not None:
            self.latency.update(latency, now, self.alpha)
        breaker = self.breaker
        if breaker.state is _CLOSED:
            breaker.consecutive = 0  # breaker.on_success, inlined: this runs on every request
        else:
            if breaker.state is _HALF_OPEN:
                self.outcomes.reset()  # recovered: judge it on what happens from now on
            breaker.on_success(now)
        self.outcomes.add(True, now)

    def failed(self, error: UpstreamError, now: float) -> None:
        self.in_flight -= 1
        self.record_failure(error, now)

    def released(self, now: float) -> None:
        """The request ended without a verdict on the deployment (client fault, client gone)."""
        self.in_flight -= 1
        self.breaker.on_neutral(now)

    # -- outcomes (also fed by active health checks) ---------------------------------------

    def record_failure(self, error: UpstreamError, now: float) -> None:
        kind = error.kind
        if not counts_against_health(kind):
            self.breaker.on_neutral(now)
            return
        self.outcomes.add(False, now)
        if kind is UpstreamErrorKind.RATE_LIMIT and error.retry_after:
            self.retry_at = max(self.retry_at, now + error.retry_after)
        if kind is UpstreamErrorKind.AUTH:
            self.breaker.trip(now)  # our credential is bad: it will not fix itself soon
            return
        total, failures = self.outcomes.counts(now)
        self.breaker.on_failure(now, total, failures)

    # -- reading ---------------------------------------------------------------------------

    def error_rate(self, now: float) -> float:
        return self.outcomes.error_rate(now)

    def snapshot(self, now: float) -> dict[str, Any]:
        total, failures = self.outcomes.counts(now)
        return {
            "state": str(self.breaker.state),
            "reopens_in_s": round(self.breaker.reopens_in(now), 3) or None,
            "latency_ms": _ms(self.latency.value),
            "ttft_ms": _ms(self.ttft.value),
            "error_rate": round(failures / total, 4) if total else 0.0,
            "requests_in_window": total,
            "in_flight": self.in_flight,
            "retry_after_s": round(self.retry_at - now, 3) if self.retry_at > now else None,
        }


class RoutingState:
    """Every deployment's health, the weighted rotations and the capacity counters."""

    def __init__(
        self,
        config: RoutingConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        capacity: CapacityCounter | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.capacity: CapacityCounter = capacity or LocalCapacityCounter()
        self._health: dict[str, DeploymentHealth] = {}
        # Smooth weighted round-robin position per (alias, priority group).
        self.rotations: dict[str, tuple[tuple[str, ...], list[float]]] = {}

    def health(self, deployment_id: str) -> DeploymentHealth:
        health = self._health.get(deployment_id)
        if health is None:
            health = self._health[deployment_id] = DeploymentHealth(deployment_id, self.config)
        return health

    def configure(self, config: RoutingConfig) -> None:
        """Apply new settings after a config reload, keeping what was learned."""
        window_changed = config.health.window != self.config.health.window
        self.config = config
        for health in self._health.values():
            health.config = config
            health.alpha = config.health.latency_alpha
            health.breaker.config = config.circuit_breaker
            if window_changed:
                health.outcomes = OutcomeWindow(config.health.window)

    def snapshot(self, ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Read-only per-deployment view (breaker state, latency, error rate, in flight)."""
        now = self.clock()
        wanted = ids if ids is not None else list(self._health)
        return {i: self.health(i).snapshot(now) for i in wanted}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def readiness(aliases: Iterable[Alias], state: RoutingState) -> tuple[bool, dict[str, Any]]:
    """(ready, detail): ready while every alias has a deployment whose circuit is not open;
    the detail has each deployment's breaker state, latency, error rate and in-flight count."""
    now = state.clock()
    ids: dict[str, None] = {}
    down: list[str] = []
    for alias in aliases:
        breakers = [state.health(d.id).breaker for d in alias.deployments]
        if all(b.state is _OPEN and not b.available(now) for b in breakers):
            down.append(alias.name)
        ids.update(dict.fromkeys(d.id for d in alias.deployments))
    return not down, {"deployments": state.snapshot(list(ids)), "unavailable": down}
