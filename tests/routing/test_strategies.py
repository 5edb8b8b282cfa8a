"""Each strategy's ordering, incl. weighted distribution and fastest convergence."""

from __future__ import annotations

from collections import Counter

from perpetuo.routing import strategies as S
from perpetuo.routing.router import Router
from perpetuo.transport.client import HTTPClient
from tests.routing.support import FakeClock, alias_of, build, choice, job, state_with


def ids(deployments) -> list[str]:
    return [d.id for d in deployments]


def test_default_keeps_configured_order_within_priority_groups():
    alias = alias_of(
        {"priority": 1}, {"priority": 0}, {"priority": 1, "model": "x"}, {"priority": 0}
    )
    router = Router(HTTPClient(), build({}), state_with().config, state=state_with())
    planned = router.plan(alias, "default", job())
    assert ids(planned) == ["b/gpt-4o-mini", "d/gpt-4o-mini", "a/gpt-4o-mini", "c/x"]
    # Other strategies order inside each group; groups stay in priority order.
    planned = router.plan(alias, "cheapest", job())
    assert {d.id for d in planned[:2]} == {"b/gpt-4o-mini", "d/gpt-4o-mini"}


def test_weighted_matches_weights_over_10000_draws_and_is_smooth():
    alias = alias_of({"weight": 5}, {"weight": 3}, {"weight": 2})
    state = state_with()
    firsts = []
    for _ in range(10_000):
        order = S.weighted(alias.deployments, choice(state))
        assert len(order) == 3 and len(set(ids(order))) == 3  # the full failover order
        firsts.append(order[0].provider)
    counts = Counter(firsts)
    assert abs(counts["a"] - 5000) <= 100 and abs(counts["b"] - 3000) <= 100
    assert abs(counts["c"] - 2000) <= 100
    # Smooth: every run of 10 consecutive picks holds each share to within one.
    for start in range(0, 10_000 - 10, 37):
        window = Counter(firsts[start : start + 10])
        assert abs(window["a"] - 5) <= 1 and abs(window["b"] - 3) <= 1


def test_weighted_rotation_is_per_alias_group_and_survives_new_members():
    state = state_with()
    two = alias_of({"weight": 1}, {"weight": 1})
    picks = [S.weighted(two.deployments, choice(state, key="x#0"))[0].provider for _ in range(4)]
    assert sorted(picks) == ["a", "a", "b", "b"]
    three = alias_of({"weight": 1}, {"weight": 1}, {"weight": 2})
    picks = [S.weighted(three.deployments, choice(state, key="x#0"))[0].provider for _ in range(8)]
    assert Counter(picks) == {"a": 2, "b": 2, "c": 4}


def test_fastest_probes_unmeasured_then_converges_to_the_lowest_latency():
    clock = FakeClock()
    state = state_with(clock, **{"health": {"exploration_rate": 0.0}})
    alias = alias_of({}, {}, {})
    latency = {"a": 0.300, "b": 0.050, "c": 0.120}
    served = []
    for _ in range(30):
        dep = S.fastest(alias.deployments, choice(state))[0]
        health = state.health(dep.id)
        health.begin()
        health.succeeded(clock(), latency[dep.provider])
        clock.advance(0.1)
        served.append(dep.provider)
    assert served[:3] == ["a", "b", "c"]  # each unmeasured deployment measured once
    assert set(served[3:]) == {"b"}
    order = S.fastest(alias.deployments, choice(state))
    assert [d.provider for d in order] == ["b", "c", "a"]  # the rest is the failover order


def test_fastest_uses_time_to_first_token_for_streams_and_one_probe_at_a_time():
    state = state_with(**{"health": {"exploration_rate": 0.0}})
    alias = alias_of({}, {})
    a, b = (state.health(d.id) for d in alias.deployments)
    a.first_token(0.5, 1000.0)
    b.first_token(0.1, 1000.0)
    a.latency.update(0.01, 1000.0, 1.0)  # fast JSON answers do not matter for streams
    assert [d.provider for d in S.fastest(alias.deployments, choice(state, job(stream=True)))] == [
        "b",
        "a",
    ]
    # Unmeasured for JSON: b goes first as a probe only while nothing is in flight to it.
    assert S.fastest(alias.deployments, choice(state))[0].provider == "b"
    b.begin()
    assert [d.provider for d in S.fastest(alias.deployments, choice(state))] == ["a", "b"]


