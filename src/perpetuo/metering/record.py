"""The request log record: one per request, success or failure, streamed or not."""

from __future__ import annotations

import time
from typing import Any

import msgspec


class RequestRecord(msgspec.Struct, omit_defaults=True):
    id: str
    workspace_id: str
    created_at: float  # epoch seconds when the request arrived
    endpoint: str
    status: int
    key_id: str | None = None
    user_id: str | None = None
    alias: str | None = None
    provider: str | None = None
    model: str | None = None
    strategy: str | None = None
    attempts: int = 0
    fallback: bool = False
    stream: bool = False
    error_code: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    usage_estimated: bool = False
    cost_micros: int = 0
    latency_ms: float | None = None
    ttft_ms: float | None = None
    cache: str | None = None
    saved_cost_micros: int = 0
    client_ip: str | None = None
    user_agent: str | None = None
    tags: list[str] | None = None
    trace: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None
    unit: str | None = None  # images | seconds | characters | searches; None: tokens only
    quantity: float = 0.0  # how many of `unit`
    team_id: str | None = None  # the team the request counted to (Principal.team_id)

    @property
    def is_error(self) -> bool:
        """Refused or failed, including a stream that broke after its first chunk."""
        return self.status >= 400 or self.error_code is not None


encode_record = msgspec.json.Encoder().encode
decode_record = msgspec.json.Decoder(RequestRecord).decode


def now() -> float:
    return time.time()
