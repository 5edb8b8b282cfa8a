"""What adapters do with conversations another provider took part in, and with limits they
lower, as plain functions: sealed thinking stays away from OpenAI, a tool-use turn another
provider opened finishes on Anthropic without thinking, a thinking budget follows a cut
max_tokens."""

from __future__ import annotations

from typing import Any

import msgspec

from perpetuo.providers.anthropic import MESSAGES, AnthropicAdapter
from perpetuo.providers.base import NativeRequest, Target
from perpetuo.providers.openai import RESPONSES, OpenAIAdapter
from perpetuo.providers.presets import OPENAI_PRESETS
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.reasoning import seal
from perpetuo.transport.url import URL

ANTHROPIC = AnthropicAdapter()
CLAUDE = Target("anth", "anthropic", "claude-x", URL.parse("https://api.example"), "sk-ant-k1")
GPT = Target("oai", "openai", "gpt-x", URL.parse("https://api.example/v1"), "sk-k1")
THOUGHT = {"type": "thinking", "thinking": "Let me see.", "signature": "c2ln"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def anthropic_body(assistant: dict[str, Any], effort: str = "medium") -> Any:
    request = msgspec.convert(
        {
            "model": "m",
            "reasoning_effort": effort,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": [CALL], **assistant},
                {"role": "tool", "tool_call_id": "call_1", "content": "done"},
            ],
        },
        ChatCompletionRequest,
    )
    return msgspec.json.decode(ANTHROPIC.chat_request(request, CLAUDE, {}).body)


def test_a_tool_turn_another_provider_opened_continues_without_thinking():
    assert "thinking" not in anthropic_body({})
    reasoning = {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAA-openai"}
    assert "thinking" not in anthropic_body({"thinking_blocks": [reasoning]})


def test_a_tool_turn_claude_opened_thinking_keeps_thinking():
    body = anthropic_body({"thinking_blocks": [THOUGHT]})
    assert body["thinking"]["type"] == "enabled"
    assert body["messages"][1]["content"][0] == THOUGHT
    sealed = {"type": "reasoning", "id": "rs_1", "encrypted_content": seal(THOUGHT)}
    assert anthropic_body({"thinking_blocks": [sealed]})["thinking"]["type"] == "enabled"


def test_sealed_thinking_is_not_sent_to_openai_and_everything_else_is():
    adapter = OpenAIAdapter("openai", OPENAI_PRESETS["openai"])
    items = [
        {"role": "user", "content": "go"},
        {"type": "reasoning", "id": "rs_a", "summary": [], "encrypted_content": seal(THOUGHT)},
        {"type": "reasoning", "id": "rs_b", "summary": [], "encrypted_content": "gAAAA-own"},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
    ]
    body = {"model": "alias", "input": items, "future": 1}
    call = adapter.native_call(NativeRequest(RESPONSES, body), body, GPT, None)
    sent = msgspec.json.decode(call.body)
    assert sent == {"model": "gpt-x", "input": [items[0], *items[2:]], "future": 1}
    plain = {"model": "alias", "input": items[:1]}
    untouched = adapter.native_call(NativeRequest(RESPONSES, plain), plain, GPT, None)
    assert msgspec.json.decode(untouched.body) == {**plain, "model": "gpt-x"}


def native_messages(max_tokens: int, budget: int, cap: int | None) -> Any:
    body = {
        "model": "alias",
        "max_tokens": max_tokens,
        "thinking": {"type": "enabled", "budget_tokens": budget},
        "messages": [{"role": "user", "content": "hi"}],
    }
    call = ANTHROPIC.native_call(NativeRequest(MESSAGES, body), body, CLAUDE, cap)
    sent = msgspec.json.decode(call.body)
    return sent["max_tokens"], sent["thinking"]["budget_tokens"]


def test_a_thinking_budget_follows_a_cut_output_limit():
    assert native_messages(5000, 3000, 2000) == (2000, 1999)  # cut to fit under the cap
    assert native_messages(5000, 1024, 2000) == (2000, 1024)  # already fits
    assert native_messages(5000, 3000, None) == (5000, 3000)  # nothing cut
    assert native_messages(1500, 1024, 2000) == (1500, 1024)  # under the cap
    assert native_messages(5000, 8000, 2000) == (2000, 8000)  # above the client's own limit
    assert native_messages(5000, 1200, 1000) == (1000, 1200)  # no budget fits: left to say
