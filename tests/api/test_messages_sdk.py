"""The Messages API through a real gateway process with the official anthropic SDK, sync and
async, on every provider kind: create, stream helpers, tool round trips, extended thinking
(signatures round-tripped to Anthropic, mapped to reasoning effort elsewhere), images,
count_tokens, the model list, errors in Anthropic's shape and mid-stream failures."""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import httpx
import pytest

from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY

ALIASES = ["claude", "gpt-4o-mini", "azure-v1-gpt", "gemini-flash"]
EVERY = pytest.mark.parametrize("alias", ALIASES)
OTHERS = pytest.mark.parametrize("alias", ALIASES[1:])
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
# A 1x1 PNG.
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d4944415478da63f8cfc0f01f0005000201a3b5f1c50000000049454e44ae426082"
    )
).decode()


@pytest.fixture(scope="module")
def claude(gateway) -> anthropic.Anthropic:
    """The SDK as most clients build it: the key in x-api-key."""
    return anthropic.Anthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0)


@pytest.fixture(scope="module")
def aclaude(gateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=MASTER_KEY, max_retries=0)


def upstream(mocks: dict[str, Any], alias: str) -> Any:
    kind = {"claude": "anthropic", "gemini-flash": "gemini"}.get(alias, "openai")
    return mocks[kind]


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"max_tokens": 200, "messages": [{"role": "user", "content": text}], **extra}


# -- create, auth, streams ------------------------------------------------------------------


@EVERY
def test_create(claude, mocks, alias):
    message = claude.messages.create(model=alias, system="Answer briefly.", **ask("hello"))
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_") and message.stop_reason == "end_turn"
    assert [(block.type, block.text) for block in message.content] == [("text", "Echo: hello")]
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert "Answer briefly." in repr(upstream(mocks, alias).last.body)


@pytest.mark.parametrize("how", ["api_key", "auth_token"])
def test_x_api_key_and_bearer_both_authenticate(gateway, how):
    client = anthropic.Anthropic(base_url=gateway.url, max_retries=0, **{how: MASTER_KEY})
    assert client.messages.create(model="claude", **ask("hi")).content[0].text == "Echo: hi"
    wrong = anthropic.Anthropic(base_url=gateway.url, max_retries=0, **{how: "pk-not-a-key"})
    with pytest.raises(anthropic.AuthenticationError) as caught:
        wrong.messages.create(model="claude", **ask("hi"))
    assert caught.value.body["error"]["type"] == "authentication_error"


@EVERY
def test_stream_helpers_give_the_same_message_as_create(claude, alias):
    whole = claude.messages.create(model=alias, **ask("stream in small pieces"))
    with claude.messages.stream(model=alias, **ask("stream in small pieces")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text == whole.content[0].text
    assert len(final.content) == 1 and final.stop_reason == whole.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens > 0
    assert final.usage.input_tokens == whole.usage.input_tokens > 0


@EVERY
async def test_async_create_and_stream(aclaude, alias):
    message = await aclaude.messages.create(model=alias, **ask("async hello"))
    assert message.content[0].text == "Echo: async hello"
    async with aclaude.messages.stream(model=alias, **ask("async stream")) as stream:
        pieces = [piece async for piece in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == final.content[0].text == "Echo: async stream"


# -- tools ----------------------------------------------------------------------------------


@EVERY
def test_tool_result_round_trip(claude, mocks, alias):
    history: list[Any] = [{"role": "user", "content": "weather in Paris"}]
    with claude.messages.stream(
        model=alias, max_tokens=200, tools=[WEATHER], messages=history
    ) as stream:
        called = stream.get_final_message()
    assert called.stop_reason == "tool_use"
    [use] = [block for block in called.content if block.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "weather in Paris"} and use.id
    history += [
        {"role": "assistant", "content": called.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}],
        },
    ]
    answer = claude.messages.create(model=alias, max_tokens=200, tools=[WEATHER], messages=history)
    assert answer.stop_reason == "end_turn"
    assert answer.content[-1].text == "The tool returned: sunny"
    if alias != "gemini-flash":  # Gemini pairs calls by name, without ids
        assert use.id in repr(upstream(mocks, alias).last.body)


# -- extended thinking ----------------------------------------------------------------------


def test_thinking_signatures_round_trip_to_claude_with_tools(claude, mocks):
    """The Anthropic mock checks every signature, as Anthropic does: a turn accepted after
    replaying thinking blocks proves they came back byte for byte."""
    thinking = {"type": "enabled", "budget_tokens": 2048}
    options = {"model": "claude", "max_tokens": 4096, "thinking": thinking, "tools": [WEATHER]}
    history: list[Any] = [{"role": "user", "content": "weather in Oslo, trigger redacted thinking"}]
    with claude.messages.stream(messages=history, **options) as stream:
        first = stream.get_final_message()
    assert [block.type for block in first.content] == [
        "thinking",
        "redacted_thinking",
        "tool_use",
    ]
    assert first.content[0].signature and first.content[0].thinking
    use = first.content[2]
    history += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "snow"}],
        },
    ]
    second = claude.messages.create(messages=history, **options)
    assert [block.type for block in second.content] == ["thinking", "redacted_thinking", "text"]
    assert second.content[2].text == "The tool returned: snow"
    sent = mocks["anthropic"].last.body
    assert sent["messages"][1]["content"][0] == first.content[0].model_dump(exclude_none=True)
    history += [
        {"role": "assistant", "content": second.content},
        {"role": "user", "content": "thanks"},
    ]
    third = claude.messages.create(messages=history, **options)  # every signature checked
    assert [block.type for block in third.content] == ["thinking", "tool_use"]
    forged = json.loads(json.dumps(history, default=lambda b: b.model_dump(exclude_none=True)))
    forged[1]["content"][0]["thinking"] += " (edited)"
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(messages=forged, **options)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "signature" in caught.value.message


