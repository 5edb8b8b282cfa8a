"""The Messages dialect's stream encoder: chat chunks in, Anthropic events out.

Every chunk sequence is checked for the framing Anthropic clients rely on (one message_start,
block indexes counting up, one block open at a time, every opened block closed once, exactly
one terminal event, last), and assembled into a message, by a small assembler here and by
the anthropic SDK's own accumulator, which must equal what response.encode gives for the
same answer complete.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic.types as at
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from pydantic import TypeAdapter

from perpetuo.api.dialects.anthropic_messages import request, response
from perpetuo.api.dialects.anthropic_messages.stream import StreamEncoder
from perpetuo.schema.errors import ErrorType, GatewayError
from perpetuo.schema.usage import Usage

REQUEST = request.decode(
    json.dumps(
        {
            "model": "claude-sonnet",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": "hi"}],
            "stop_sequences": ["END"],
            "stream": True,
        }
    ).encode()
)
MODEL = "claude-sonnet"
USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
}
EVENT = TypeAdapter(at.RawMessageStreamEvent)


def chunk(finish: str | None = None, **delta: Any) -> dict[str, Any]:
    return {
        "id": "msg_0123",
        "object": "chat.completion.chunk",
        "model": "upstream-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def usage_chunk(usage: dict[str, Any] = USAGE) -> dict[str, Any]:
    return {"id": "msg_0123", "object": "chat.completion.chunk", "choices": [], "usage": usage}


def call(index: int, arguments: str = "", id_: str | None = None, name: str | None = None):
    piece: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id_ is not None:
        piece.update(id=id_, type="function")
        piece["function"]["name"] = name
    return piece


def run(
    chunks: list[dict[str, Any]], usage: Usage | None = None, error: GatewayError | None = None
):
    encoder = StreamEncoder(MODEL, REQUEST)
    events = [event for c in chunks for event in encoder.feed(c)]
    events += encoder.finish(usage, error)
    assert encoder.finish(usage, error) == []  # the end is given once
    return events


def check_framing(events: list[dict[str, Any]]) -> None:
    assert events[0]["type"] == "message_start"
    assert sum(e["type"] == "message_start" for e in events) == 1
    terminal = [i for i, e in enumerate(events) if e["type"] in ("message_stop", "error")]
    assert terminal == [len(events) - 1], "exactly one terminal event, and it is the last"
    ended_well = events[-1]["type"] == "message_stop"
    if ended_well:
        assert events[-2]["type"] == "message_delta"
    open_index: int | None = None
    started: list[int] = []
    stopped: list[int] = []
    for event in events[:-1]:
        kind = event["type"]
        if kind == "content_block_start":
            assert open_index is None, "one block open at a time"
            assert event["index"] == len(started), "indexes count up from 0"
            open_index = event["index"]
            started.append(open_index)
        elif kind == "content_block_delta":
            assert event["index"] == open_index
        elif kind == "content_block_stop":
            assert event["index"] == open_index
            stopped.append(open_index)
            open_index = None
        if kind != "error":
            EVENT.validate_python(event)  # the SDK's own event types
    if ended_well:
        assert stopped == started, "every opened block is closed exactly once"
    else:
        assert stopped == started[: len(stopped)]


def assemble(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The message a client builds from the events, written plainly."""
    message = dict(events[0]["message"], content=[], usage=dict(events[0]["message"]["usage"]))
    partial: dict[int, str] = {}
    for event in events[1:]:
        kind = event["type"]
        if kind == "content_block_start":
            message["content"].append(dict(event["content_block"]))
        elif kind == "content_block_delta":
            block, delta = message["content"][event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial[event["index"]] = partial.get(event["index"], "") + delta["partial_json"]
        elif kind == "content_block_stop" and event["index"] in partial:
            message["content"][event["index"]]["input"] = json.loads(partial[event["index"]])
        elif kind == "message_delta":
            message.update(event["delta"])
            message["usage"].update(event["usage"])
    return message


def sdk_assemble(events: list[dict[str, Any]]) -> dict[str, Any]:
    snapshot, buffers = None, {}
    for event in events:
        snapshot = accumulate_event(
            event=EVENT.validate_python(event), current_snapshot=snapshot, json_bufs=buffers
        )
    return snapshot.model_dump(
        exclude_none=True, exclude={"content": {"__all__": {"parsed_output"}}}
    )


def complete(message: dict[str, Any], finish: str) -> dict[str, Any]:
    """The same answer as one chat.completion."""
    return {
        "id": "msg_0123",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
    }


def check_agrees(
    events: list[dict[str, Any]], message: dict[str, Any], finish: str
) -> dict[str, Any]:
    check_framing(events)
    expected = response.encode(
        complete(message, finish), Usage.from_openai(USAGE), model=MODEL, request=REQUEST
    )
    assembled = assemble(events)
    assert assembled == expected
    assert sdk_assemble(events) == at.Message.model_validate(expected).model_dump(exclude_none=True)
    return assembled


# --- sequences -----------------------------------------------------------------------------


def test_text_only():
    chunks = [
        chunk(role="assistant", content=""),
        chunk(content="Hel"),
        chunk(content="lo!"),
        chunk("stop"),
        usage_chunk(),
    ]
    events = run(chunks)
    message = check_agrees(events, {"content": "Hello!"}, "stop")
    assert message["stop_reason"] == "end_turn"
    assert message["usage"] == {
        "input_tokens": 15,  # 120 prompt tokens, 100 of them read from the cache, 5 written
        "output_tokens": 30,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 100,
    }
    assert events[0]["message"]["usage"]["input_tokens"] == 0  # not known yet when it starts


def test_two_parallel_tool_calls_interleaved_keep_their_own_blocks():
    chunks = [
        chunk(role="assistant", tool_calls=[call(0, "", "call_a", "get_weather")]),
        chunk(tool_calls=[call(1, "", "call_b", "get_time")]),
        chunk(tool_calls=[call(0, '{"city":')]),
        chunk(tool_calls=[call(1, '{"tz":')]),
        chunk(tool_calls=[call(0, '"Oslo"}')]),
        chunk(tool_calls=[call(1, '"UTC"}')]),
        chunk("tool_calls"),
        usage_chunk(),
    ]
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        },
        {
            "id": "call_b",
            "type": "function",
            "function": {"name": "get_time", "arguments": '{"tz":"UTC"}'},
        },
    ]
    message = check_agrees(run(chunks), {"content": None, "tool_calls": calls}, "tool_calls")
    assert [(b["id"], b["input"]) for b in message["content"]] == [
        ("call_a", {"city": "Oslo"}),
        ("call_b", {"tz": "UTC"}),
    ]
    assert message["stop_reason"] == "tool_use"


