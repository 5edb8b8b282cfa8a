"""The Responses API through a real gateway process with the official openai SDK, sync and
async, on every provider kind: create, stream, parse, previous_response_id chains (also
across providers mid-conversation), function-call round trips, stored responses, their
workspace isolation, built-in tools and what the gateway refuses."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.api.cache_support import Tenant
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY

ALIASES = {"openai": "gpt-4o-mini", "azure": "azure-v1-gpt", "anthropic": "claude"}
ALIASES["gemini"] = "gemini-flash"
EVERY = pytest.mark.parametrize("alias", list(ALIASES.values()))
NATIVE = ("gpt-4o-mini", "azure-v1-gpt")  # deployments that speak the Responses API
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
REASONING = {"effort": "medium", "summary": "auto"}
SEALED = ["reasoning.encrypted_content"]


@pytest.fixture(scope="module")
def client(gateway) -> openai.OpenAI:
    """One client for the module (building one per test costs more than most tests)."""
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0)


@pytest.fixture(scope="module")
def async_client(gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=MASTER_KEY, max_retries=0)


class Person(BaseModel):
    name: str
    age: int


def upstream(mocks: dict[str, Any], alias: str) -> Any:
    """The mock serving `alias`."""
    return mocks["openai" if alias in NATIVE else "anthropic" if alias == "claude" else "gemini"]


def upstream_texts(mocks: dict[str, Any], alias: str) -> str:
    """Every text the last upstream request carried, in one string (any wire format)."""
    return repr(upstream(mocks, alias).last.body)


def calls(response: Any) -> list[Any]:
    return [item for item in response.output if item.type == "function_call"]


# -- create ---------------------------------------------------------------------------------


@EVERY
def test_create_with_string_input_and_instructions(client, mocks, alias):
    response = client.responses.create(
        model=alias, input="hello there", instructions="Answer briefly."
    )
    assert response.object == "response" and response.status == "completed"
    assert response.model and response.output_text == "Echo: hello there"
    assert response.instructions == "Answer briefly."
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert "Answer briefly." in upstream_texts(mocks, alias)  # the instructions reached it


@EVERY
def test_create_with_item_list_input(client, mocks, alias):
    response = client.responses.create(
        model=alias,
        input=[
            {"role": "developer", "content": "Be terse."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"role": "assistant", "content": "Echo: hi"},
            {"role": "user", "content": "and again"},
        ],
    )
    assert response.output_text == "Echo: and again"
    [message] = response.output
    assert message.type == "message" and message.role == "assistant"
    assert message.id and message.status == "completed"
    sent = upstream_texts(mocks, alias)
    assert "Be terse." in sent and "Echo: hi" in sent


# -- streams --------------------------------------------------------------------------------


def check_event_sequence(events: list[Any]) -> None:
    """Framing every Responses stream keeps: created, in_progress, ..., one terminal event;
    numbered in order; every item and part opened is closed."""
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed" and kinds.count("response.completed") == 1
    assert [event.sequence_number for event in events] == list(range(len(events)))
    added = [e.output_index for e in events if e.type == "response.output_item.added"]
    done = [e.output_index for e in events if e.type == "response.output_item.done"]
    assert sorted(added) == sorted(done) == list(range(len(added)))
    opened = [(e.output_index, e.content_index) for e in events if e.type.endswith("part.added")]
    closed = [(e.output_index, e.content_index) for e in events if e.type.endswith("part.done")]
    assert sorted(opened) == sorted(closed)


@EVERY
def test_stream_events_and_final_response(client, alias):
    with client.responses.stream(model=alias, input="stream this please") as stream:
        events = list(stream)
        final = stream.get_final_response()
    check_event_sequence(events)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == "Echo: stream this please"
    assert final.id == events[0].response.id and final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens > 0


@EVERY
def test_stream_with_a_function_call(client, alias):
    with client.responses.stream(model=alias, input="weather in Oslo", tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    check_event_sequence(events)
    [call] = calls(final)
    pieces = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert "".join(pieces) == call.arguments == '{"city":"weather in Oslo"}'
    assert call.name == "get_weather" and call.call_id


@pytest.mark.parametrize(
    "alias,fault",
    [
        ("gpt-4o-mini", None),  # OpenAI's own error events (the mock's "trigger stream error")
        ("claude", None),  # Anthropic's error event, through the chat form
        ("gemini-flash", Fault(cut_after=2)),  # the connection drops mid-answer
    ],
)
def test_a_mid_stream_failure_ends_with_error_then_response_failed(client, mocks, alias, fault):
    if fault is not None:
        upstream(mocks, alias).fail_next(fault)
    with client.responses.stream(model=alias, input="trigger stream error now") as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and "response.output_text.delta" in kinds
    assert kinds[-2:] == ["error", "response.failed"] and "response.completed" not in kinds
    # The gateway's failure events continue the stream: numbered on, naming its response.
    assert [event.sequence_number for event in events] == list(range(len(events)))
    failed = events[-1].response
    assert failed.id == events[0].response.id and failed.status == "failed"
    assert failed.error.code == "server_error" and failed.error.message
    assert events[-2].message == failed.error.message


# -- structured output ----------------------------------------------------------------------


@EVERY
def test_parse_into_a_pydantic_model(client, mocks, alias):
    response = client.responses.parse(model=alias, input="Ada", text_format=Person)
    assert response.output_parsed == Person(name="Ada", age=1)
    assert "age" in upstream_texts(mocks, alias)  # the schema reached the provider


@EVERY
async def test_async_client_create_stream_and_parse(async_client, alias):
    created = await async_client.responses.create(
        model=alias, input=[{"role": "user", "content": "hi"}]
    )
    assert created.output_text == "Echo: hi"
    async with async_client.responses.stream(model=alias, input="async stream") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Echo: async stream"
    parsed = await async_client.responses.parse(model=alias, input="Bo", text_format=Person)
    assert parsed.output_parsed == Person(name="Bo", age=1)


# -- conversations --------------------------------------------------------------------------


@EVERY
def test_previous_response_id_chain_of_three_turns(client, mocks, alias):
    first = client.responses.create(model=alias, input="one", instructions="Be kind.")
    second = client.responses.create(model=alias, input="two", previous_response_id=first.id)
    third = client.responses.create(model=alias, input="three", previous_response_id=second.id)
    assert third.output_text == "Echo: three" and third.previous_response_id == second.id
    last = upstream(mocks, alias).last.body
    if alias in NATIVE:  # the provider holds the conversation: it gets the id, as sent
        assert last["previous_response_id"] == second.id and last["input"] == "three"
    else:  # the gateway replays every earlier turn
        sent = repr(last)
        for text in ("one", "Echo: one", "two", "Echo: two", "three"):
            assert f"'{text}'" in sent
    assert client.responses.retrieve(third.id).previous_response_id == second.id


@EVERY
def test_function_call_round_trip_with_previous_response_id(client, mocks, alias):
    first = client.responses.create(model=alias, input="weather in Paris", tools=[WEATHER])
    [call] = calls(first)
    assert call.name == "get_weather" and call.arguments == '{"city":"weather in Paris"}'
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
    second = client.responses.create(
        model=alias, previous_response_id=first.id, input=[output], tools=[WEATHER]
    )
    assert second.output_text == "The tool returned: sunny"
    sent = upstream_texts(mocks, alias)
    assert "sunny" in sent
    if alias != "gemini-flash":  # Gemini has no call ids: the gateway pairs calls by name
        assert call.call_id in sent


@EVERY
def test_function_call_round_trip_without_stored_state(client, alias):
    first = client.responses.create(
        model=alias, input="weather in Rome", tools=[WEATHER], store=False
    )
    [call] = calls(first)
    replayed = [item.model_dump(exclude_none=True) for item in first.output]
    second = client.responses.create(
        model=alias,
        store=False,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "weather in Rome"},
            *replayed,
            {"type": "function_call_output", "call_id": call.call_id, "output": "windy"},
        ],
    )
    assert second.output_text == "The tool returned: windy"


def test_a_conversation_moves_between_providers(client, mocks):
    """claude -> gpt (answering claude's tool call) -> gemini -> claude, with reasoning on:
    each turn sees the whole conversation, and no provider gets reasoning it cannot read."""
    options = {"tools": [WEATHER], "reasoning": REASONING, "include": SEALED}
    first = client.responses.create(model="claude", input="weather in Paris", **options)
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    [call] = calls(first)
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "rainy"}
    second = client.responses.create(
        model="gpt-4o-mini", previous_response_id=first.id, input=[output], **options
    )
    assert second.output_text == "The tool returned: rainy"
    sent = mocks["openai"].last.body
    assert "previous_response_id" not in sent  # the conversation was not OpenAI's
    assert [item.get("type") for item in sent["input"]] == [
        "message",
        "function_call",
        "function_call_output",
    ]  # Claude's sealed thinking is not OpenAI's to verify: left out
    third = client.responses.create(
        model="gemini-flash", previous_response_id=second.id, input="and tomorrow?"
    )
    assert third.output_text == "Echo: and tomorrow?"
    fourth = client.responses.create(
        model="claude", previous_response_id=third.id, input="thanks", reasoning=REASONING
    )
    assert fourth.output_text == "Echo: thanks"
    turns = mocks["anthropic"].last.body["messages"]
    assert [turn["role"] for turn in turns] == ["user", "assistant"] * 3 + ["user"]
    assert turns[1]["content"][0]["type"] == "thinking"  # Claude's own thinking, replayed
    assert "rainy" in repr(turns) and "Echo: and tomorrow?" in repr(turns)


def test_claude_answers_a_tool_call_another_provider_made_with_reasoning_on(client, mocks):
    options = {"tools": [WEATHER], "reasoning": REASONING, "include": SEALED}
    first = client.responses.create(model="gpt-4o-mini", input="weather in Lima", **options)
    [call] = calls(first)
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "foggy"}
    second = client.responses.create(
        model="claude", previous_response_id=first.id, input=[output], **options
    )
    assert second.output_text == "The tool returned: foggy"
    # The tool-use turn opened without Claude's thinking: it continues without thinking.
    assert "thinking" not in mocks["anthropic"].last.body
    third = client.responses.create(
        model="claude", previous_response_id=second.id, input="thanks", reasoning=REASONING
    )
    assert [item.type for item in third.output] == ["reasoning", "message"]
    assert mocks["anthropic"].last.body["thinking"]["type"] == "enabled"  # a new turn thinks


# -- stored responses -----------------------------------------------------------------------


@pytest.mark.parametrize("alias", ["gpt-4o-mini", "claude"])
def test_retrieve_input_items_and_delete(client, alias):
    created = client.responses.create(
        model=alias,
        instructions="Be brief.",
        input=[{"role": "user", "content": "first"}, {"role": "user", "content": "second"}],
    )
    retrieved = client.responses.retrieve(created.id)
    assert retrieved.id == created.id and retrieved.output_text == created.output_text
    items = list(client.responses.input_items.list(created.id, order="asc"))
    assert [item.type for item in items] == ["message", "message"]
    assert [item.content[0].text for item in items] == ["first", "second"]
    assert all(item.role == "user" and item.id and item.status for item in items)
    newest_first = list(client.responses.input_items.list(created.id))
    assert [item.id for item in newest_first] == [item.id for item in reversed(items)]
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


@pytest.mark.parametrize("alias", ["gpt-4o-mini", "claude"])
def test_store_false_is_not_retrievable_nor_continued(client, alias):
    created = client.responses.create(model=alias, input="forget me", store=False)
    assert created.output_text == "Echo: forget me" and created.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=alias, input="more", previous_response_id=created.id)
    assert caught.value.code == "previous_response_not_found"


def test_missing_previous_response_is_a_400_naming_it(client, mocks):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="claude", input="x", previous_response_id="resp_nope")
    error = caught.value
    assert error.status_code == 400 and error.code == "previous_response_not_found"
    assert error.param == "previous_response_id" and "resp_nope" in error.message
    assert not mocks["anthropic"].requests


def test_another_workspace_cannot_see_or_continue_a_response(gateway):
    mine, theirs = Tenant(gateway, {}), Tenant(gateway, {})
    native = mine.client.responses.create(model="gpt-4o-mini", input="private")
    translated = mine.client.responses.create(model="claude", input="private")
    for response_id in (native.id, translated.id):
        with pytest.raises(openai.NotFoundError):
            theirs.client.responses.retrieve(response_id)
        with pytest.raises(openai.NotFoundError):
            theirs.client.responses.input_items.list(response_id)
        with pytest.raises(openai.NotFoundError):
            theirs.client.responses.delete(response_id)
        with pytest.raises(openai.BadRequestError) as caught:
            theirs.client.responses.create(
                model="gpt-4o-mini", input="leak?", previous_response_id=response_id
            )
        assert caught.value.code == "previous_response_not_found"
        assert mine.client.responses.retrieve(response_id).output_text == "Echo: private"


# -- what only some deployments serve, and what the gateway refuses -------------------------


@pytest.mark.parametrize("alias", NATIVE)
def test_built_in_tools_are_served_natively(client, mocks, alias):
    response = client.responses.create(
        model=alias, input="news today", tools=[{"type": "web_search_preview"}]
    )
    assert response.status == "completed"
    assert mocks["openai"].last.body["tools"] == [{"type": "web_search_preview"}]


@pytest.mark.parametrize("alias", ["claude", "gemini-flash"])
def test_built_in_tools_elsewhere_are_a_clear_400(client, mocks, alias):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(
            model=alias, input="news", tools=[WEATHER, {"type": "web_search_preview"}]
        )
    error = caught.value
    assert error.param == "tools[1]" and "web_search_preview" in error.message
    assert not upstream(mocks, alias).requests


def test_background_is_a_clear_400(client, mocks):
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-4o-mini", input="later", background=True)
    assert caught.value.param == "background" and "background" in caught.value.message
    assert not mocks["openai"].requests


@pytest.mark.parametrize(("alias", "kind"), [("gpt-4o-mini", "exact"), ("claude", "estimate")])
def test_input_tokens_are_counted_exactly_by_openai_and_estimated_elsewhere(client, alias, kind):
    raw = client.responses.input_tokens.with_raw_response.count(
        model=alias, input="How many tokens is this?", instructions="Be brief."
    )
    assert raw.headers["x-perpetuo-token-count"] == kind
    counted = raw.parse()
    assert counted.input_tokens > 0
    created = client.responses.create(
        model=alias, input="How many tokens is this?", instructions="Be brief."
    )
    if kind == "exact":  # the provider's own count: what the answer then reports
        assert counted.input_tokens == created.usage.input_tokens
