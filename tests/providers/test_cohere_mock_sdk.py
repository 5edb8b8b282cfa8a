"""The Cohere mock checked against Cohere's own SDK (`cohere.ClientV2`): if the SDK can chat,
stream, call tools, cite documents, embed and list models against it, and reads its errors
as the right exceptions, the mock speaks Cohere's wire format (which the adapter tests then
rely on)."""

from __future__ import annotations

from collections.abc import Iterator

import cohere
import pytest

from tests.mocks.cohere_mock import CohereMock

# The SDK's own pydantic compatibility layer warns on every discriminated union it reads.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
KEY = "co-test-key"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def mock() -> Iterator[CohereMock]:
    server = CohereMock(KEY).start()
    yield server
    server.stop()


@pytest.fixture
def client(mock: CohereMock) -> cohere.ClientV2:
    mock.reset()
    return cohere.ClientV2(api_key=KEY, base_url=mock.url, timeout=10)


def test_chat_answer_with_billed_usage(client):
    answer = client.chat(
        model="command-a-03-2025",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello there"},
        ],
        temperature=0.3,
        p=0.9,
    )
    assert answer.finish_reason == "COMPLETE"
    assert answer.message.content[0].text == "Echo: hello there"
    assert answer.usage.billed_units.output_tokens == 3
    assert answer.usage.tokens.input_tokens > answer.usage.billed_units.input_tokens


def test_chat_stream_events(client):
    events = list(
        client.chat_stream(
            model="command-a-03-2025", messages=[{"role": "user", "content": "stream me"}]
        )
    )
    kinds = [event.type for event in events]
    assert kinds[0] == "message-start" and kinds[-1] == "message-end"
    text = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")
    assert text == "Echo: stream me"
    assert events[-1].delta.finish_reason == "COMPLETE"
    assert events[-1].delta.usage.billed_units.output_tokens == 3


def test_tool_call_round_trip_and_stream(client):
    first = client.chat(
        model="command-a-03-2025",
        messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=[WEATHER],
        tool_choice="REQUIRED",
    )
    assert first.finish_reason == "TOOL_CALL"
    call = first.message.tool_calls[0]
    assert call.function.name == "get_weather" and first.message.tool_plan
    follow_up = client.chat(
        model="command-a-03-2025",
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "tool_calls": [call], "tool_plan": first.message.tool_plan},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=[WEATHER],
    )
    assert follow_up.message.content[0].text == "The tool returned: sunny"
    events = list(
        client.chat_stream(
            model="command-a-03-2025",
            messages=[{"role": "user", "content": "weather?"}],
            tools=[WEATHER],
        )
    )
    kinds = {event.type for event in events}
    assert {"tool-plan-delta", "tool-call-start", "tool-call-delta", "tool-call-end"} <= kinds
    arguments = "".join(
        e.delta.message.tool_calls.function.arguments for e in events if e.type == "tool-call-delta"
    )
    assert arguments == '{"city":"weather?"}'


def test_documents_are_cited(client):
    answer = client.chat(
        model="command-a-03-2025",
        messages=[{"role": "user", "content": "what do the docs say?"}],
        documents=[{"id": "d1", "data": {"title": "Guide", "text": "Echo is a test."}}],
    )
    citation = answer.message.citations[0]
    assert (citation.start, citation.end, citation.text) == (0, 5, "Echo:")
    assert citation.sources[0].id == "d1" and citation.sources[0].document["title"] == "Guide"


def test_embed_by_type_and_input_type_required(client):
    answer = client.embed(
        model="embed-v4.0",
        texts=["one", "two words"],
        input_type="search_query",
        embedding_types=["float"],
    )
    assert len(answer.embeddings.float_) == 2 and len(answer.embeddings.float_[0]) == 8
    assert answer.meta.billed_units.input_tokens == 3
    with pytest.raises(cohere.BadRequestError) as refused:
        client.embed(model="embed-v4.0", texts=["x"], input_type="", embedding_types=["float"])
    assert "input_type" in refused.value.body["message"]


def test_models_are_listed_in_pages(client):
    first = client.models.list(page_size=3)
    assert [m.name for m in first.models] == [
        "command-a-03-2025",
        "command-r7b-12-2024",
        "embed-v4.0",
    ]
    rest = client.models.list(page_size=3, page_token=first.next_page_token)
    assert [m.name for m in rest.models] == ["rerank-v3.5"] and rest.next_page_token is None
    assert first.models[0].context_length == 256000


def test_errors_reach_the_sdk_as_its_exceptions(client, mock):
    with pytest.raises(cohere.BadRequestError) as bad:
        client.chat(model="command-a-03-2025", messages=[{"role": "user", "content": "x"}], p=1.0)
    assert "p must be between" in bad.value.body["message"]
    with pytest.raises(cohere.UnauthorizedError):
        cohere.ClientV2(api_key="wrong", base_url=mock.url).chat(
            model="command-a-03-2025", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(cohere.BadRequestError) as overflow:
        client.chat(
            model="command-a-03-2025",
            messages=[{"role": "user", "content": "trigger context overflow"}],
        )
    assert "too many tokens" in overflow.value.body["message"]
