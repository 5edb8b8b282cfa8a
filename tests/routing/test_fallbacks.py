"""Fallback chain resolution: order, depth first, the error-specific chains, cycles."""

from __future__ import annotations

from perpetuo.routing.fallbacks import FallbackChain
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from tests.routing.support import build

K = UpstreamErrorKind
DEP = [{"provider": "a", "model": "m"}]


def walk(table, start: str, errors: dict[str, UpstreamError]) -> tuple[list[str], bool]:
    """Fail every alias with its scripted error (default 503); return the order and whether
    the chain ran out (True) or stopped on a client fault (False)."""
    alias = table.get(start)
    chain = FallbackChain(alias, table.get)
    while (current := chain.next()) is not None:
        error = errors.get(current.name, UpstreamError(K.OVERLOADED, "down", status=503))
        if not chain.failed(current, error):
            return chain.tried, False
    return chain.tried, True


def test_general_fallbacks_depth_first_in_order_and_cycle_safe():
    table = build(
        {
            "a": {"deployments": DEP, "fallbacks": ["b", "c"]},
            "b": {"deployments": DEP, "fallbacks": ["d", "a"]},
            "c": {"deployments": DEP, "fallbacks": ["b"]},
            "d": {"deployments": DEP, "fallbacks": ["c"]},
        }
    )
    assert walk(table, "a", {}) == (["a", "b", "d", "c"], True)


def test_context_and_content_failures_take_their_own_chains():
    table = build(
        {
            "small": {
                "deployments": DEP,
                "fallbacks": ["other"],
                "context_window_fallbacks": ["large"],
                "content_policy_fallbacks": ["lenient"],
            },
            "large": {"deployments": DEP},
            "lenient": {"deployments": DEP},
            "other": {"deployments": DEP},
        }
    )
    too_long = {"small": UpstreamError(K.CONTEXT_LENGTH, "too long", status=400)}
    assert walk(table, "small", too_long)[0] == ["small", "large"]
    refused = {"small": UpstreamError(K.CONTENT_POLICY, "no", status=400)}
    assert walk(table, "small", refused)[0] == ["small", "lenient"]


def test_client_fault_stops_and_missing_chain_ends_with_nothing_queued():
    table = build(
        {
            "a": {"deployments": DEP, "fallbacks": ["b"]},
            "b": {"deployments": DEP, "fallbacks": ["c"]},
            "c": {"deployments": DEP},
        }
    )
    bad = {"b": UpstreamError(K.INVALID_REQUEST, "bad", status=400)}
    assert walk(table, "a", bad) == (["a", "b"], False)
    too_long = {"a": UpstreamError(K.CONTEXT_LENGTH, "too long", status=400)}
    assert walk(table, "a", too_long) == (["a"], True)  # no context fallbacks: nothing else


def test_a_too_long_prompt_on_a_fallback_keeps_the_remaining_queue():
    table = build(
        {
            "a": {"deployments": DEP, "fallbacks": ["b", "c"]},
            "b": {"deployments": DEP},
            "c": {"deployments": DEP},
        }
    )
    errors = {"b": UpstreamError(K.CONTEXT_LENGTH, "too long", status=400)}
    assert walk(table, "a", errors)[0] == ["a", "b", "c"]
