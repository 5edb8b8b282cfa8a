"""A key's plan (its checks without the request's amounts) is kept between requests: each
request still gets its own amounts and counter lifetimes, changed settings take effect at
once (whatever object carries them), a new day gets the new day's counters, and the cache
stays bounded."""

from __future__ import annotations

import dataclasses

from perpetuo.limits import WorkspaceLimits, planning
from perpetuo.limits.backend import Kind
from perpetuo.limits.memory import MemoryBackend
from perpetuo.schema.errors import ErrorCode, GatewayError
from tests.limits.support import at, engine, make_request

KEY = {"rpm": 100, "tpm": 10_000, "daily_tokens": 50_000, "budget_usd": 5, "budget_period": "daily"}
WORKSPACE = WorkspaceLimits(budget_usd=100, budget_period="daily", credits_required=True)


def amounts(request, now):
    return {
        p.check.key.split(":")[1]: p.check.amount for p in planning.plan_checks(request, now, 900)
    }


def test_each_request_gets_its_own_amounts_and_lifetimes():
    clock = at("2026-03-10T12:00:00")
    small = make_request(key_limits=KEY, workspace=WORKSPACE, prompt_tokens=10, max_cost_micros=70)
    big = dataclasses.replace(
        small, request_id="req_big", prompt_tokens=900, max_output_tokens=100, max_cost_micros=9_000
    )
    first = planning.plan_checks(small, clock(), 900)
    second = planning.plan_checks(big, clock() + 60, 900)
    assert [p.check.key for p in first] == [p.check.key for p in second]  # the same counters
    assert amounts(small, clock()) == {"rpm": 1, "tpm": 10, "tok": 10, "usd": 70, "credits": 70}
    assert amounts(big, clock()) == {
        "rpm": 1,
        "tpm": 1000,
        "tok": 1000,
        "usd": 9000,
        "credits": 9000,
    }
    # A daily window's counter lives until the day ends (plus an hour), from each request's time.
    day_left_ms = 12 * 3600 * 1000 + 3600 * 1000
    budget = [p.check for p in first if p.code is ErrorCode.BUDGET_EXCEEDED]
    later = [p.check for p in second if p.code is ErrorCode.BUDGET_EXCEEDED]
    assert [c.ttl_ms for c in budget] == [day_left_ms, day_left_ms]
    assert [c.ttl_ms for c in later] == [day_left_ms - 60_000, day_left_ms - 60_000]
    credits = [p.check for p in first if p.measure == "credits"]
    assert credits[0].kind is Kind.WINDOW and credits[0].ttl_ms == 7 * 24 * 3600 * 1000


async def test_changed_limits_apply_to_the_next_request():
    clock = at("2026-03-10T12:00:00")
    limits = engine(MemoryBackend(), clock)
    for _ in range(2):
        await limits.admit(make_request(key_limits={"rpm": 2}))
    refused = None
    try:
        await limits.admit(make_request(key_limits={"rpm": 2}))
    except GatewayError as exc:
        refused = exc
    assert refused is not None and refused.code is ErrorCode.RATE_LIMIT_REQUESTS
    # The key's limits were raised (a reloaded key record is a new mapping): admitted now.
    await limits.admit(make_request(key_limits={"rpm": 5}))
    planned = planning.plan_checks(make_request(key_limits={"rpm": 5}), clock(), 900)
    assert [p.check.limit for p in planned] == [5]


def test_a_new_day_gets_the_new_days_counters():
    request = make_request(key_limits={"daily_tokens": 1000})
    before = planning.plan_checks(request, at("2026-03-10T23:59:59")(), 900)
    after = planning.plan_checks(request, at("2026-03-11T00:00:01")(), 900)
    assert before[0].check.key.endswith(":d20260310")
    assert after[0].check.key.endswith(":d20260311")
    assert after[0].seed.since.isoformat() == "2026-03-11T00:00:00+00:00"


def test_the_cache_is_bounded():
    now = at("2026-03-10T12:00:00")()
    for index in range(planning.PLAN_CACHE_SIZE + 500):
        planning.plan_checks(make_request(key_id=f"key_{index}", key_limits=KEY), now, 900)
    assert len(planning._plans) <= planning.PLAN_CACHE_SIZE


def test_plans_follow_the_settings_values_not_their_objects():
    now = at("2026-03-10T12:00:00")()
    planning._plans.clear()
    for _ in range(50):  # a path that builds its settings per request shares one plan
        request = make_request(key_id="key_v", key_limits={"rpm": 3}, workspace=WORKSPACE)
        planning.plan_checks(request, now, 900)
    assert len(planning._plans) == 1
    limits = {"rpm": 3}
    planning.plan_checks(make_request(key_id="key_v", key_limits=limits), now, 900)
    limits["rpm"] = 8  # changed in place: never the stale plan
    planned = planning.plan_checks(make_request(key_id="key_v", key_limits=limits), now, 900)
    assert [p.check.limit for p in planned] == [8]
    # A value that cannot be part of a key is planned without the cache, the same way.
    odd = make_request(key_id="key_v", key_limits={"rpm": 4, "models": ["a"]})
    assert [p.check.limit for p in planning.plan_checks(odd, now, 900)] == [4]
