"""The Responses dialect's stream encoder: chat chunks in, Responses events out.

Every stream is checked for the invariants a client relies on: sequence numbers strictly
increase, every item added is done exactly once (and its deltas fall in between), exactly one
terminal event ends it, every event is one the openai SDK parses, the SDK's own stream
accumulator yields the same text, and the final response equals `encode` of the same answer.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from openai._models import validate_type
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from perpetuo.api.dialects.openai_responses.request import decode
from perpetuo.api.dialects.openai_responses.response import encode
from perpetuo.api.dialects.openai_responses.stream import StreamEncoder
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError
from perpetuo.schema.usage import Usage

TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
USAGE = Usage(prompt_tokens=30, completion_tokens=12, cached_tokens=10, reasoning_tokens=4)
BLOCK = {"id": "rs_up", "type": "reasoning", "encrypted_content": "gAAAA-proof",
         "summary": [{"type": "summary_text", "text": "Plan."}]}  # fmt: skip


def request(**body: Any) -> Any:
    return decode(json.dumps({"model": "gpt-5", "input": "hi", "stream": True, **body}).encode())


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}
    return {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": "gpt-5", "choices": [choice]}  # fmt: skip


def usage_chunk(usage: Usage) -> dict[str, Any]:
    return {**chunk(), "choices": [], "usage": usage.to_openai()}


def call(index: int, *, id_: str | None = None, name: str | None = None, args: str = "") -> Any:
    piece: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if id_:
        piece.update(id=id_, type="function")
        piece["function"]["name"] = name
    return chunk({"tool_calls": [piece]})


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The complete chat.completion these chunks add up to (as the pipeline assembles it)."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for c in chunks:
        for choice in c["choices"]:
            delta = choice["delta"]
            for key in ("content", "reasoning_content", "refusal"):
                if delta.get(key):
                    message[key] = (message.get(key) or "") + delta[key]
            message.setdefault("thinking_blocks", []).extend(delta.get("thinking_blocks") or [])
            for piece in delta.get("tool_calls") or []:
                entry = calls.setdefault(piece["index"], {"type": "function", "function": {
                    "name": "", "arguments": ""}})  # fmt: skip
                entry["id"] = piece.get("id") or entry.get("id")
                entry["function"]["name"] += piece["function"].get("name") or ""
                entry["function"]["arguments"] += piece["function"].get("arguments") or ""
            finish = choice["finish_reason"] or finish
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {"id": "chatcmpl-s", "created": 1_700_000_000, "model": "gpt-5",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}]}  # fmt: skip


def run(req: Any, chunks: list[dict[str, Any]], usage: Usage | None = USAGE, error=None):
    encoder = StreamEncoder("gpt-5", req, response_id="resp_test")
    events: list[dict[str, Any]] = []
    sent: list[str] = []  # each event as written the moment it was returned
    for c in [*chunks, None]:
        batch = encoder.feed(c) if c is not None else encoder.finish(usage, error)
        events += batch
        sent += [json.dumps(event) for event in batch]
    assert encoder.finish(usage, error) == [] and encoder.feed(chunk({"content": "x"})) == []
    assert [json.dumps(event) for event in events] == sent, "an event changed after it was sent"
    check(events)
    return events


def check(events: list[dict[str, Any]]) -> None:
    numbers = [e["sequence_number"] for e in events]
    assert numbers == sorted(set(numbers)), "sequence numbers must strictly increase"
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    terminal = [e for e in events if e["type"] in TERMINAL]
    assert len(terminal) == 1 and events[-1] is terminal[0]
    added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    done = [e["output_index"] for e in events if e["type"] == "response.output_item.done"]
    assert sorted(added) == sorted(done) == list(range(len(added)))
    opened: set[int] = set()
    for e in events:
        if e["type"] == "response.output_item.added":
            opened.add(e["output_index"])
        elif e["type"] == "response.output_item.done":
            opened.remove(e["output_index"])
        elif "output_index" in e:
            assert e["output_index"] in opened, f"{e['type']} outside its item"
    for e in events:
        validate_type(type_=ResponseStreamEvent, value=e)  # raises when the SDK cannot parse


def sdk_text(events: list[dict[str, Any]]) -> str:
    """The text the openai SDK's stream accumulator puts together from these events."""
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for e in events:
        state.handle_event(validate_type(type_=ResponseStreamEvent, value=e))
    if state._completed_response is not None:  # response.completed
        return state._completed_response.output_text
    snapshot = state._ResponseStreamState__current_snapshot  # incomplete: what streamed
    return "".join(
        part.text
        for item in snapshot.output
        if item.type == "message"
        for part in item.content
        if part.type == "output_text"
    )


