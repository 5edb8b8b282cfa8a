"""The router's attempt loop with scripted outcomes: failover, retries, breakers, caps,
fallback aliases, and what the trace records."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from perpetuo.config.model import RoutingConfig
from perpetuo.routing.breaker import BreakerState
from perpetuo.routing.health import RoutingState
from perpetuo.routing.router import Router
from perpetuo.routing.trace import Attempt, RoutingTrace
from perpetuo.schema.errors import GatewayError, UpstreamError, UpstreamErrorKind
from perpetuo.transport.client import HTTPClient
from perpetuo.transport.errors import ConnectError
from tests.routing.support import build, job

K = UpstreamErrorKind


def dep(provider: str, **extra: Any) -> dict[str, Any]:
    return {"provider": provider, "model": "gpt-4o-mini", **extra}


def router_for(models: dict[str, Any], **routing: Any) -> Router:
    config = RoutingConfig.model_validate(routing)
    state = RoutingState(config, rng=random.Random(1))
    return Router(HTTPClient(), build(models, routing), config, state=state)


class Script:
    """An attempt function: per deployment id, outcomes in order (an exception to raise,
    else success); unscripted attempts succeed."""

    def __init__(self, **outcomes: list[BaseException | str]) -> None:
        self.outcomes = {f"{k}/gpt-4o-mini": list(v) for k, v in outcomes.items()}
        self.calls: list[str] = []

    async def __call__(self, deployment: Any, record: Attempt) -> str:
        self.calls.append(deployment.provider)
        queue = self.outcomes.get(deployment.id) or []
        outcome = queue.pop(0) if queue else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return deployment.provider


def server_error() -> UpstreamError:
    return UpstreamError(K.SERVER, "boom", status=500)


async def route(router: Router, alias: str, script: Script, **kw: Any) -> tuple[str, RoutingTrace]:
    trace = kw.pop("trace", None) or RoutingTrace()
    served = await router._route(trace, router.table.get(alias), job(), script, kw.get("default"))
    return served, trace


async def test_failover_in_order_with_trace_and_health():
    router = router_for({"m": {"deployments": [dep("a"), dep("b"), dep("c")]}})
    script = Script(a=[server_error()], b=[ConnectError("refused")])
    served, trace = await route(router, "m", script)
    assert served == "c" and script.calls == ["a", "b", "c"]
    assert trace.candidates == ["a/gpt-4o-mini", "b/gpt-4o-mini", "c/gpt-4o-mini"]
    assert [(a.deployment, a.status, a.error_kind) for a in trace.attempts] == [
        ("a/gpt-4o-mini", 500, "server"),
        ("b/gpt-4o-mini", None, "connect"),
        ("c/gpt-4o-mini", 200, None),
    ]
    assert trace.fallback_used and trace.served_by is trace.attempts[2]
    assert trace.strategy == "default" and trace.strategy_source == "alias"
    snapshot = router.state.snapshot()
    assert snapshot["a/gpt-4o-mini"]["error_rate"] == 1.0
    assert snapshot["c/gpt-4o-mini"]["latency_ms"] is not None
    assert all(v["in_flight"] == 0 for v in snapshot.values())


async def test_client_fault_stops_at_once():
    router = router_for({"m": {"deployments": [dep("a"), dep("b")]}})
    script = Script(a=[UpstreamError(K.INVALID_REQUEST, "bad temperature", status=400)])
    with pytest.raises(GatewayError) as exc:
        await route(router, "m", script)
    assert exc.value.status == 400 and script.calls == ["a"]


async def test_max_attempts_bounds_the_tries():
    router = router_for({"m": {"deployments": [dep(p) for p in "abcd"]}}, max_attempts=2)
    script = Script(**{p: [server_error()] for p in "abcd"})
    with pytest.raises(GatewayError) as exc:
        await route(router, "m", script)
    assert exc.value.status == 502 and script.calls == ["a", "b"]


async def test_same_deployment_retried_after_its_retry_after_when_enabled():
    limited = UpstreamError(K.RATE_LIMIT, "slow down", status=429, retry_after=0.15)
    router = router_for({"m": {"deployments": [dep("a")]}}, retry={"attempts_per_deployment": 2})
    script = Script(a=[limited])
    started = time.perf_counter()
    served, trace = await route(router, "m", script)
    assert served == "a" and script.calls == ["a", "a"]
    assert time.perf_counter() - started >= 0.15
    assert not trace.fallback_used  # a retry of the same deployment is not a fallback
    # Off by default: the 429 and its Retry-After go to the client.
    router = router_for({"m": {"deployments": [dep("a")]}})
    with pytest.raises(GatewayError) as exc:
        await route(router, "m", Script(a=[limited]))
    assert exc.value.status == 429 and exc.value.headers["retry-after"] == "1"


async def test_long_retry_after_is_not_waited_for_and_auth_is_not_retried():
    long_wait = UpstreamError(K.RATE_LIMIT, "later", status=429, retry_after=60)
    router = router_for(
        {"m": {"deployments": [dep("a"), dep("b")]}}, retry={"attempts_per_deployment": 3}
    )
    script = Script(a=[long_wait], b=[UpstreamError(K.AUTH, "bad key", status=401)])
    with pytest.raises(GatewayError) as exc:
        await route(router, "m", script)
    assert script.calls == ["a", "b"] and exc.value.status == 502


async def test_deployments_inside_a_retry_after_go_last():
    router = router_for({"m": {"deployments": [dep("a"), dep("b")]}})
    limited = UpstreamError(K.RATE_LIMIT, "slow down", status=429, retry_after=30)
    await route(router, "m", Script(a=[limited]))
    script = Script()
    served, trace = await route(router, "m", script)
    assert served == "b" and trace.candidates == ["b/gpt-4o-mini", "a/gpt-4o-mini"]


async def test_open_breaker_is_skipped_and_recorded():
    router = router_for(
        {"m": {"deployments": [dep("a"), dep("b")]}},
        circuit_breaker={"consecutive_failures": 1, "cooldown": 60},
    )
    await route(router, "m", Script(a=[server_error()]))
    script = Script()
    served, trace = await route(router, "m", script)
    assert served == "b" and script.calls == ["b"]
    assert trace.skipped == [("a/gpt-4o-mini", "circuit_open")]
    assert not trace.fallback_used


async def test_every_circuit_open_probes_the_soonest_without_fallbacks():
    router = router_for(
        {"m": {"deployments": [dep("a"), dep("b")]}},
        circuit_breaker={"consecutive_failures": 1, "cooldown": 60},
    )
    now = router.state.clock()
    router.state.health("a/gpt-4o-mini").breaker.trip(now)
    router.state.health("b/gpt-4o-mini").breaker.trip(now - 10)  # reopens 10 s earlier
    script = Script()
    served, _ = await route(router, "m", script)
    assert served == "b" and script.calls == ["b"]
    assert router.state.health("b/gpt-4o-mini").breaker.state is BreakerState.CLOSED


async def test_every_circuit_open_goes_to_fallback_aliases_first():
    router = router_for(
        {
            "m": {"deployments": [dep("a")], "fallbacks": ["n"]},
            "n": {"deployments": [dep("b")]},
        }
    )
    router.state.health("a/gpt-4o-mini").breaker.trip(router.state.clock())
    script = Script()
    served, trace = await route(router, "m", script)
    assert served == "b" and script.calls == ["b"] and trace.aliases == ["m", "n"]
    assert trace.attempts[0].alias == "n" and trace.as_dict()["served_alias"] == "n"


async def test_capacity_caps_skip_then_refuse_with_retry_after():
    router = router_for({"m": {"deployments": [dep("a", rpm=1), dep("b", max_parallel=1)]}})
    assert (await route(router, "m", Script()))[0] == "a"
    router.state.health("b/gpt-4o-mini").in_flight = 1  # b is busy with another request
    with pytest.raises(GatewayError) as exc:
        await route(router, "m", Script())
    assert exc.value.status == 429 and exc.value.code == "deployment_capacity_exceeded"
    assert 1 <= int(exc.value.headers["retry-after"]) <= 60
    router.state.health("b/gpt-4o-mini").in_flight = 0
    served, trace = await route(router, "m", Script())
    assert served == "b" and trace.skipped == [("a/gpt-4o-mini", "rate_cap")]


async def test_fallback_alias_serves_and_the_requested_aliases_error_is_reported():
    router = router_for(
        {
            "m": {"deployments": [dep("a")], "fallbacks": ["n", "o"]},
            "n": {"deployments": [dep("b")]},
            "o": {"deployments": [dep("c")]},
        }
    )
    served, trace = await route(router, "m", Script(a=[server_error()], b=[server_error()]))
    assert served == "c" and trace.aliases == ["m", "n", "o"] and trace.fallback_used
    script = Script(a=[UpstreamError(K.TIMEOUT, "slow")], b=[server_error()], c=[server_error()])
    with pytest.raises(GatewayError) as exc:
        await route(router, "m", script)
    assert exc.value.status == 504  # m's own failure, not the last fallback's


async def test_context_window_fallback():
    router = router_for(
        {
            "small": {"deployments": [dep("a")], "context_window_fallbacks": ["large"]},
            "large": {"deployments": [dep("b")]},
        }
    )
    too_long = UpstreamError(K.CONTEXT_LENGTH, "too long", status=400)
    served, trace = await route(router, "small", Script(a=[too_long]))
    assert served == "b" and trace.aliases == ["small", "large"]
    # Nothing configured: the client gets the 400 as before.
    router = router_for({"small": {"deployments": [dep("a"), dep("b")]}})
    with pytest.raises(GatewayError) as exc:
        await route(router, "small", Script(a=[too_long]))
    assert exc.value.code == "context_length_exceeded"


async def test_strategy_source_header_then_workspace_then_alias():
    router = router_for({"m": {"deployments": [dep("a"), dep("b")], "strategy": "reliable"}})
    trace = RoutingTrace(requested_strategy="cheapest")
    _, trace = await route(router, "m", Script(), trace=trace, default="fastest")
    assert (trace.strategy, trace.strategy_source) == ("cheapest", "header")
    _, trace = await route(router, "m", Script(), default="fastest")
    assert (trace.strategy, trace.strategy_source) == ("fastest", "workspace")
    _, trace = await route(router, "m", Script())
    assert (trace.strategy, trace.strategy_source) == ("reliable", "alias")


async def test_cancelled_attempt_releases_the_deployment():
    router = router_for({"m": {"deployments": [dep("a")]}})

    async def hang(deployment: Any, record: Attempt) -> str:
        await asyncio.sleep(10)
        return "never"

    task = asyncio.ensure_future(
        router._route(RoutingTrace(), router.table.get("m"), job(), hang, None)
    )
    await asyncio.sleep(0.01)
    assert router.state.health("a/gpt-4o-mini").in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert router.state.health("a/gpt-4o-mini").in_flight == 0


async def test_health_report_is_unready_when_an_alias_has_every_circuit_open():
    router = router_for(
        {"m": {"deployments": [dep("a"), dep("b")]}, "n": {"deployments": [dep("c")]}}
    )
    ready, detail = router.health_report()
    assert ready and set(detail["deployments"]) == {
        "a/gpt-4o-mini",
        "b/gpt-4o-mini",
        "c/gpt-4o-mini",
    }
    router.state.health("a/gpt-4o-mini").breaker.trip(router.state.clock())
    assert router.health_report()[0]
    router.state.health("b/gpt-4o-mini").breaker.trip(router.state.clock())
    ready, detail = router.health_report()
    assert not ready and detail["unavailable"] == ["m"]
    assert detail["deployments"]["a/gpt-4o-mini"]["state"] == "open"
