"""The in-flight cap per key: slots taken on admission, freed by settle or release (once),
and leaked slots (a request that never ended) expiring after the longest request time."""

from __future__ import annotations

import pytest

from perpetuo.schema.errors import ErrorCode, GatewayError
from tests.limits.support import Clock, admit_all, engine, make_request


async def test_cap_admits_exactly_max_parallel_and_frees_on_end(backends):
    limits = engine(backends(), Clock())
    key = {"max_parallel": 5}
    admitted, refused = await admit_all([limits], [make_request(key_limits=key) for _ in range(50)])
    assert (len(admitted), len(refused)) == (5, 45)
    error = refused[0]
    assert error.code == ErrorCode.CONCURRENCY_LIMIT and error.status == 429
    assert "5 requests in flight" in error.message and error.headers["retry-after"] == "1"
    await admitted[0].settle(10, 0)
    await admitted[1].release()
    await admitted[1].release()  # idempotent: frees one slot, not two
    await admitted[1].settle(10, 0)  # settling after a release frees nothing more
    more, refused = await admit_all([limits], [make_request(key_limits=key) for _ in range(5)])
    assert (len(more), len(refused)) == (2, 3)


async def test_leaked_slots_expire_after_the_longest_request_time(backends):
    clock = Clock()
    limits = engine(backends(), clock, max_request_seconds=300)
    key = {"max_parallel": 2}
    for _ in range(2):
        await limits.admit(make_request(key_limits=key))  # never settled: a crashed request
    with pytest.raises(GatewayError):
        await limits.admit(make_request(key_limits=key))
    clock.advance(299)
    with pytest.raises(GatewayError):
        await limits.admit(make_request(key_limits=key))
    clock.advance(1)
    await limits.admit(make_request(key_limits=key))


async def test_leaked_reservations_of_quotas_expire_too(backends):
    clock = Clock()
    limits = engine(backends(), clock, max_request_seconds=300)
    key = {"daily_tokens": 1000}
    await limits.admit(make_request(key_limits=key, max_output_tokens=1000))  # never settled
    with pytest.raises(GatewayError):
        await limits.admit(make_request(key_limits=key, max_output_tokens=1))
    clock.advance(300)
    await limits.admit(make_request(key_limits=key, max_output_tokens=1000))
