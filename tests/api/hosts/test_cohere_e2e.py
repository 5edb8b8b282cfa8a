"""The official openai SDK against the gateway, through a Cohere upstream (the Cohere mock):
chat, streams, tools, documents and citations, JSON formats, embeddings with input_type,
errors."""

from __future__ import annotations

import base64
import json
import struct

import httpx
import openai
import pytest

from tests.mocks import cohere_chat
from tests.support.gateway import MASTER_KEY

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
DOCS = [
    {"id": "guide", "data": {"title": "Guide", "url": "https://example.com/guide", "text": "x"}},
    {"id": "faq", "data": {"text": "y"}},
]


def test_chat_round_trip(hosts_client, cohere):
    completion = hosts_client.chat.completions.create(
        model="command-a",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
        temperature=0.2,
        top_p=1.0,
        seed=3,
        max_tokens=40,
        user="someone",
    )
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "command-a-03-2025"
    assert completion.usage.completion_tokens == 3
    assert completion.usage.prompt_tokens == 7  # billed units, not the template tokens
    sent = cohere.last
    assert sent.path == "/v2/chat"
    assert sent.headers["Authorization"] == "Bearer co-test-key"
    assert MASTER_KEY not in json.dumps(sent.headers)
    assert sent.body == {
        "model": "command-a-03-2025",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
        "max_tokens": 40,
        "temperature": 0.2,
        "p": 0.99,
        "seed": 3,
    }


def test_stream_with_usage(hosts_client):
    stream = hosts_client.chat.completions.create(
        model="command-a",
        messages=[{"role": "user", "content": "stream this"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream this"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3


def test_tool_call_round_trip_streamed_and_not(hosts_client, cohere):
    messages = [{"role": "user", "content": "weather in Oslo?"}]
    first = hosts_client.chat.completions.create(
        model="command-a", messages=messages, tools=[WEATHER], tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"city": "weather in Oslo?"}
    assert cohere.last.body["tool_choice"] == "REQUIRED"
    streamed = list(
        hosts_client.chat.completions.create(
            model="command-a", messages=messages, tools=[WEATHER], stream=True
        )
    )
    deltas = [c.choices[0].delta for c in streamed if c.choices]
    calls = [tc for d in deltas for tc in d.tool_calls or []]
    assert calls[0].id == call.id and calls[0].function.name == "get_weather"
    assert "".join(tc.function.arguments or "" for tc in calls) == call.function.arguments
    assert streamed[-1].choices[0].finish_reason == "tool_calls"
    follow = hosts_client.chat.completions.create(
        model="command-a",
        messages=[
            *messages,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "cold"},
        ],
        tools=[WEATHER],
    )
    assert follow.choices[0].message.content == "The tool returned: cold"
    replayed = cohere.last.body["messages"][1]
    assert replayed["tool_calls"][0]["id"] == call.id
    assert replayed["tool_plan"] == "I will call the tools."  # the reasoning_content it sent


def test_documents_cited_as_annotations(hosts_client, cohere):
    completion = hosts_client.chat.completions.create(
        model="command-a",
        messages=[{"role": "user", "content": "what do the docs say?"}],
        extra_body={"documents": DOCS, "citation_options": {"mode": "ACCURATE"}},
    )
    message = completion.choices[0].message
    assert cohere.last.body["documents"] == DOCS
    cited = [(a.url_citation.url, a.url_citation.title) for a in message.annotations]
    assert cited == [("https://example.com/guide", "Guide"), ("", "faq")]
    assert message.annotations[0].url_citation.end_index == len("Echo:")
    streamed = list(
        hosts_client.chat.completions.create(
            model="command-a",
            messages=[{"role": "user", "content": "what do the docs say?"}],
            extra_body={"documents": DOCS},
            stream=True,
        )
    )
    annotations = [
        a
        for c in streamed
        if c.choices
        for a in (c.choices[0].delta.model_extra or {}).get("annotations", [])
    ]
    assert [a["url_citation"]["title"] for a in annotations] == ["Guide", "faq"]


def test_extra_parameters_need_the_alias_to_allow_them(hosts_client):
    with pytest.raises(openai.BadRequestError) as refused:
        hosts_client.chat.completions.create(
            model="command-a",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"k": 5},
        )
    assert "k" in refused.value.message


def test_json_schema_and_thinking(hosts_client, cohere):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    completion = hosts_client.chat.completions.create(
        model="command-a",
        messages=[{"role": "user", "content": "a number"}],
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    )
    assert json.loads(completion.choices[0].message.content) == {"n": 1}
    assert cohere.last.body["response_format"] == {"type": "json_object", "json_schema": schema}
    thought = hosts_client.chat.completions.create(
        model="command-a",
        messages=[{"role": "user", "content": "think hard please"}],
        reasoning_effort="low",
    )
    assert thought.choices[0].message.model_extra["reasoning_content"] == cohere_chat.THINKING
    assert cohere.last.body["thinking"] == {"type": "enabled", "token_budget": 2048}


def test_embeddings_input_type_from_request_provider_or_default(hosts_client, cohere):
    answer = hosts_client.embeddings.create(
        model="cohere-embed", input=["one", "two"], encoding_format="float"
    )
    assert len(answer.data) == 2 and len(answer.data[0].embedding) == 8
    assert answer.usage.prompt_tokens == 2
    assert cohere.last.path == "/v2/embed"
    assert cohere.last.body["input_type"] == "search_document"
    assert cohere.last.body["embedding_types"] == ["float"]
    hosts_client.embeddings.create(model="cohere-embed-query", input="one")
    assert cohere.last.body["input_type"] == "search_query"  # the provider's default
    asked = hosts_client.embeddings.create(
        model="cohere-embed-query",
        input="one",
        dimensions=4,
        extra_body={"input_type": "classification"},
    )
    assert cohere.last.body["input_type"] == "classification"
    assert cohere.last.body["output_dimension"] == 4
    assert len(asked.data[0].embedding) == 4  # the SDK decoded the gateway's base64


def test_embeddings_base64_is_little_endian_float32(hosts_gateway):
    answer = httpx.post(
        f"{hosts_gateway.url}/v1/embeddings",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "cohere-embed", "input": "one", "encoding_format": "base64"},
        timeout=10,
    ).json()
    vector = struct.unpack("<8f", base64.b64decode(answer["data"][0]["embedding"]))
    assert len(vector) == 8


def test_errors(hosts_client, cohere):
    with pytest.raises(openai.BadRequestError) as overflow:
        hosts_client.chat.completions.create(
            model="command-a", messages=[{"role": "user", "content": "trigger context overflow"}]
        )
    assert overflow.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as unsupported:
        hosts_client.chat.completions.create(
            model="command-a", messages=[{"role": "user", "content": "x"}], n=2
        )
    assert unsupported.value.code == "unsupported_parameter"
    stream = hosts_client.chat.completions.create(
        model="command-a",
        messages=[{"role": "user", "content": "trigger stream error"}],
        stream=True,
    )
    with pytest.raises(openai.APIError) as failed:
        list(stream)  # a generation Cohere ends with ERROR is a failure, never a normal stop
    assert failed.value.body["code"] == "upstream_error"
    assert "cohere-main" in failed.value.message