def final(events: list[dict[str, Any]]) -> dict[str, Any]:
    return events[-1]["response"]


def same_as_complete(events, req, chunks, usage: Usage | None = USAGE) -> None:
    expected = encode(assemble(chunks), usage, model="gpt-5", request=req, response_id="resp_test")
    assert final(events) == expected


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("response.") for e in events]


# --- scenarios -----------------------------------------------------------------------------


def test_text_stream_has_the_documented_sequence():
    req = request()
    chunks = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}),
              chunk({"content": "lo"}), chunk({}, "stop")]  # fmt: skip
    events = run(req, chunks)
    assert types(events) == [
        "created", "in_progress", "output_item.added", "content_part.added",
        "output_text.delta", "output_text.delta", "output_text.done", "content_part.done",
        "output_item.done", "completed",
    ]  # fmt: skip
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["output"] == [] and events[0]["response"]["usage"] is None
    assert sdk_text(events) == "Hello"
    assert final(events)["usage"]["input_tokens_details"]["cached_tokens"] == 10
    same_as_complete(events, req, chunks)


def test_interleaved_parallel_calls_keep_separate_items():
    req = request(tools=[{"type": "function", "name": "w", "parameters": {}}])
    chunks = [
        call(0, id_="call_A", name="w"), call(1, id_="call_B", name="w"),
        call(0, args='{"city":'), call(1, args='{"city":'),
        call(1, args='"Rome"}'), call(0, args='"Paris"}'), chunk({}, "tool_calls"),
    ]  # fmt: skip
    events = run(req, chunks)
    output = final(events)["output"]
    assert [(i["call_id"], i["arguments"]) for i in output] == [
        ("call_A", '{"city":"Paris"}'),
        ("call_B", '{"city":"Rome"}'),
    ]
    deltas = [(e["output_index"], e["delta"]) for e in events
              if e["type"] == "response.function_call_arguments.delta"]  # fmt: skip
    assert deltas == [(0, '{"city":'), (1, '{"city":'), (1, '"Rome"}'), (0, '"Paris"}')]
    assert len({i["id"] for i in output}) == 2
    same_as_complete(events, req, chunks)


def test_reasoning_summary_then_text():
    req = request(reasoning={"effort": "low", "summary": "auto"})
    chunks = [chunk({"reasoning_content": "Think"}), chunk({"reasoning_content": "ing."}),
              chunk({"content": "Answer."}), chunk({}, "stop")]  # fmt: skip
    events = run(req, chunks)
    assert types(events)[2:9] == [
        "output_item.added", "reasoning_summary_part.added", "reasoning_summary_text.delta",
        "reasoning_summary_text.delta", "reasoning_summary_text.done",
        "reasoning_summary_part.done", "output_item.done",
    ]  # fmt: skip
    reasoning, _ = final(events)["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Thinking."}]
    assert "encrypted_content" not in reasoning
    assert sdk_text(events) == "Answer."
    same_as_complete(events, req, chunks)
    # Not asked for: the reasoning text stays out, in the stream as in the complete answer.
    unasked = run(request(), chunks)
    assert [i["type"] for i in final(unasked)["output"]] == ["message"]
    same_as_complete(unasked, request(), chunks)


def test_upstream_reasoning_item_is_passed_verbatim():
    req = request(include=["reasoning.encrypted_content"])
    chunks = [chunk({"thinking_blocks": [BLOCK]}), chunk({"content": "Done."}), chunk({}, "stop")]
    events = run(req, chunks)
    assert final(events)["output"][0] == BLOCK
    summary = [e["delta"] for e in events if e["type"].endswith("summary_text.delta")]
    assert summary == ["Plan."]
    same_as_complete(events, req, chunks)


def test_usage_only_chunk_is_taken_when_finish_gets_none():
    req = request()
    chunks = [chunk({"content": "Hi"}), chunk({}, "stop"), usage_chunk(USAGE)]
    events = run(req, chunks, usage=None)
    assert final(events)["usage"]["output_tokens_details"]["reasoning_tokens"] == 4
    same_as_complete(events, req, chunks)


