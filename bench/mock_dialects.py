"""The bench mock's canned answers in the two provider formats clients also speak: OpenAI's
Responses API (`POST /v1/responses`) and Anthropic's Messages API (`POST /v1/messages`).

The same answers as the chat mock (a short one complete, twenty words streamed, the same
token counts): complete objects, and SSE streams with each format's documented event sequence
and framing (`event: <type>` and `data: <json>`, one event per HTTP chunk), built at import.
"""

from __future__ import annotations

import json
from typing import Any

SHORT = "Hello! How can I help you today?"  # the complete answer, 9 tokens
ANSWER = "Hello there! This is a streamed answer of twenty words or so from the mock upstream"
WORDS = ANSWER.split(" ")
PIECES = [w if i == 0 else " " + w for i, w in enumerate(WORDS)]
PROMPT_TOKENS = 12
# Response ids must differ (the gateway stores answers by id): each answer gets its own,
# written over this placeholder of the same width (so chunk sizes stay right).
RESPONSE_ID = "resp_" + "0" * 20


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def http_json(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


def http_events(events: list[dict[str, Any]]) -> bytes:
    """A chunked text/event-stream response, one named event per chunk."""
    parts = [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    ]
    for event in events:
        frame = b"event: " + event["type"].encode() + b"\ndata: " + _json(event) + b"\n\n"
        parts.append(b"%x\r\n%s\r\n" % (len(frame), frame))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


# -- OpenAI Responses ----------------------------------------------------------------------


def _response(status: str, output: list[Any], usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": 1,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "gpt-4o-mini",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def _part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message(text: str) -> dict[str, Any]:
    item = {"id": "msg_bench", "type": "message", "status": "completed", "role": "assistant"}
    return {**item, "content": [_part(text)]}


def _usage(output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": PROMPT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": PROMPT_TOKENS + output_tokens,
    }


def _responses_events() -> list[dict[str, Any]]:
    shell = _response("in_progress", [], None)
    message, part = _message(ANSWER), _part(ANSWER)
    at = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": shell},
        {"type": "response.in_progress", "response": shell},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **at, "part": {**part, "text": ""}},
    ]
    events += [
        {"type": "response.output_text.delta", **at, "delta": piece, "logprobs": []}
        for piece in PIECES
    ]
    events += [
        {"type": "response.output_text.done", **at, "text": ANSWER, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {
            "type": "response.completed",
            "response": _response("completed", [message], _usage(len(WORDS))),
        },
    ]
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


def numbered(answer: bytes, number: int) -> bytes:
    """A Responses answer with its own id."""
    return answer.replace(RESPONSE_ID.encode(), b"resp_%020d" % number)


RESPONSES_JSON = http_json(_json(_response("completed", [_message(SHORT)], _usage(9))))
RESPONSES_STREAM = http_events(_responses_events())


# -- Anthropic Messages --------------------------------------------------------------------


def _claude_message(text: str, output_tokens: int) -> dict[str, Any]:
    return {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-bench",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": PROMPT_TOKENS,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        },
    }


def _messages_events() -> list[dict[str, Any]]:
    start = _claude_message(ANSWER, 1) | {"content": [], "stop_reason": None}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        for p in PIECES
    ]
    return [
        *events,
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": len(WORDS)},
        },
        {"type": "message_stop"},
    ]


MESSAGES_JSON = http_json(_json(_claude_message(SHORT, 9)))
MESSAGES_STREAM = http_events(_messages_events())
