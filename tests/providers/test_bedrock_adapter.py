"""The Bedrock adapter as plain functions: Converse bodies, answers and stream events, the
InvokeModel path for Claude, error classification, and what a provider config resolves to."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from perpetuo.config.model import DeploymentConfig, ProviderConfig
from perpetuo.providers.bedrock import BedrockAdapter
from perpetuo.providers.bedrock.converse_response import completion, stream_chunks
from perpetuo.providers.registry import build_target
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind
from perpetuo.transport.sse import SSEEvent

K = UpstreamErrorKind
ADAPTER = BedrockAdapter()
KEYS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}
NOVA = "amazon.nova-pro-v1:0"


def target(model: str = NOVA, **provider: Any):
    config = ProviderConfig.model_validate(
        {"type": "bedrock", "region": "us-east-1", **KEYS, **provider}
    )
    return build_target("bed", config, DeploymentConfig(provider="bed", model=model))


def chat(**fields: Any) -> ChatCompletionRequest:
    fields.setdefault("model", "x")
    fields.setdefault("messages", [{"role": "user", "content": "hi"}])
    return msgspec.convert(fields, ChatCompletionRequest)


def body_of(
    request: ChatCompletionRequest, model: str = NOVA, extras: Any = None
) -> dict[str, Any]:
    call = ADAPTER.chat_request(request, target(model), extras or {})
    return json.loads(call.body)


# --- requests --------------------------------------------------------------------------------


def test_converse_body_turns_and_parameters():
    body = body_of(
        chat(
            messages=[
                {"role": "system", "content": "sys one"},
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "text", "text": "b"}]},
                {
                    "role": "assistant",
                    "content": "calling",
                    "tool_calls": [
                        {
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        },
                        {
                            "id": "t2",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"x":1}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "t1", "content": "one"},
                {"role": "user", "content": "and?"},
                {"role": "tool", "tool_call_id": "t2", "content": ""},
            ],
            tools=[{"type": "function", "function": {"name": "f"}}],
            max_completion_tokens=9,
            top_p=0.5,
            stop="END",
            user="u",
            parallel_tool_calls=False,
        )
    )
    assert body["system"] == [{"text": "sys one"}]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == [{"text": "a"}, {"text": "b"}]
    assert body["messages"][1]["content"][2] == {
        "toolUse": {"toolUseId": "t2", "name": "f", "input": {"x": 1}}
    }
    last = body["messages"][2]["content"]
    assert [next(iter(block)) for block in last] == ["toolResult", "toolResult", "text"]
    assert last[1]["toolResult"]["content"] == [{"text": "(no output)"}]
    assert body["inferenceConfig"] == {"maxTokens": 9, "topP": 0.5, "stopSequences": ["END"]}
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "f",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                }
            }
        ]
    }
    assert "user" not in json.dumps(body).replace('"user"', "")  # only as a role


def test_tool_choice_none_keeps_tools_only_when_the_conversation_used_them():
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert "toolConfig" not in body_of(chat(tools=tools, tool_choice="none"))
    used = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": ""}}
            ],
        },
        {"role": "tool", "tool_call_id": "t", "content": "r"},
    ]
    config = body_of(chat(messages=used, tools=tools, tool_choice="none"))["toolConfig"]
    assert "toolChoice" not in config and config["tools"]
    named = {"type": "function", "function": {"name": "f"}}
    assert body_of(chat(tools=tools, tool_choice=named))["toolConfig"]["toolChoice"] == {
        "tool": {"name": "f"}
    }


def test_reasoning_of_earlier_turns_is_replayed_signed():
    sealed_away = {"type": "reasoning", "id": "rs_1", "encrypted_content": "opaque-openai"}
    body = body_of(
        chat(
            messages=[
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": "a",
                    "thinking_blocks": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "redacted_thinking", "data": "b64data"},
                        sealed_away,
                    ],
                },
                {"role": "user", "content": "more"},
            ]
        )
    )
    assert body["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig"}}},
        {"reasoningContent": {"redactedContent": "b64data"}},
        {"text": "a"},
    ]


def test_images_documents_and_what_is_refused():
    png = "data:image/png;base64,iVBORw0KGgo="
    parts = [
        {"type": "image_url", "image_url": {"url": png}},
        {"type": "image_url", "image_url": {"url": "s3://bucket/photos/cat.JPG"}},
        {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi", "filename": "t.csv"}},
    ]
    blocks = body_of(chat(messages=[{"role": "user", "content": parts}]))["messages"][0]["content"]
    assert blocks[0] == {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
    assert blocks[1]["image"] == {
        "format": "jpeg",
        "source": {"s3Location": {"uri": "s3://bucket/photos/cat.JPG"}},
    }
    assert blocks[2]["document"] == {"format": "csv", "name": "t", "source": {"bytes": "YSxi"}}
    refused = [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    ]
    for part in refused:
        with pytest.raises(UpstreamError) as exc:
            body_of(chat(messages=[{"role": "user", "content": [part]}]))
        assert exc.value.kind is K.UNSUPPORTED
    for field, value in (("n", 2), ("logprobs", True), ("audio", {"voice": "x"})):
        with pytest.raises(UpstreamError) as exc:
            body_of(chat(**{field: value}))
        assert exc.value.param == field


def test_extras_go_where_converse_takes_them():
    body = body_of(
        chat(),
        extras={
            "top_k": 40,
            "guardrail_config": {"guardrailIdentifier": "g1", "guardrailVersion": "1"},
            "additionalModelRequestFields": {"foo": 1},
        },
    )
    assert body["guardrailConfig"] == {"guardrailIdentifier": "g1", "guardrailVersion": "1"}
    assert body["additionalModelRequestFields"] == {"top_k": 40, "foo": 1}


def test_claude_uses_invoke_model_with_the_messages_body():
    model = "us.anthropic.claude-sonnet-4-20250514-v1:0"
    call = ADAPTER.chat_request(chat(stream=True, user="u1"), target(model), {})
    assert (
        call.url.target
        == "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream"
    )
    body = json.loads(call.body)
    assert body["anthropic_version"] == "bedrock-2023-05-31"
    for absent in ("model", "stream", "metadata"):
        assert absent not in body
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    headers = dict(call.headers)
    assert headers["accept"] == "application/vnd.amazon.eventstream"
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")


# --- answers ---------------------------------------------------------------------------------


def converse_answer(content: list[Any], stop: str = "end_turn", **usage: int) -> bytes:
    counts = {"inputTokens": 7, "outputTokens": 3, "totalTokens": 10, **usage}
    message = {"role": "assistant", "content": content}
    return json.dumps(
        {"output": {"message": message}, "stopReason": stop, "usage": counts}
    ).encode()


def test_answer_with_reasoning_tools_and_usage():
    body = converse_answer(
        [
            {"reasoningContent": {"reasoningText": {"text": "think", "signature": "sg"}}},
            {"reasoningContent": {"redactedContent": "cmVk"}},
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tu1", "name": "f", "input": {"a": 1}}},
        ],
        stop="tool_use",
        cacheReadInputTokens=100,
        cacheWriteInputTokens=20,
        totalTokens=130,
    )
    result = completion(body, target())
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["reasoning_content"] == "think"
    assert choice["message"]["thinking_blocks"] == [
        {"type": "thinking", "thinking": "think", "signature": "sg"},
        {"type": "redacted_thinking", "data": "cmVk"},
    ]
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    usage = result["usage"]
    assert usage["prompt_tokens"] == 127 and usage["completion_tokens"] == 3
    assert usage["prompt_tokens_details"]["cached_tokens"] == 100
    assert usage["prompt_tokens_details"]["cache_write_tokens"] == 20


def test_cached_tokens_already_inside_input_tokens_are_not_added_twice():
    body = converse_answer(
        [{"text": "x"}], inputTokens=130, cacheReadInputTokens=100, totalTokens=133
    )
    assert completion(body, target())["usage"]["prompt_tokens"] == 130


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop, finish):
    assert (
        completion(converse_answer([{"text": "x"}], stop), target())["choices"][0]["finish_reason"]
        == finish
    )


def test_malformed_output_is_a_failure_not_an_answer():
    with pytest.raises(UpstreamError) as exc:
        completion(converse_answer([{"text": "x"}], "malformed_tool_use"), target())
    assert exc.value.kind is K.BAD_RESPONSE


async def _events(*pairs: tuple[str, dict[str, Any]]) -> AsyncIterator[SSEEvent]:
    for kind, payload in pairs:
        yield SSEEvent(json.dumps(payload), kind)


async def test_stream_with_reasoning_signature_and_tool_call():
    events = _events(
        ("messageStart", {"role": "assistant"}),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "th"}}},
        ),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "ink"}}},
        ),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "S"}}},
        ),
        (
            "contentBlockStart",
            {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu", "name": "f"}}},
        ),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a"'}}}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ":1}"}}}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("messageStop", {"stopReason": "tool_use"}),
        ("metadata", {"usage": {"inputTokens": 4, "outputTokens": 6, "totalTokens": 10}}),
    )
    chunks = [c async for c in stream_chunks(events, target())]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "think"
    assert {"type": "thinking", "thinking": "think", "signature": "S"} in [
        b for d in deltas for b in d.get("thinking_blocks", [])
    ]
    calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
    assert (
        calls[0]["id"] == "tu" and "".join(c["function"]["arguments"] for c in calls) == '{"a":1}'
    )
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 10


async def test_stream_that_ends_before_message_stop_fails():
    events = _events(
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "half"}}),
    )
    with pytest.raises(UpstreamError) as exc:
        [c async for c in stream_chunks(events, target())]
    assert exc.value.kind is K.BAD_RESPONSE
