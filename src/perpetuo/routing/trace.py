"""The decision trace: how a request was routed, attempt by attempt."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class Attempt:
    deployment: str
    provider: str
    model: str
    alias: str
    started: float = field(default_factory=time.perf_counter)
    status: int | None = None  # upstream HTTP status, when one came back
    error_kind: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    deadline: float = 0.0  # event-loop time by which this attempt must be over

    def finish(self, status: int | None = None, error_kind: str | None = None) -> None:
        self.status = status
        self.error_kind = error_kind
        self.latency_ms = (time.perf_counter() - self.started) * 1000

    def first_token(self) -> None:
        self.ttft_ms = (time.perf_counter() - self.started) * 1000

    def as_dict(self) -> dict[str, object]:
        return {
            "deployment": self.deployment,
            "provider": self.provider,
            "model": self.model,
            "alias": self.alias,
            "status": self.status,
            "error": self.error_kind,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 2),
        }


@dataclass(slots=True)
class RoutingTrace:
    strategy: str = "default"
    strategy_source: str = "alias"  # header, workspace or alias
    candidates: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    served_by: Attempt | None = None

    @property
    def fallback_used(self) -> bool:
        """True when something other than the first choice served the request."""
        return self.served_by is not None and self.served_by is not self.attempts[0]

    def as_dict(self) -> dict[str, object]:
        return {
            "strategy": self.strategy,
            "strategy_source": self.strategy_source,
            "candidates": self.candidates,
            "attempts": [a.as_dict() for a in self.attempts],
            "fallback": self.fallback_used,
        }
