"""May a deployment be called right now? Its circuit breaker and its capacity caps decide.

Admission is the last check before an attempt, so it reflects what other requests did
meanwhile; admitting counts the request against `rpm`/`tpm` and takes a half-open probe.
"""

from __future__ import annotations

from perpetuo.routing.breaker import BreakerState
from perpetuo.routing.health import RoutingState
from perpetuo.routing.job import RouteJob
from perpetuo.routing.table import Deployment

_CLOSED = BreakerState.CLOSED


def admit(
    state: RoutingState, dep: Deployment, job: RouteJob, *, force: bool = False
) -> str | None:
    """None if `dep` may be called now (and it is counted), else why not: `max_parallel`,
    `circuit_open` or `rate_cap`. `force` probes an open circuit early (see breaker.py)."""
    health = state.health(dep.id)
    breaker = health.breaker
    if dep.uncapped and breaker.state is _CLOSED:
        return None  # the common case: nothing to count, nothing to take
    cfg = dep.config
    if cfg.max_parallel is not None and health.in_flight >= cfg.max_parallel:
        return "max_parallel"
    now = state.clock()
    if not (force or breaker.available(now)):
        return "circuit_open"
    if dep.token_capped and state.capacity.admit(
        dep.id, cfg.rpm, cfg.tpm, job.total_tokens if cfg.tpm else 0, now
    ):
        return "rate_cap"
    if not breaker.acquire(now, force=force):
        return "circuit_open"
    return None


def capacity_wait(state: RoutingState, dep: Deployment, job: RouteJob, now: float) -> float:
    """Seconds until a capped deployment has room again (for Retry-After)."""
    cfg = dep.config
    wait = 0.0
    if dep.token_capped:
        tokens = job.total_tokens if cfg.tpm else 0
        wait = state.capacity.wait_time(dep.id, cfg.rpm, cfg.tpm, tokens, now)
    return wait or 1.0  # max_parallel: a slot frees when a request ends; say a second