def test_fastest_explores_at_the_configured_rate_and_stale_figures_expire():
    clock = FakeClock()
    state = state_with(clock, **{"health": {"exploration_rate": 0.1, "stale_after": 60}})
    alias = alias_of({}, {})
    a, b = (state.health(d.id) for d in alias.deployments)
    a.latency.update(0.5, clock(), 1.0)
    b.latency.update(0.1, clock(), 1.0)
    firsts = Counter(S.fastest(alias.deployments, choice(state))[0].provider for _ in range(5000))
    assert 400 <= firsts["a"] <= 600  # ~10% exploration
    clock.advance(61)
    b.latency.update(0.1, clock(), 1.0)
    state.config = state.config.model_copy(
        update={"health": state.config.health.model_copy(update={"exploration_rate": 0.0})}
    )
    assert S.fastest(alias.deployments, choice(state))[0].provider == "a"  # a is stale: re-probe


def test_cheapest_by_catalog_price_with_override_and_unknown_last():
    alias = alias_of(
        {"model": "gpt-4o"},  # 2.50 / 10.00
        {"model": "my-private-model"},  # not in the catalog
        {"model": "gpt-4o-mini-2024-07-18"},  # 0.15 / 0.60 via normalization
        {"model": "gpt-4.1-nano", "price": {"input": 20, "output": 20}},  # override: dearest
    )
    order = S.cheapest(alias.deployments, choice(state_with(), job(prompt=1000, output=1000)))
    assert [d.model for d in order] == [
        "gpt-4o-mini-2024-07-18",
        "gpt-4o",
        "gpt-4.1-nano",
        "my-private-model",
    ]


def test_cheapest_weighs_prompt_against_output_size():
    alias = alias_of(
        {"model": "x", "price": {"input": 1, "output": 10}},
        {"model": "y", "price": {"input": 4, "output": 4}},
    )
    state = state_with()
    long_prompt = S.cheapest(alias.deployments, choice(state, job(prompt=10_000, output=10)))
    long_answer = S.cheapest(alias.deployments, choice(state, job(prompt=10, output=10_000)))
    assert long_prompt[0].model == "x" and long_answer[0].model == "y"


def test_reliable_prefers_lowest_recent_error_rate():
    clock = FakeClock()
    state = state_with(clock, **{"circuit_breaker": {"consecutive_failures": 100}})
    alias = alias_of({}, {}, {})
    outcomes = {"a": [False, True, True, True], "b": [True] * 4, "c": [False, False, True, True]}
    for dep in alias.deployments:
        health = state.health(dep.id)
        for ok in outcomes[dep.provider]:
            if ok:
                health.begin()
                health.succeeded(clock())
            else:
                health.outcomes.add(False, clock())
    assert [d.provider for d in S.reliable(alias.deployments, choice(state))] == ["b", "a", "c"]
    clock.advance(61)  # the window passed: all equal again, configured order
    assert [d.provider for d in S.reliable(alias.deployments, choice(state))] == ["a", "b", "c"]


def test_least_busy_prefers_fewest_in_flight_and_spreads_ties():
    state = state_with()
    alias = alias_of({}, {}, {})
    a, b, c = (state.health(d.id) for d in alias.deployments)
    a.in_flight, b.in_flight, c.in_flight = 3, 1, 2
    assert [d.provider for d in S.least_busy(alias.deployments, choice(state))] == ["b", "c", "a"]
    a.in_flight = b.in_flight = c.in_flight = 0
    firsts = Counter(
        S.least_busy(alias.deployments, choice(state))[0].provider for _ in range(3000)
    )
    assert all(800 <= firsts[p] <= 1200 for p in "abc")


def test_priority_is_a_synonym_and_every_name_is_known():
    assert S.STRATEGIES["priority"] is S.STRATEGIES["default"]
    assert set(S.STRATEGY_NAMES) >= {
        "default",
        "fastest",
        "cheapest",
        "reliable",
        "weighted",
        "least-busy",
    }