def test_sequential_and_whole_parallel_calls_stream_as_they_come():
    sequential = [
        chunk(tool_calls=[call(0, "", "call_a", "get_weather")]),
        chunk(tool_calls=[call(0, '{"city":"Oslo"}')]),
        chunk(tool_calls=[call(1, "", "call_b", "get_time")]),
        chunk(tool_calls=[call(1, "{}")]),
        chunk("tool_calls"),
        usage_chunk(),
    ]
    events = run(sequential)
    # The first call is closed as soon as the second starts, its input being complete.
    kinds = [(e["type"], e.get("index")) for e in events[1:5]]
    assert kinds == [
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
    ]
    whole = [  # Gemini-style: every call complete in one chunk
        chunk(
            tool_calls=[
                call(0, '{"city":"Oslo"}', "call_a", "get_weather"),
                call(1, "{}", "call_b", "get_time"),
            ]
        ),
        chunk("stop"),  # and "stop" after calling tools
        usage_chunk(),
    ]
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    for chunks, finish in ((sequential, "tool_calls"), (whole, "stop")):
        message = check_agrees(run(chunks), {"content": None, "tool_calls": calls}, finish)
        assert message["stop_reason"] == "tool_use"


def test_reasoning_then_signature_then_text_then_tool_call():
    chunks = [
        chunk(role="assistant", content=""),
        chunk(reasoning_content="The user "),
        chunk(reasoning_content="wants weather."),
        chunk(thinking_blocks=[{"type": "thinking", "thinking": "", "signature": "EqQBsig"}]),
        chunk(thinking_blocks=[{"type": "redacted_thinking", "data": "EmwKredacted"}]),
        chunk(content="Checking"),
        chunk(content=" now."),
        chunk(tool_calls=[call(0, "", "toolu_1", "get_weather")]),
        chunk(tool_calls=[call(0, '{"city":"Oslo"}')]),
        chunk("tool_calls"),
        usage_chunk(),
    ]
    events = run(chunks)
    deltas = [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"]
    assert deltas[:2] == ["thinking_delta", "signature_delta"]
    message = {
        "content": "Checking now.",
        "reasoning_content": "The user wants weather.",
        "thinking_blocks": [
            {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQBsig"},
            {"type": "redacted_thinking", "data": "EmwKredacted"},
        ],
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            }
        ],
    }
    assembled = check_agrees(events, message, "tool_calls")
    assert [b["type"] for b in assembled["content"]] == [
        "thinking",
        "redacted_thinking",
        "text",
        "tool_use",
    ]


