"""The Responses dialect's answer encoder: chat answers as `response` objects the openai SDK
accepts, and what a client sends back from them decodes to the same conversation."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.responses import Response

from perpetuo.api.dialects.openai_responses.response import encode
from perpetuo.schema.reasoning import unseal
from perpetuo.schema.usage import Usage
from tests.api.dialects.test_openai_responses_codecs import REASONING, WEATHER, request


def chat_body(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-5",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, **extra}],
    }


USAGE = Usage(prompt_tokens=100, completion_tokens=40, cached_tokens=60, reasoning_tokens=25)


def test_text_answer_is_a_response_the_sdk_reads():
    req = request(input="hi", instructions="Be brief.", tools=[WEATHER], temperature=0.2,
                  metadata={"k": "v"}, user="u", truncation="auto")  # fmt: skip
    body = encode(chat_body({"role": "assistant", "content": "Hello!"}), USAGE, model="gpt-5",
                  request=req)  # fmt: skip
    response = Response.model_validate(body)
    assert response.output_text == "Hello!"
    assert response.id.startswith("resp_") and response.object == "response"
    assert (response.status, response.incomplete_details) == ("completed", None)
    (message,) = response.output
    assert message.type == "message" and message.id.startswith("msg_")
    assert message.status == "completed" and message.role == "assistant"
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (100, 40, 140)
    assert usage.input_tokens_details.cached_tokens == 60  # inside input_tokens, not added
    assert usage.output_tokens_details.reasoning_tokens == 25
    assert response.instructions == "Be brief." and response.temperature == 0.2
    assert response.tools[0].name == "get_weather" and response.metadata == {"k": "v"}
    assert (response.user, response.truncation, response.created_at) == ("u", "auto", 1.7e9)


@pytest.mark.parametrize("content", [None, ""])
def test_parallel_tool_calls_become_function_call_items_with_the_chat_ids(content):
    calls = [
        {"id": "call_P", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_R", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
    ]  # fmt: skip
    message = {"role": "assistant", "content": content, "tool_calls": calls}
    body = encode(chat_body(message, "tool_calls"), USAGE, model="m", request=request(input="x"))
    response = Response.model_validate(body)
    assert [item.type for item in response.output] == ["function_call", "function_call"]
    first, second = response.output
    assert (first.call_id, second.call_id) == ("call_P", "call_R")
    assert first.id != second.id and first.id.startswith("fc_")
    assert second.arguments == '{"city":"Rome"}' and second.status == "completed"
    assert response.output_text == ""


@pytest.mark.parametrize(("finish", "reason"), [("length", "max_output_tokens"),
                                                ("content_filter", "content_filter")])  # fmt: skip
def test_cut_answers_are_incomplete_with_the_reason(finish, reason):
    body = encode(chat_body({"role": "assistant", "content": "Half"}, finish), USAGE, model="m",
                  request=request(input="x", max_output_tokens=16))  # fmt: skip
    response = Response.model_validate(body)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == reason
    assert response.output[0].status == "incomplete" and response.max_output_tokens == 16


def test_refusal_is_a_refusal_part():
    message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    response = Response.model_validate(
        encode(chat_body(message), USAGE, model="m", request=request(input="x"))
    )
    (part,) = response.output[0].content
    assert (part.type, part.refusal) == ("refusal", "I can't help with that.")


def test_reasoning_blocks_come_first_verbatim_and_summaries_only_when_asked():
    message = {"role": "assistant", "content": "Sunny.", "reasoning_content": "Thought.",
               "thinking_blocks": [REASONING, {"type": "thinking", "thinking": "t",
                                               "signature": "anthropic-sig"}]}  # fmt: skip
    body = encode(chat_body(message), USAGE, model="m", request=request(input="x"))
    assert body["output"][0] == REASONING  # encrypted_content kept for the next turn
    assert [i["type"] for i in body["output"]] == ["reasoning", "reasoning", "message"]
    # Anthropic's signed thinking rides sealed in a reasoning item, to come back next turn;
    # its text is no summary unless summaries were asked for.
    sealed = body["output"][1]
    assert sealed["summary"] == []
    assert unseal(sealed["encrypted_content"]) == message["thinking_blocks"][1]
    Response.model_validate(body)

    thought_only = {"role": "assistant", "content": "Sunny.", "reasoning_content": "Thought."}
    plain = encode(chat_body(thought_only), USAGE, model="m", request=request(input="x"))
    assert [i["type"] for i in plain["output"]] == ["message"]
    asked = request(input="x", reasoning={"effort": "low", "summary": "auto"})
    summarized = encode(chat_body(thought_only), USAGE, model="m", request=asked)
    reasoning = summarized["output"][0]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Thought."}]
    assert "encrypted_content" not in reasoning  # never made up
    assert Response.model_validate(summarized).reasoning.summary == "auto"


def test_decoding_an_encoded_answer_keeps_text_call_ids_and_encrypted_reasoning():
    """The next turn sends the output back as input: nothing of it may be lost."""
    calls = [{"id": "call_9", "type": "function",
              "function": {"name": "get_weather", "arguments": "{}"}}]  # fmt: skip
    message = {"role": "assistant", "content": "Let me check.", "tool_calls": calls,
               "thinking_blocks": [REASONING]}  # fmt: skip
    body = encode(chat_body(message, "tool_calls"), USAGE, model="m", request=request(input="x"))
    follow_up = [*body["output"], {"type": "function_call_output", "call_id": "call_9",
                                   "output": "sunny"}]  # fmt: skip
    turn, result = request(input=follow_up).chat.messages
    assert turn.content == "Let me check."
    assert turn.tool_calls[0].id == "call_9" and result.tool_call_id == "call_9"
    assert turn.thinking_blocks[0]["encrypted_content"] == REASONING["encrypted_content"]
    assert turn.thinking_blocks[0]["id"] == "rs_abc"
