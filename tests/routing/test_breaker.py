"""The circuit breaker state machine, driven by a fake clock."""

from __future__ import annotations

import logging

from perpetuo.config.model import CircuitBreakerConfig
from perpetuo.routing.breaker import BreakerState, CircuitBreaker

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def breaker(**settings: float) -> CircuitBreaker:
    defaults = {"consecutive_failures": 3, "error_rate": 0.5, "min_requests": 10, "cooldown": 30}
    return CircuitBreaker(CircuitBreakerConfig.model_validate({**defaults, **settings}))


def fail(b: CircuitBreaker, now: float, times: int = 1) -> None:
    for _ in range(times):
        b.on_failure(now, window_total=1, window_failures=1)


def test_opens_after_consecutive_failures_and_a_success_resets_the_count():
    b = breaker()
    fail(b, 0.0, 2)
    b.on_success(0.0)
    fail(b, 0.0, 2)
    assert b.state is CLOSED
    fail(b, 0.0)
    assert b.state is OPEN
    assert not b.available(0.0) and not b.acquire(0.0)


def test_opens_on_error_rate_once_enough_requests_were_seen():
    b = breaker(consecutive_failures=100)
    b.on_failure(1.0, window_total=9, window_failures=9)  # too few outcomes to judge
    assert b.state is CLOSED
    b.on_success(1.0)
    b.on_failure(1.0, window_total=10, window_failures=4)
    assert b.state is CLOSED
    b.on_failure(1.0, window_total=10, window_failures=5)
    assert b.state is OPEN


def test_cooldown_then_one_half_open_probe_that_closes_on_success():
    b = breaker(cooldown=30)
    fail(b, 100.0, 3)
    assert b.reopens_in(110.0) == 20.0
    assert not b.acquire(129.9)
    assert b.available(130.0)
    assert b.acquire(130.0)
    assert b.state is HALF_OPEN
    assert not b.available(130.5) and not b.acquire(130.5)  # one probe at a time
    b.on_success(131.0)
    assert b.state is CLOSED and b.acquire(131.0)


def test_failed_probe_reopens_for_a_full_cooldown():
    b = breaker(cooldown=30)
    fail(b, 0.0, 3)
    assert b.acquire(30.0)
    fail(b, 31.0)
    assert b.state is OPEN and b.open_until == 61.0
    assert not b.acquire(60.0) and b.acquire(61.0)


def test_neutral_outcome_frees_the_probe_and_an_abandoned_probe_expires():
    b = breaker(cooldown=10)
    fail(b, 0.0, 3)
    assert b.acquire(10.0)
    b.on_neutral(10.5)  # e.g. the probe request was the client's fault
    assert b.state is HALF_OPEN and b.acquire(10.5)
    assert not b.acquire(15.0)
    assert b.acquire(20.6)  # the probe never reported back: another one may go


def test_force_probes_early_and_trip_and_hasten():
    b = breaker(cooldown=30)
    b.trip(0.0)
    assert b.state is OPEN and not b.acquire(1.0)
    assert b.acquire(1.0, force=True) and b.state is HALF_OPEN
    assert not b.acquire(1.0, force=True)  # still one probe at a time
    b.trip(2.0)
    b.hasten(3.0)
    assert b.available(3.0)


def test_success_or_failure_while_open_changes_nothing():
    b = breaker(cooldown=30)
    b.trip(0.0)
    b.on_success(1.0)
    fail(b, 2.0)
    assert b.state is OPEN and b.open_until == 30.0


def test_failed_forced_probes_of_an_open_breaker_log_the_opening_once(caplog):
    b = breaker(cooldown=30)
    caplog.set_level(logging.INFO, logger="perpetuo.routing")
    fail(b, 0.0, 3)
    for i in range(5):  # every deployment is open: each request forces a probe, which fails
        now = 1.0 + i
        assert b.acquire(now, force=True)
        fail(b, now)
        assert b.state is OPEN and b.open_until == now + 30  # each failure still re-opens
    assert _openings(caplog) == 1
    assert b.acquire(40.0) and b.state is HALF_OPEN  # a probe after the cooldown: real news
    fail(b, 40.0)
    assert _openings(caplog) == 2
    assert b.acquire(70.0, force=True)  # recovered...
    b.on_success(70.0)
    assert b.state is CLOSED
    fail(b, 71.0, 3)  # ...and opened again
    assert _openings(caplog) == 3


def _openings(caplog) -> int:
    return sum(r.getMessage().startswith("circuit opened") for r in caplog.records)
