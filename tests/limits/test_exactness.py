"""Correctness under concurrency: 500 requests at once against a limit of 100 admit exactly
100, in one process, on Redis, and over two instances sharing Redis; and a refusal in one
scope leaves nothing reserved in the others."""

from __future__ import annotations

from perpetuo.limits import WorkspaceLimits
from perpetuo.schema.errors import ErrorCode
from tests.limits.support import Clock, admit_all, engine, make_request


async def test_500_concurrent_requests_admit_exactly_100(backends):
    clock = Clock()
    engines = [engine(backends(), clock), engine(backends(), clock)]  # two gateway instances
    requests = [make_request(key_limits={"rpm": 100}) for _ in range(500)]
    admitted, refused = await admit_all(engines, requests)
    assert len(admitted) == 100 and len(refused) == 400
    assert {e.code for e in refused} == {ErrorCode.RATE_LIMIT_REQUESTS}
    assert {e.status for e in refused} == {429}
    assert all(e.headers["retry-after"] == "1" for e in refused)  # 0.6 s, rounded up
    assert all(engine.stats.redis_failures == 0 for engine in engines)
    # A minute later there is room for another 100, and no more.
    clock.advance(60)
    admitted, _ = await admit_all(engines, [make_request(key_limits={"rpm": 100})] * 150)
    assert len(admitted) == 100


async def test_one_engine_on_one_backend_is_exact_too(backends):
    limits = engine(backends())
    requests = [make_request(key_limits={"rpm": 100, "tpm": 100_000}) for _ in range(500)]
    admitted, refused = await admit_all([limits], requests)
    assert (len(admitted), len(refused)) == (100, 400)


async def test_a_refusing_scope_reserves_nothing_in_the_others(backends):
    clock = Clock()
    limits = engine(backends(), clock)
    workspace = WorkspaceLimits(limits={"rpm": 5})
    key_b = {"daily_tokens": 20, "max_parallel": 2, "budget_usd": 1}

    def from_b():
        return make_request(
            key_id="key_b",
            key_limits=key_b,
            workspace=workspace,
            prompt_tokens=10,
            max_cost_micros=500_000,
        )

    for _ in range(5):  # key A uses up the workspace's minute
        await limits.admit(make_request(key_id="key_a", workspace=workspace))
    admitted, refused = await admit_all([limits], [from_b() for _ in range(20)])
    assert not admitted and {e.code for e in refused} == {ErrorCode.RATE_LIMIT_REQUESTS}
    assert "this workspace allows 5 requests per minute" in refused[0].message
    # Key B's day quota, slots and budget are untouched: exactly two requests fit now.
    clock.advance(60)
    admitted, refused = await admit_all([limits], [from_b() for _ in range(3)])
    assert len(admitted) == 2
    assert refused[0].code in (
        ErrorCode.QUOTA_DAILY_TOKENS,
        ErrorCode.CONCURRENCY_LIMIT,
        ErrorCode.BUDGET_EXCEEDED,
    )
