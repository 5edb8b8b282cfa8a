"""Per-request state that the pipeline stages fill in and the request log reads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from perpetuo.auth.principal import Principal
from perpetuo.routing.trace import RoutingTrace
from perpetuo.schema.usage import Usage


@dataclass(slots=True)
class RequestContext:
    request_id: str
    endpoint: str
    client_ip: str = ""
    user_agent: str = ""
    principal: Principal | None = None
    alias: str | None = None
    stream: bool = False
    started: float = field(default_factory=time.perf_counter)
    trace: RoutingTrace = field(default_factory=RoutingTrace)
    usage: Usage | None = None
    status: int = 200
    error_code: str | None = None
    ttft_ms: float | None = None
    latency_ms: float | None = None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def mark_first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = self.elapsed_ms()

    def finish(self, status: int, error_code: str | None = None) -> None:
        self.status = status
        self.error_code = error_code
        self.latency_ms = self.elapsed_ms()
