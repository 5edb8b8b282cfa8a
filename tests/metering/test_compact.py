"""Request-log rows store the routing trace without what their columns say, and read back
the whole trace: for the common single attempt, a retry, and a fallback to another alias."""

from __future__ import annotations

import time
from types import SimpleNamespace

import msgspec
import pytest

from perpetuo.metering.compact import compact_trace, expand_trace
from perpetuo.metering.record import RequestRecord


def attempt(deployment: str, alias: str, status: int, error: str | None = None) -> dict:
    provider, model = deployment.split("/")
    return {
        "deployment": deployment,
        "provider": provider,
        "model": model,
        "alias": alias,
        "status": status,
        "error": error,
        "latency_ms": 12.5,
        "ttft_ms": None,
    }


SINGLE = {
    "strategy": "default",
    "strategy_source": "alias",
    "candidates": ["openai/gpt-4o-mini"],
    "aliases": ["gpt"],
    "skipped": [],
    "attempts": [attempt("openai/gpt-4o-mini", "gpt", 200)],
    "served_alias": "gpt",
    "fallback": False,
}
RETRIED = {
    **SINGLE,
    "strategy": "latency",
    "strategy_source": "header",
    "candidates": ["openai/gpt-4o-mini", "azure/gpt-4o-mini"],
    "skipped": [{"deployment": "azure/gpt-4o-mini", "reason": "breaker open"}],
    "attempts": [
        attempt("openai/gpt-4o-mini", "gpt", 500, "server_error"),
        attempt("openai/gpt-4o-mini", "gpt", 200),
    ],
}
FALLBACK = {
    **SINGLE,
    "aliases": ["gpt", "claude"],
    "attempts": [
        attempt("openai/gpt-4o-mini", "gpt", 429, "rate_limited"),
        attempt("anthropic/claude-3", "claude", 200),
    ],
    "served_alias": "claude",
    "fallback": True,
}


def row_for(trace: dict) -> RequestRecord:
    served = trace["attempts"][-1]
    return RequestRecord(
        id="req_1",
        workspace_id="ws",
        created_at=time.time(),
        endpoint="chat",
        status=served["status"],
        alias=trace["aliases"][0],
        provider=served["provider"],
        model=served["model"],
        strategy=trace["strategy"],
        attempts=len(trace["attempts"]),
        fallback=trace["fallback"],
        trace=trace,
    )


@pytest.mark.parametrize("trace", [SINGLE, RETRIED, FALLBACK], ids=["single", "retry", "fallback"])
def test_compacted_traces_read_back_whole(trace):
    row = row_for(trace)
    stored = msgspec.json.decode(msgspec.json.encode(compact_trace(trace, row)))
    assert expand_trace(stored, row) == trace
    assert expand_trace(trace, row) == trace  # rows written before compaction read the same


def test_the_common_trace_keeps_only_what_columns_cannot_say():
    stored = compact_trace(SINGLE, row_for(SINGLE))
    assert stored == {"attempts": [{"latency_ms": 12.5}]}
    assert len(msgspec.json.encode(stored)) < len(msgspec.json.encode(SINGLE)) / 9


def test_a_row_read_from_the_database_expands_like_a_record():
    row = SimpleNamespace(**msgspec.structs.asdict(row_for(FALLBACK)))
    assert expand_trace(compact_trace(FALLBACK, row), row) == FALLBACK