@OTHERS
@pytest.mark.parametrize("budget,effort", [(2048, "low"), (8192, "medium"), (20000, "high")])
def test_thinking_elsewhere_is_a_reasoning_effort_without_thinking_blocks(
    claude, mocks, alias, budget, effort
):
    message = claude.messages.create(
        model=alias,
        max_tokens=budget + 1000,
        thinking={"type": "enabled", "budget_tokens": budget},
        messages=[{"role": "user", "content": "think hard about this"}],
    )
    assert [block.type for block in message.content] == ["text"]
    sent = upstream(mocks, alias).last.body
    if alias == "gemini-flash":
        budgets = {"low": 1024, "medium": 8192, "high": 24576}
        assert sent["generationConfig"]["thinkingConfig"]["thinkingBudget"] == budgets[effort]
    else:
        assert sent["reasoning_effort"] == effort


# -- images, token counts, models -----------------------------------------------------------


@EVERY
def test_base64_image_in(claude, mocks, alias):
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    message = claude.messages.create(
        model=alias,
        max_tokens=200,
        messages=[{"role": "user", "content": [image, {"type": "text", "text": "what is it"}]}],
    )
    assert message.content[0].text == "Echo: what is it [1 image(s)]"
    assert PNG in repr(upstream(mocks, alias).last.body)


@EVERY
def test_count_tokens(claude, mocks, alias):
    messages = [{"role": "user", "content": "count these four words"}]
    raw = claude.messages.with_raw_response.count_tokens(
        model=alias, system="Be brief.", messages=messages
    )
    counted = raw.parse().input_tokens
    if alias == "claude":  # Anthropic counts: the same number a message would report
        assert raw.headers["x-perpetuo-token-count"] == "exact"
        assert mocks["anthropic"].last.path == "/v1/messages/count_tokens"
        created = claude.messages.create(
            model=alias, system="Be brief.", **ask(messages[0]["content"])
        )
        assert counted == created.usage.input_tokens
    else:
        assert raw.headers["x-perpetuo-token-count"] == "estimate"
        assert 4 <= counted < 100
        assert not upstream(mocks, alias).requests  # nothing was sent to count


def test_models_list_and_retrieve_in_anthropics_shape(claude):
    models = list(claude.models.list())
    ids = [model.id for model in models]
    assert {"claude", "gpt-4o-mini", "azure-v1-gpt", "gemini-flash"} <= set(ids)
    assert all(model.type == "model" and model.created_at for model in models)
    one = claude.models.retrieve("claude")
    assert (one.id, one.type, one.display_name) == ("claude", "model", "claude")
    assert one.created_at == next(m for m in models if m.id == "claude").created_at
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("no-such-model")


# -- errors ---------------------------------------------------------------------------------


def test_errors_in_anthropics_shape(claude, gateway):
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="no-such-model", **ask("hi"))
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(
            model="claude", max_tokens=0, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(anthropic.AuthenticationError) as unknown:
        anthropic.Anthropic(
            base_url=gateway.url, api_key="pk-wrong", max_retries=0
        ).messages.create(model="claude", **ask("hi"))
    for caught, kind in (
        (missing, "not_found_error"),
        (bad, "invalid_request_error"),
        (unknown, "authentication_error"),
    ):
        body = caught.value.body
        assert body["type"] == "error" and body["error"]["type"] == kind
        assert body["error"]["message"] and body["request_id"] == caught.value.request_id
    assert "max_tokens" in bad.value.message
    raw = httpx.post(
        f"{gateway.url}/v1/messages",
        headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
        content=b'{"model": "claude", "max_tokens": 10, "messages": [',
    )
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    assert raw.json()["request_id"] == raw.headers["x-request-id"]


def sse_events(gateway: Any, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each event of a streamed Messages answer, read raw."""
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/messages",
        headers={"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"},
        json={**body, "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        raw = response.read().decode()
    events = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.mark.parametrize(
    "alias,fault",
    [
        ("claude", None),  # Anthropic's own error event (the mock's "trigger stream error")
        ("gpt-4o-mini", Fault(cut_after=3)),  # the connection drops mid-answer
        ("gemini-flash", Fault(cut_after=2)),
    ],
)
def test_a_mid_stream_failure_ends_with_an_error_event(claude, gateway, mocks, alias, fault):
    if fault is not None:
        upstream(mocks, alias).fail_next(fault)
    events = sse_events(gateway, {"model": alias, **ask("trigger stream error now")})
    names = [name for name, _ in events]
    assert names[0] == "message_start" and "content_block_delta" in names
    assert names[-1] == "error" and names.count("error") == 1
    assert "message_stop" not in names and "message_delta" not in names
    error = events[-1][1]
    assert error["type"] == "error" and error["error"]["type"] in ("overloaded_error", "api_error")
    assert error["error"]["message"]
    if fault is not None:
        upstream(mocks, alias).fail_next(fault)
    with (
        pytest.raises(anthropic.APIStatusError),
        claude.messages.stream(model=alias, **ask("trigger stream error now")) as stream,
    ):
        stream.get_final_message()
