"""The routing trace as stored: without what the row's columns already say.

A request-log row has columns for the strategy, the fallback flag and who served it
(alias, provider, model, status). The trace repeats them for every attempt; stored as is, it
was half of a row. `compact_trace` leaves out each value equal to the one the columns imply
and `expand_trace` puts it back, so a reader sees the whole trace either way (and rows
written before compaction read back unchanged).
"""

from __future__ import annotations

from typing import Any


def _row_defaults(row: Any) -> dict[str, Any]:
    deployment = f"{row.provider}/{row.model}" if row.provider and row.model else None
    return {
        "strategy": row.strategy,
        "strategy_source": "alias",
        "candidates": [deployment] if deployment else None,
        "aliases": [row.alias] if row.alias else None,
        "skipped": [],
        "served_alias": row.alias,
        "fallback": row.fallback,
    }


_ATTEMPT_DEFAULTS = {"error": None, "ttft_ms": None}


def compact_trace(trace: dict[str, Any] | None, row: Any) -> dict[str, Any] | None:
    """`row`: anything with the request-log columns as attributes (a record, a row)."""
    if not trace:
        return trace
    defaults = _row_defaults(row)
    out = {k: v for k, v in trace.items() if k not in defaults or defaults[k] != v}
    if "attempts" in trace:
        out["attempts"] = [_compact_attempt(a, row) for a in trace["attempts"]]
    return out


def expand_trace(trace: dict[str, Any] | None, row: Any) -> dict[str, Any] | None:
    if not trace:
        return trace
    full = {**_row_defaults(row), **trace}
    for key in ("candidates", "aliases"):
        if full[key] is None:
            full[key] = []
    if "attempts" in trace:
        full["attempts"] = [_expand_attempt(a, row) for a in trace["attempts"]]
    order = ("strategy", "strategy_source", "candidates", "aliases", "skipped", "attempts")
    return {k: full[k] for k in order if k in full} | full


def _attempt_defaults(attempt: dict[str, Any], row: Any) -> dict[str, Any]:
    provider = attempt.get("provider", row.provider)
    model = attempt.get("model", row.model)
    return {
        "provider": row.provider,
        "model": row.model,
        "alias": row.alias,
        "deployment": f"{provider}/{model}",
        "status": row.status,
        **_ATTEMPT_DEFAULTS,
    }


def _compact_attempt(attempt: dict[str, Any], row: Any) -> dict[str, Any]:
    defaults = _attempt_defaults(attempt, row)
    return {k: v for k, v in attempt.items() if k not in defaults or defaults[k] != v}


def _expand_attempt(attempt: dict[str, Any], row: Any) -> dict[str, Any]:
    full = {**attempt}
    for key in ("provider", "model", "alias"):
        full.setdefault(key, getattr(row, key))
    full.setdefault("deployment", f"{full['provider']}/{full['model']}")
    full.setdefault("status", row.status)
    for key, value in _ATTEMPT_DEFAULTS.items():
        full.setdefault(key, value)
    order = ("deployment", "provider", "model", "alias", "status", "error", "latency_ms", "ttft_ms")
    return {k: full[k] for k in order if k in full} | full
