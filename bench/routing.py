"""Routing scenarios, measured in the same run and gateway process as the main table.

- `1 deployment` / `3 deployments`: the same mock behind an alias of one deployment and an
  alias of three (weighted strategy, so every request runs a strategy and three health
  records rotate), back to back: the routing engine's cost on the happy path.
- `30% failing`: an alias whose first deployment answers 500 to 30% of requests and whose
  second is healthy. The circuit breaker is set never to open here, so every one of those
  failures is failed over inside the request: clients should see no error at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.system import process_cpu_seconds

FAIL_RATE = 0.3
CONCURRENCY = (1, 16)

Loadgen = Callable[[str, int], dict[str, Any]]  # (alias, concurrency) -> result


def routing_config(mock_port: int, flaky_port: int) -> dict[str, Any]:
    """Providers, aliases and routing settings merged into the benchmark's gateway config."""

    def provider(port: int) -> dict[str, Any]:
        return {"type": "openai", "api_base": f"http://127.0.0.1:{port}/v1", "api_key": "sk-b"}

    return {
        "routing": {"circuit_breaker": {"consecutive_failures": 1_000_000, "error_rate": 1.0}},
        "providers": {
            "mock-2": provider(mock_port),
            "mock-3": provider(mock_port),
            "flaky": provider(flaky_port),
        },
        "models": {
            "three": {
                "strategy": "weighted",
                "deployments": [
                    {"provider": name, "model": "gpt-4o-mini"}
                    for name in ("mock", "mock-2", "mock-3")
                ],
            },
            "failover": {
                "deployments": [
                    {"provider": "flaky", "model": "gpt-4o-mini"},
                    {"provider": "mock-2", "model": "gpt-4o-mini"},
                ]
            },
        },
    }


ONE = ("1 deployment", "gpt-4o-mini")
THREE = ("3 deployments", "three")
FAILOVER = (f"{FAIL_RATE:.0%} failing + 1 healthy", "failover")


def scenarios() -> list[tuple[str, str, int]]:
    """(name, alias, concurrency), in the order they run. The pair runs A B B A so that a
    machine getting faster or slower during the run does not favour either."""
    rows = []
    for concurrency in CONCURRENCY:
        rows += [(*s, concurrency) for s in (ONE, THREE, THREE, ONE)]
    rows.append((*FAILOVER, 16))
    return rows


def run(gateway_pid: int, duration: float, loadgen: Loadgen) -> list[dict[str, Any]]:
    """One row per (scenario, concurrency): the mean of its runs."""
    runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for name, alias, concurrency in scenarios():
        cpu_before = process_cpu_seconds(gateway_pid)
        result = loadgen(alias, concurrency)
        cpu_used = process_cpu_seconds(gateway_pid) - cpu_before
        served = (result["requests"] + result["errors"]) * (1 + 1 / duration)  # + warm-up
        result["cpu_ms_per_request"] = cpu_used * 1000 / served if served else float("nan")
        runs.setdefault((name, alias, concurrency), []).append(result)
        print(
            f"{name:24} c={concurrency:<3} {result['rps']:8.0f} rps "
            f"p50 {result['p50_ms']:.3f} ms errors {result['errors']} "
            f"cpu/req {result['cpu_ms_per_request']:.3f} ms",
            flush=True,
        )
    return [_mean_row(key, results) for key, results in runs.items()]


def _mean_row(key: tuple[str, str, int], results: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(field: str) -> float:
        return sum(r[field] for r in results) / len(results)

    gateway = {f: mean(f) for f in ("rps", "p50_ms", "p99_ms")}
    gateway["errors"] = sum(r["errors"] for r in results)
    gateway["requests"] = sum(r["requests"] for r in results)
    name, alias, concurrency = key
    return {
        "scenario": name,
        "alias": alias,
        "concurrency": concurrency,
        "runs": len(results),
        "gateway": gateway,
        "gateway_cpu_ms_per_request": mean("cpu_ms_per_request"),
    }


def router_overhead(iterations: int = 100_000) -> dict[str, float]:
    """Microseconds per request spent in the router itself around a no-op upstream call,
    in-process (best of three), per alias shape: the part of the gateway's CPU per request
    that routing accounts for, free of the machine noise in the end-to-end figures."""
    import time

    import uvloop

    from perpetuo.config.model import GatewayConfig
    from perpetuo.routing.job import RouteJob
    from perpetuo.routing.router import Router
    from perpetuo.routing.table import RoutingTable
    from perpetuo.routing.trace import RoutingTrace
    from perpetuo.transport.client import HTTPClient

    upstream = {"type": "openai", "api_base": "http://127.0.0.1:9/v1", "api_key": "sk"}
    shapes = {"1 deployment": ("default", 1)}
    shapes.update({f"3 deployments, {s}": (s, 3) for s in ("default", "weighted", "fastest")})
    config = GatewayConfig.model_validate(
        {
            "providers": {p: upstream for p in "abc"},
            "models": {
                name: {
                    "strategy": strategy,
                    "deployments": [{"provider": p, "model": "m"} for p in "abc"[:count]],
                }
                for name, (strategy, count) in shapes.items()
            },
        }
    )
    table = RoutingTable.build(config)
    router = Router(HTTPClient(), table, config.routing)

    async def no_op(deployment: Any, record: Any) -> Any:
        return deployment

    async def measure() -> dict[str, float]:
        figures = {}
        for name in shapes:
            alias = table.get(name)
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                for _ in range(iterations):
                    job = RouteJob(False)
                    await router._route(RoutingTrace(), alias, job, no_op, None)
                best = min(best, (time.perf_counter() - started) / iterations * 1e6)
            figures[name] = best
        return figures

    return uvloop.run(measure())
