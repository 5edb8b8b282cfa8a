"""How a GatewayError reaches a Responses client.

Before a stream starts it is the usual OpenAI error body with its HTTP status (the shape the
Responses API answers too). Inside a stream that already answered 200 it is an `error` event
followed by `response.failed`, whose response carries `error: {code, message}` with one of
the codes the API documents for failed responses.
"""

from __future__ import annotations

from typing import Any

from perpetuo.schema.errors import ErrorCode, GatewayError

Json = dict[str, Any]

_POLICY_CODES = frozenset({ErrorCode.CONTENT_POLICY, ErrorCode.GUARDRAIL_BLOCKED})


def render(error: GatewayError) -> tuple[int, bytes]:
    """Status and body of a JSON error answer."""
    return error.status, error.body()


def failure_code(error: GatewayError) -> str:
    """The response.error.code for a failure (the API's closed list of codes)."""
    if error.status == 429:
        return "rate_limit_exceeded"
    if error.code in _POLICY_CODES:
        return "invalid_prompt"
    return "server_error"


def stream_events(error: GatewayError, response: Json, *, sequence_number: int = 0) -> list[Json]:
    """The in-stream failure: `error`, then `response.failed` with `response` marked failed.
    Events are numbered from `sequence_number` on."""
    failed = {
        **response,
        "status": "failed",
        "incomplete_details": None,
        "error": {"code": failure_code(error), "message": error.message},
    }
    return [
        {
            "type": "error",
            "sequence_number": sequence_number,
            "code": None if error.code is None else str(error.code),
            "message": error.message,
            "param": error.param,
        },
        {"type": "response.failed", "sequence_number": sequence_number + 1, "response": failed},
    ]