def test_max_tokens_ends_incomplete():
    req = request(max_output_tokens=16)
    chunks = [chunk({"content": "Cut sh"}), chunk({}, "length")]
    events = run(req, chunks)
    assert events[-1]["type"] == "response.incomplete"
    response = final(events)
    assert (response["status"], response["incomplete_details"]) == (
        "incomplete",
        {"reason": "max_output_tokens"},
    )
    assert response["output"][0]["status"] == "incomplete"
    same_as_complete(events, req, chunks)


def test_mid_stream_error_is_error_then_failed_never_a_normal_end():
    error = GatewayError(502, "upstream failed", type=ErrorType.UPSTREAM,
                         code=ErrorCode.UPSTREAM_ERROR)  # fmt: skip
    events = run(
        request(), [chunk({"content": "Partial"}), call(0, id_="c1", name="f")], error=error
    )
    assert types(events)[-2:] == ["error", "failed"]
    assert not any(e["type"] in ("response.completed", "response.incomplete") for e in events)
    err = events[-2]
    assert (err["code"], err["message"]) == ("upstream_error", "upstream failed")
    failed = final(events)
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "upstream failed"}
    assert [i["status"] for i in failed["output"]] == ["completed", "incomplete"]


def test_error_before_any_chunk_still_makes_a_well_formed_stream():
    error = GatewayError(429, "slow down", type=ErrorType.RATE_LIMIT,
                         code=ErrorCode.RATE_LIMITED)  # fmt: skip
    events = run(request(), [], error=error)
    assert types(events) == ["created", "in_progress", "error", "failed"]
    assert final(events)["error"]["code"] == "rate_limit_exceeded"


def test_refusal_stream():
    chunks = [chunk({"refusal": "I can't"}), chunk({"refusal": " help."}), chunk({}, "stop")]
    events = run(request(), chunks)
    assert "refusal.done" in types(events)
    assert final(events)["output"][0]["content"] == [
        {"type": "refusal", "refusal": "I can't help."}
    ]
    same_as_complete(events, request(), chunks)


def test_empty_answer_is_one_empty_message():
    chunks = [chunk({"role": "assistant", "content": ""}), chunk({}, "stop")]
    events = run(request(), chunks)
    assert [i["type"] for i in final(events)["output"]] == ["message"]
    assert sdk_text(events) == ""
    same_as_complete(events, request(), chunks)


@pytest.mark.parametrize("seed", range(40))
def test_random_chunkings_keep_every_invariant(seed):
    """Text, reasoning and parallel calls cut at random places, deltas interleaved."""
    rng = random.Random(seed)
    summary = rng.random() < 0.5
    req = request(reasoning={"effort": "low", "summary": "auto"} if summary else None)
    chunks: list[dict[str, Any]] = []
    thought, text = "Let me think about this carefully.", "Grüße 👋 from the stream encoder!"
    if rng.random() < 0.6:
        chunks += [chunk({"reasoning_content": p}) for p in cuts(rng, thought)]
    calls = rng.randint(0, 3)
    with_text = calls == 0 or rng.random() < 0.6
    if with_text:
        chunks += [chunk({"content": p}) for p in cuts(rng, text)]
    streams = [[call(i, id_=f"call_{i}", name=f"tool_{i}")]
               + [call(i, args=p) for p in cuts(rng, json.dumps({"n": i, "s": "x" * i}))]
               for i in range(calls)]  # fmt: skip
    begun = 0  # chat streams start calls in index order; their deltas may interleave
    while any(streams):
        pick = rng.choice([i for i, s in enumerate(streams) if s and i <= begun])
        begun += pick == begun
        chunks.append(streams[pick].pop(0))
    chunks.append(chunk({}, rng.choice(["stop", "length"]) if not calls else "tool_calls"))
    usage = None if rng.random() < 0.3 else USAGE
    if usage is None:
        chunks.append(usage_chunk(USAGE))
    events = run(req, chunks, usage=usage)
    same_as_complete(events, req, chunks)
    assert sdk_text(events) == (text if with_text else "")


def cuts(rng: random.Random, text: str) -> list[str]:
    points = sorted(rng.sample(range(1, len(text)), rng.randint(0, min(6, len(text) - 1))))
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