def test_unsigned_reasoning_is_left_out_as_in_complete_answers():
    chunks = [
        chunk(reasoning_content="hmm, "),
        chunk(reasoning_content="ok"),
        chunk(content="Hi"),
        chunk("stop"),
        usage_chunk(),
    ]
    assembled = check_agrees(run(chunks), {"content": "Hi", "reasoning_content": "hmm, ok"}, "stop")
    assert [b["type"] for b in assembled["content"]] == ["text"]


def test_usage_only_chunks_and_an_empty_stream_do_not_crash():
    events = run([usage_chunk()])
    check_agrees(events, {"content": None}, "stop")
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]
    nothing = run([], usage=Usage(prompt_tokens=3))
    check_framing(nothing)
    assert nothing[1]["usage"]["input_tokens"] == 3


def test_usage_given_at_finish_wins_over_the_chunks():
    events = run(
        [chunk(content="x"), chunk("stop"), usage_chunk()],
        usage=Usage(prompt_tokens=9, completion_tokens=2, estimated=True),
    )
    assert events[-2]["usage"] == {
        "input_tokens": 9,
        "output_tokens": 2,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_max_tokens_and_stop_sequence():
    cut = run([chunk(content="a b c"), chunk("length"), usage_chunk()])
    assert check_agrees(cut, {"content": "a b c"}, "length")["stop_reason"] == "max_tokens"
    stopped = run(
        [
            chunk(content="a"),
            {
                **chunk("stop"),
                "choices": [
                    {"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": "END"}
                ],
            },
            usage_chunk(),
        ]
    )
    assert stopped[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}


def test_error_mid_stream_ends_with_one_error_event_and_nothing_else():
    error = GatewayError(503, "upstream overloaded", type=ErrorType.UNAVAILABLE)
    partial_call = [chunk(content="Hel"), chunk(tool_calls=[call(0, '{"ci', "toolu_1", "f")])]
    expected = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "upstream overloaded"},
    }
    for chunks in ([chunk(content="Hel")], partial_call):
        events = run(chunks, error=error)
        check_framing(events)  # the blocks open when it failed stay open: nothing follows
        assert events[-1] == expected
        assert not any(e["type"] in ("message_delta", "message_stop") for e in events)
    assert run([], error=error) == [expected]  # failed before anything was said


@pytest.mark.parametrize("split", [1, 2, 3])
def test_assembled_stream_equals_complete_answer_however_the_text_is_cut(split):
    text = "Grüße — 日本語 👋🏽 done"
    pieces = [text[i : i + split] for i in range(0, len(text), split)]
    chunks = [chunk(content=p) for p in pieces] + [chunk("stop"), usage_chunk()]
    check_agrees(run(chunks), {"content": text}, "stop")
