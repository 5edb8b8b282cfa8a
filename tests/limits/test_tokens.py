"""Token limits through the engine: TPM reserves the estimate and settles to the real usage;
daily and monthly quotas follow UTC calendar windows; counters start from the usage history."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert

from perpetuo.limits import PLANS, WorkspaceLimits
from perpetuo.limits.history import DatabaseHistory
from perpetuo.limits.memory import MemoryBackend
from perpetuo.schema.errors import ErrorCode, GatewayError
from perpetuo.store.database import Database
from perpetuo.store.migrate import upgrade
from perpetuo.store.schema import usage_rollups
from tests.limits.support import Clock, at, engine, make_request


async def test_tpm_reserves_the_estimate_and_settles_the_difference(backends):
    limits = engine(backends(), Clock())
    key = {"tpm": 1000}
    first = await limits.admit(
        make_request(key_limits=key, prompt_tokens=100, max_output_tokens=500)
    )
    assert dict(first.headers)["x-ratelimit-remaining-tokens"] == "400"
    with pytest.raises(GatewayError) as refused:
        await limits.admit(make_request(key_limits=key, prompt_tokens=100, max_output_tokens=400))
    assert refused.value.code == ErrorCode.RATE_LIMIT_TOKENS and refused.value.status == 429
    assert "1000 tokens per minute" in refused.value.message
    assert "this API key" in refused.value.message
    assert refused.value.headers["retry-after"] == "6"  # 100 tokens over, at 1000/min
    await first.settle(150, 0)  # it used 150 of the 600 reserved: 450 come back
    second = await limits.admit(
        make_request(key_limits=key, prompt_tokens=100, max_output_tokens=400)
    )
    assert dict(second.headers)["x-ratelimit-remaining-tokens"] == "350"
    await first.settle(0, 0)  # settling twice changes nothing
    third = await limits.admit(make_request(key_limits=key, max_output_tokens=350))
    assert dict(third.headers)["x-ratelimit-remaining-tokens"] == "0"


async def test_a_request_over_the_whole_tpm_gets_a_clear_error(backends):
    limits = engine(backends())
    prompt = PLANS["free"].tpm - 1000
    with pytest.raises(GatewayError) as refused:
        await limits.admit(
            make_request(
                workspace=WorkspaceLimits(plan="free"), prompt_tokens=prompt, max_output_tokens=4096
            )
        )
    assert refused.value.code == ErrorCode.RATE_LIMIT_TOKENS
    assert "too large" in refused.value.message and str(prompt + 4096) in refused.value.message


async def test_daily_quota_resets_at_utc_midnight_and_monthly_at_month_end(backends):
    clock = at("2025-01-31T23:59:00")
    limits = engine(backends(), clock)
    key = {"daily_tokens": 1000, "monthly_tokens": 1500}
    admission = await limits.admit(
        make_request(key_limits=key, prompt_tokens=400, max_output_tokens=500)
    )
    with pytest.raises(GatewayError) as refused:
        await limits.admit(make_request(key_limits=key, max_output_tokens=200))
    assert refused.value.code == ErrorCode.QUOTA_DAILY_TOKENS
    assert refused.value.headers["retry-after"] == "60"  # a minute to midnight
    assert "1000 tokens per UTC day" in refused.value.message
    await admission.settle(700, 0)  # the day used 700 of its 1000
    fits = await limits.admit(make_request(key_limits=key, max_output_tokens=300))
    await fits.settle(300, 0)
    clock.advance(120)  # 2025-02-01 00:01: a new day and a new month
    big = await limits.admit(make_request(key_limits=key, max_output_tokens=1000))
    headers = dict(big.headers)
    assert headers["x-ratelimit-limit-tokens"] == "1000"  # the day is the tighter quota now
    assert headers["x-ratelimit-remaining-tokens"] == "0"
    assert headers["x-ratelimit-reset-tokens"] == "23h59m0s"
    await big.settle(1000, 0)
    clock.advance(24 * 3600)  # 2025-02-02: a fresh day, but February has 500 tokens left
    with pytest.raises(GatewayError) as refused:
        await limits.admit(make_request(key_limits=key, max_output_tokens=600))
    assert refused.value.code == ErrorCode.QUOTA_MONTHLY_TOKENS
    assert "1500 tokens per UTC month" in refused.value.message


async def test_plan_quota_for_the_workspace_and_user_scope(backends):
    limits = engine(backends())
    # The free plan with its daily quota lowered to 1000 (its other limits stay the plan's).
    workspace = WorkspaceLimits(
        plan="free", limits={"daily_tokens": 1000}, user_limits={"daily_tokens": 300}
    )
    ok = await limits.admit(
        make_request(user_id="usr_1", workspace=workspace, max_output_tokens=300)
    )
    await ok.settle(300, 0)
    with pytest.raises(GatewayError) as refused:
        await limits.admit(
            make_request(key_id="key_2", user_id="usr_1", workspace=workspace, max_output_tokens=10)
        )
    assert "this user" in refused.value.message
    ok = await limits.admit(
        make_request(user_id="usr_2", workspace=workspace, max_output_tokens=300)
    )
    await ok.settle(300, 0)
    with pytest.raises(GatewayError) as refused:  # 1000 a day for the free workspace
        await limits.admit(
            make_request(user_id="usr_3", workspace=workspace, max_output_tokens=401)
        )
    assert refused.value.code == ErrorCode.QUOTA_DAILY_TOKENS
    assert "this workspace" in refused.value.message


async def rollup(
    db: Database, hour: dt.datetime, dim: str, value: str, tokens: int, cost: int
) -> None:
    async with db.begin() as conn:
        await conn.execute(
            insert(usage_rollups).values(
                workspace_id="ws_1",
                bucket=hour,
                dim=dim,
                value=value,
                requests=1,
                prompt_tokens=tokens // 2,
                completion_tokens=tokens - tokens // 2,
                cost_micros=cost,
            )
        )


async def test_counters_start_from_the_usage_rollups(store_url):
    db = Database(store_url)
    await upgrade(db)
    clock = at("2025-03-15T12:30:00")
    today = dt.datetime(2025, 3, 15, 9, tzinfo=dt.UTC)
    await rollup(db, today, "key", "key_1", 800, 4_000_000)
    await rollup(db, today - dt.timedelta(days=1), "key", "key_1", 5000, 1_000_000)
    await rollup(db, today - dt.timedelta(days=20), "key", "key_1", 9999, 9_000_000)
    await rollup(db, today, "all", "", 1000, 7_000_000)
    await rollup(db, today, "key", "key_other", 100_000, 0)
    try:
        limits = engine(MemoryBackend(), clock, history=DatabaseHistory(db))
        key = {"daily_tokens": 1000, "monthly_tokens": 6000, "budget_usd": 5.5}
        workspace = WorkspaceLimits(budget_usd=10, budget_period="monthly")
        # Today the key used 800 of 1000; this month 5800 of 6000, and $5 of $5.50.
        with pytest.raises(GatewayError) as refused:
            await limits.admit(make_request(key_limits=key, max_output_tokens=201))
        assert refused.value.code == ErrorCode.QUOTA_MONTHLY_TOKENS
        with pytest.raises(GatewayError) as refused:
            await limits.admit(
                make_request(key_limits=key, max_output_tokens=10, max_cost_micros=600_000)
            )
        assert refused.value.code == ErrorCode.BUDGET_EXCEEDED
        assert "$5.00 is spent or reserved" in refused.value.message
        # The workspace spent $7 this month (all its keys): $3 of its $10 budget remains.
        with pytest.raises(GatewayError) as refused:
            await limits.admit(
                make_request(key_id=None, workspace=workspace, max_cost_micros=3_000_001)
            )
        assert "this workspace" in refused.value.message
        ok = await limits.admit(
            make_request(
                key_limits=key, workspace=workspace, max_output_tokens=200, max_cost_micros=500_000
            )
        )
        assert dict(ok.headers)["x-ratelimit-remaining-tokens"] == "0"
    finally:
        await db.dispose()
