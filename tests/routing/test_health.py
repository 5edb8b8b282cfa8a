"""Deployment health: averages, outcome windows, what counts as a failure, the snapshot."""

from __future__ import annotations

from perpetuo.routing.breaker import BreakerState
from perpetuo.routing.stats import Ewma, OutcomeWindow
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from tests.routing.support import FakeClock, state_with

K = UpstreamErrorKind


def test_ewma_moves_alpha_of_the_way_and_goes_stale():
    average = Ewma()
    average.update(1.0, 0.0, 0.5)
    average.update(0.0, 1.0, 0.5)
    average.update(0.0, 2.0, 0.5)
    assert average.value == 0.25 and average.samples == 3
    assert average.fresh(10.0, stale_after=8.0) == 0.25
    assert average.fresh(10.1, stale_after=8.0) is None


def test_outcome_window_forgets_whole_slices():
    window = OutcomeWindow(10.0, buckets=10)
    for t in (0.5, 1.5, 2.5):
        window.add(False, t)
    window.add(True, 3.5)
    assert window.counts(4.0) == (4, 3) and window.error_rate(4.0) == 0.75
    assert window.counts(9.99) == (4, 3)
    assert window.counts(10.0) == (3, 2)  # the slice [0, 1) expired
    assert window.counts(100.0) == (0, 0) and window.error_rate(100.0) == 0.0


def test_client_faults_and_unsupported_do_not_count_but_server_errors_do():
    clock = FakeClock()
    state = state_with(clock, **{"circuit_breaker": {"consecutive_failures": 2}})
    health = state.health("a/m")
    for kind in (K.INVALID_REQUEST, K.CONTEXT_LENGTH, K.CONTENT_POLICY, K.UNSUPPORTED):
        health.begin()
        health.failed(UpstreamError(kind, "x", status=400), clock())
    assert health.outcomes.counts(clock()) == (0, 0)
    assert health.breaker.state is BreakerState.CLOSED and health.in_flight == 0
    for kind in (K.SERVER, K.TIMEOUT):
        health.begin()
        health.failed(UpstreamError(kind, "x"), clock())
    assert health.breaker.state is BreakerState.OPEN


def test_rejected_credential_opens_at_once_and_rate_limit_sets_retry_at():
    clock = FakeClock()
    state = state_with(clock)
    bad_key = state.health("a/m")
    bad_key.record_failure(UpstreamError(K.AUTH, "no", status=401), clock())
    assert bad_key.breaker.state is BreakerState.OPEN
    limited = state.health("b/m")
    limited.record_failure(UpstreamError(K.RATE_LIMIT, "slow", retry_after=7.0), clock())
    assert limited.retry_at == clock() + 7.0
    assert limited.breaker.state is BreakerState.CLOSED


def test_recovery_clears_the_error_window():
    clock = FakeClock()
    state = state_with(clock, **{"circuit_breaker": {"consecutive_failures": 1, "cooldown": 5}})
    health = state.health("a/m")
    health.record_failure(UpstreamError(K.SERVER, "x"), clock())
    clock.advance(5)
    assert health.breaker.acquire(clock())
    health.begin()
    health.succeeded(clock(), 0.2)
    assert health.breaker.state is BreakerState.CLOSED
    assert health.outcomes.counts(clock()) == (1, 0)


def test_snapshot_is_a_plain_read_only_view():
    clock = FakeClock()
    state = state_with(clock)
    health = state.health("a/m")
    health.begin()
    health.begin()
    health.succeeded(clock(), 0.250)
    health.first_token(0.040, clock())
    health.record_failure(UpstreamError(K.RATE_LIMIT, "x", retry_after=2.0), clock())
    view = state.snapshot()["a/m"]
    assert view == {
        "state": "closed",
        "reopens_in_s": None,
        "latency_ms": 250.0,
        "ttft_ms": 40.0,
        "error_rate": 0.5,
        "requests_in_window": 2,
        "in_flight": 1,
        "retry_after_s": 2.0,
    }
    view["in_flight"] = 99
    assert health.in_flight == 1
