"""Retry delays: exponential with full jitter, Retry-After as a floor up to a cap, deadline."""

from __future__ import annotations

import random

from perpetuo.config.model import RetryConfig
from perpetuo.routing.backoff import RetryPolicy


def policy(**settings: float) -> RetryPolicy:
    config = RetryConfig.model_validate(
        {"base_delay": 0.5, "max_delay": 4.0, "max_retry_after": 10.0, **settings}
    )
    return RetryPolicy(config, random.Random(3))


def test_full_jitter_grows_exponentially_up_to_the_cap():
    p = policy()
    for tries, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)):
        draws = [p.delay(tries, None, 0.0, 1e9) for _ in range(2000)]
        assert all(d is not None and 0.0 <= d <= ceiling for d in draws)
        mean = sum(draws) / len(draws)  # type: ignore[arg-type]
        assert abs(mean - ceiling / 2) < ceiling * 0.05  # uniform over [0, ceiling]


def test_retry_after_is_a_floor_and_a_long_one_is_not_waited_for():
    p = policy()
    assert all(p.delay(1, 3.0, 0.0, 100.0) == 3.0 for _ in range(50))
    assert p.delay(1, 10.0, 0.0, 100.0) == 10.0
    assert p.delay(1, 10.5, 0.0, 100.0) is None


def test_never_waits_past_the_deadline():
    p = policy()
    assert p.delay(1, 3.0, 0.0, 2.0) is None
    assert p.delay(1, 3.0, 0.0, 3.5) == 3.0
    assert all((d := p.delay(4, None, 10.0, 10.3)) is None or d < 0.3 for _ in range(200))
