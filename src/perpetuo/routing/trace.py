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
    headers: tuple[tuple[str, str], ...] = ()  # added to the upstream call (e.g. traceparent)

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
    requested_strategy: str | None = None  # the X-Perpetuo-Route header, validated
    strategy: str = "default"
    strategy_source: str = "alias"  # header, workspace or alias
    candidates: list[str] = field(default_factory=list)  # the requested alias's order
    attempts: list[Attempt] = field(default_factory=list)
    served_by: Attempt | None = None
    aliases: list[str] = field(default_factory=list)  # the requested one, then fallbacks
    skipped: list[tuple[str, str]] | None = None  # (deployment, why) left out, rarely any
    upstream_headers: tuple[tuple[str, str], ...] = ()  # sent with every attempt

    @property
    def fallback_used(self) -> bool:
        """True when a deployment or alias other than the first attempted served it
        (a retry of the same deployment is not a fallback)."""
        served = self.served_by
        if served is None:
            return False
        first = self.attempts[0]
        return served.deployment != first.deployment or served.alias != first.alias

    def skip(self, deployment: str, reason: str) -> None:
        if self.skipped is None:
            self.skipped = []
        self.skipped.append((deployment, reason))

    def as_dict(self) -> dict[str, object]:
        served = self.served_by
        return {
            "strategy": self.strategy,
            "strategy_source": self.strategy_source,
            "candidates": self.candidates,
            "aliases": self.aliases,
            "skipped": [{"deployment": d, "reason": r} for d, r in self.skipped or ()],
            "attempts": [a.as_dict() for a in self.attempts],
            "served_alias": None if served is None else served.alias,
            "fallback": self.fallback_used,
        }
