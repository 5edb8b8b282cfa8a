"""Helpers for routing unit tests: tables from config dicts, a fake clock, a seeded state."""

from __future__ import annotations

import random
from typing import Any

from perpetuo.config.model import GatewayConfig, RoutingConfig
from perpetuo.routing.health import RoutingState
from perpetuo.routing.job import RouteJob
from perpetuo.routing.strategies import Choice
from perpetuo.routing.table import Alias, RoutingTable

PROVIDERS = {
    name: {"type": "openai", "api_base": f"http://127.0.0.1:9/{name}/v1", "api_key": "sk-x"}
    for name in ("a", "b", "c", "d")
}


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def build(models: dict[str, Any], routing: dict[str, Any] | None = None) -> RoutingTable:
    config = GatewayConfig.model_validate(
        {"providers": PROVIDERS, "models": models, "routing": routing or {}}
    )
    return RoutingTable.build(config)


def alias_of(*deployments: dict[str, Any], **spec: Any) -> Alias:
    """An alias named "m" with the given deployments (provider defaults to a, b, c, ...)."""
    deps = [{"provider": "abcd"[i], "model": "gpt-4o-mini", **d} for i, d in enumerate(deployments)]
    alias = build({"m": {"deployments": deps, **spec}}).get("m")
    assert alias is not None
    return alias


def state_with(clock: FakeClock | None = None, seed: int = 7, **routing: Any) -> RoutingState:
    return RoutingState(
        RoutingConfig.model_validate(routing), clock=clock or FakeClock(), rng=random.Random(seed)
    )


def job(stream: bool = False, prompt: int = 100, output: int = 100) -> RouteJob:
    return RouteJob.of_size(stream, prompt, output)


def choice(state: RoutingState, j: RouteJob | None = None, key: str = "m#0") -> Choice:
    return Choice(state, j or job(), state.clock(), key)
