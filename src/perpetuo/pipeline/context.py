"""Per-request state that the pipeline stages fill in and the request log reads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from perpetuo.auth.principal import Principal
from perpetuo.control.workspace_routing import EMPTY, WorkspaceState
from perpetuo.routing.table import Deployment
from perpetuo.routing.trace import RoutingTrace
from perpetuo.schema.usage import Usage


@dataclass(slots=True)
class RequestContext:
    request_id: str
    endpoint: str
    client_ip: str = ""
    user_agent: str = ""
    principal: Principal | None = None
    workspace: WorkspaceState = field(default_factory=lambda: EMPTY)
    alias: str | None = None
    deployment: Deployment | None = None  # the one that served (or last tried)
    stream: bool = False
    tags: list[str] | None = None
    started: float = field(default_factory=time.perf_counter)
    arrived: float = field(default_factory=time.time)  # wall clock, for the request log
    trace: RoutingTrace = field(default_factory=RoutingTrace)
    usage: Usage | None = None
    unit: str | None = None  # work billed in another unit than tokens (images, seconds, ...)
    quantity: float = 0.0
    status: int = 200
    error_code: str | None = None
    ttft_ms: float | None = None
    latency_ms: float | None = None
    cost_micros: int = 0
    detail: dict[str, Any] | None = None  # bodies (when the workspace logs them), findings
    span: Any = None  # the OpenTelemetry request span, when tracing is on
    admission: Any = None  # the limits engine's reservations, settled when the request ends
    cache_directive: Any = None  # Cache-Control / x-perpetuo-cache-ttl, when the client sent any
    cache: Any = None  # pipeline.cache.CacheRun: key, policy, outcome (None: caching off)
    guardrails: Any = None  # pipeline.guardrails.GuardrailRun (None: no policy applies)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def mark_first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = self.elapsed_ms()

    def finish(self, status: int, error_code: str | None = None) -> None:
        self.status = status
        self.error_code = error_code
        self.latency_ms = self.elapsed_ms()
