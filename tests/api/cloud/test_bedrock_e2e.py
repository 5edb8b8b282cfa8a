"""The official openai SDK against the gateway, through Bedrock deployments (the Bedrock
mock, which checks every request's SigV4 signature with botocore): Converse models (Nova),
Claude through InvokeModel, embeddings, errors, event-stream failures, fallbacks."""

from __future__ import annotations

import base64
import json

import anthropic
import openai
import pytest
from botocore.eventstream import EventStreamBuffer

from tests.mocks import bedrock_mock
from tests.mocks.server import Fault
from tests.support.gateway import MASTER_KEY

USER = [{"role": "user", "content": "hello there"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def headers_of(recorded) -> dict[str, str]:
    return {name.lower(): value for name, value in recorded.headers.items()}


def test_converse_plain_answer_signed_request(cloud_client, bedrock):
    raw = cloud_client.chat.completions.with_raw_response.create(
        model="nova",
        messages=[{"role": "system", "content": "Be brief."}, *USER],
        temperature=1.7,
        max_tokens=50,
        stop=["zzz"],
        seed=3,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 5 and completion.usage.completion_tokens == 3
    assert raw.headers["x-perpetuo-provider"] == "bedrock-main"
    sent = bedrock.last
    assert sent.path == f"/model/{bedrock_mock.NOVA}/converse"
    assert headers_of(sent)["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={bedrock_mock.ACCESS_KEY}/"
    )
    assert "x-amz-security-token" not in headers_of(sent)
    body = sent.body
    assert body["system"] == [{"text": "Be brief."}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "hello there"}]}]
    assert body["inferenceConfig"] == {
        "maxTokens": 50,
        "temperature": 1.0,
        "stopSequences": ["zzz"],
    }
    assert "seed" not in json.dumps(body)


def test_temporary_keys_and_api_key(cloud_client, bedrock):
    answer = cloud_client.chat.completions.create(model="nova-temp", messages=USER)
    assert answer.choices[0].message.content == "Echo: hello there"
    assert headers_of(bedrock.last)["x-amz-security-token"] == bedrock_mock.SESSION_TOKEN
    answer = cloud_client.chat.completions.create(model="nova-apikey", messages=USER)
    assert answer.choices[0].message.content == "Echo: hello there"
    assert headers_of(bedrock.last)["authorization"] == f"Bearer {bedrock_mock.API_KEY}"


def test_container_role_credentials_are_fetched_once_and_signed_with(cloud_client, bedrock):
    for _ in range(2):
        answer = cloud_client.chat.completions.create(model="nova-role", messages=USER)
        assert answer.choices[0].message.content == "Echo: hello there"
    assert bedrock.credential_fetches <= 1  # cached (fetched here, or earlier in the session)
    for sent in bedrock.requests[-2:]:
        headers = headers_of(sent)
        assert f"Credential={bedrock_mock.TEMP_ACCESS_KEY}/" in headers["authorization"]
        assert headers["x-amz-security-token"] == bedrock_mock.SESSION_TOKEN


def test_wrong_secret_is_the_gateways_credential_failing_and_fails_over(cloud_client, bedrock):
    answer = cloud_client.chat.completions.with_raw_response.create(
        model="nova-failover", messages=USER
    )
    assert answer.parse().choices[0].message.content == "Echo: hello there"
    assert answer.headers["x-perpetuo-provider"] == "bedrock-main"
    assert len(bedrock.requests) == 2  # the first, refused for its signature, then the second


def test_converse_stream_is_decoded_from_event_stream_frames(cloud_client, bedrock):
    stream = cloud_client.chat.completions.create(
        model="nova",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream me please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 4
    assert bedrock.last.path.endswith("/converse-stream")
    # The mock's own framing is AWS's: botocore's decoder reads the same bytes.
    buffer = EventStreamBuffer()
    buffer.add_data(bedrock.answers[-1])
    kinds = [message.headers[":event-type"] for message in buffer]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]


def test_tool_round_trip(cloud_client, bedrock):
    first = cloud_client.chat.completions.create(
        model="nova",
        messages=[{"role": "user", "content": "weather in Paris"}],
        tools=[WEATHER],
        tool_choice="required",
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "weather in Paris"}
    assert bedrock.last.body["toolConfig"]["toolChoice"] == {"any": {}}
    second = cloud_client.chat.completions.create(
        model="nova",
        messages=[
            {"role": "user", "content": "weather in Paris"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
        tools=[WEATHER],
    )
    assert second.choices[0].message.content == "The tool returned: sunny, 21C"
    turns = bedrock.last.body["messages"]
    assert turns[1]["content"][0]["toolUse"]["toolUseId"] == call.id
    assert turns[2]["content"][0]["toolResult"]["toolUseId"] == call.id


def test_streamed_tool_calls(cloud_client):
    stream = cloud_client.chat.completions.create(
        model="nova",
        messages=[{"role": "user", "content": "weather in Oslo"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    chunks = list(stream)
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].id and calls[0].function.name == "get_weather"
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    assert json.loads(arguments) == {"location": "weather in Oslo"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_structured_output_through_the_json_tool(cloud_client, bedrock):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    answer = cloud_client.chat.completions.create(
        model="nova",
        messages=[{"role": "user", "content": "Lyon"}],
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    assert json.loads(answer.choices[0].message.content) == {"city": "Lyon"}
    assert answer.choices[0].finish_reason == "stop"
    assert bedrock.last.body["toolConfig"]["toolChoice"] == {
        "tool": {"name": "perpetuo_json_response"}
    }


def test_image_and_document_in(cloud_client, bedrock):
    answer = cloud_client.chat.completions.create(
        model="nova",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {
                        "type": "file",
                        "file": {
                            "filename": "q3 report.v2.pdf",
                            "file_data": f"data:application/pdf;base64,{PNG}",
                        },
                    },
                ],
            }
        ],
    )
    assert answer.choices[0].message.content == "Echo: what is this [1 image(s)]"
    blocks = bedrock.last.body["messages"][0]["content"]
    assert blocks[1] == {"image": {"format": "png", "source": {"bytes": PNG}}}
    assert blocks[2]["document"]["format"] == "pdf"
    assert blocks[2]["document"]["name"] == "q3 report-v2"


def test_image_url_bedrock_cannot_fetch_is_refused_before_calling(cloud_client, bedrock):
    with pytest.raises(openai.BadRequestError) as exc:
        cloud_client.chat.completions.create(
            model="nova",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
                    ],
                }
            ],
        )
    assert exc.value.code == "unsupported_parameter"
    assert not bedrock.requests


def test_cached_tokens_and_guardrail(cloud_client):
    cached = cloud_client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "trigger cache hit"}]
    )
    assert cached.usage.prompt_tokens == 6 + 10 + 2  # fresh + read + written
    assert cached.usage.prompt_tokens_details.cached_tokens == 10
    guarded = cloud_client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "trigger guardrail"}]
    )
    assert guarded.choices[0].finish_reason == "content_filter"


@pytest.mark.parametrize(
    ("trigger", "error", "status"),
    [
        ("trigger context overflow", openai.BadRequestError, 400),
        ("trigger throttling", openai.RateLimitError, 429),
        ("trigger model not ready", openai.APIStatusError, 503),
        ("trigger unavailable", openai.APIStatusError, 503),
        ("trigger access denied", openai.APIStatusError, 502),
    ],
)
def test_bedrock_errors_reach_clients_as_their_kind(cloud_client, trigger, error, status):
    with pytest.raises(error) as exc:
        cloud_client.chat.completions.create(
            model="nova", messages=[{"role": "user", "content": trigger}]
        )
    assert exc.value.status_code == status
    if status == 400:
        assert exc.value.code == "context_length_exceeded"
    if status == 502:
        assert exc.value.code == "upstream_authentication_failed"


def test_validation_exception_is_the_clients_mistake(cloud_client, bedrock):
    bedrock.fail_next(
        Fault(
            status=400,
            body={"message": "The model returned the following errors: bad value"},
            headers={"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/"},
        )
    )
    with pytest.raises(openai.BadRequestError) as exc:
        cloud_client.chat.completions.create(model="nova", messages=USER)
    assert "bad value" in exc.value.message
    assert len(bedrock.requests) == 1  # not retried elsewhere


@pytest.mark.parametrize(
    ("trigger", "code", "delivered"),
    [
        # modelStreamErrorException after the first delta: a model failure, counted as such.
        ("trigger stream exception", "upstream_error", "Echo:"),
        ("trigger crc corruption", "upstream_bad_response", ""),  # the second message's CRC
        ("trigger truncated frame", "upstream_bad_response", ""),  # the body ends inside it
    ],
)
def test_broken_event_streams_end_with_a_clean_error(cloud_client, trigger, code, delivered):
    stream = cloud_client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": trigger}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in stream:
            received.append(chunk)
    assert received[0].choices[0].delta.role == "assistant"  # messageStart got through
    assert "".join(c.choices[0].delta.content or "" for c in received) == delivered
    assert exc.value.code == code
    assert exc.value.message.startswith("bedrock-main: ")


def test_fallback_from_bedrock_to_openai_and_to_bedrock(cloud_client, bedrock):
    raw = cloud_client.chat.completions.with_raw_response.create(
        model="nova-then-openai", messages=[{"role": "user", "content": "trigger unavailable"}]
    )
    assert raw.headers["x-perpetuo-provider"] == "openai-main"
    assert raw.parse().choices[0].message.content
    raw = cloud_client.chat.completions.with_raw_response.create(
        model="anthropic-then-bedrock-claude",
        messages=[{"role": "user", "content": "trigger overloaded now"}],
    )
    assert raw.headers["x-perpetuo-provider"] == "bedrock-main"
    assert raw.parse().choices[0].message.content == "Echo: trigger overloaded now"


def test_claude_through_invoke_model(cloud_client, bedrock):
    answer = cloud_client.chat.completions.create(model="bedrock-claude", messages=USER)
    assert answer.choices[0].message.content == "Echo: hello there"
    sent = bedrock.last
    assert sent.path == f"/model/us.{bedrock_mock.CLAUDE}/invoke"
    assert sent.body["anthropic_version"] == "bedrock-2023-05-31"
    assert "model" not in sent.body and sent.body["max_tokens"] == 4096
    stream = cloud_client.chat.completions.create(
        model="bedrock-claude", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Echo: hello there"
    )
    assert chunks[-1].usage.completion_tokens == 3
    assert bedrock.last.path.endswith("/invoke-with-response-stream")


def test_claude_thinking_signatures_survive_a_tool_round_trip(cloud_client, bedrock):
    thinking = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    first = cloud_client.chat.completions.create(
        model="bedrock-claude",
        messages=[{"role": "user", "content": "weather in Rome"}],
        tools=[WEATHER],
        max_tokens=2000,
        extra_body=thinking,
    )
    message = first.choices[0].message.model_dump(exclude_none=True)
    assert message["thinking_blocks"][0]["signature"]
    second = cloud_client.chat.completions.create(
        model="bedrock-claude",
        messages=[
            {"role": "user", "content": "weather in Rome"},
            message,
            {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "warm"},
        ],
        tools=[WEATHER],
        max_tokens=2000,
        extra_body=thinking,
    )
    assert second.choices[0].message.content == "The tool returned: warm"
    replayed = bedrock.last.body["messages"][1]["content"][0]
    assert replayed == message["thinking_blocks"][0]  # verbatim: the mock checked the signature


def test_titan_and_cohere_embeddings(cloud_client, bedrock):
    titan = cloud_client.embeddings.create(
        model="titan-embed", input="alpha beta", dimensions=256, encoding_format="float"
    )
    assert len(titan.data[0].embedding) == 256
    assert titan.usage.prompt_tokens == 2
    assert bedrock.last.body == {"inputText": "alpha beta", "dimensions": 256}
    cohere = cloud_client.embeddings.create(
        model="cohere-embed", input=["a", "b c"], encoding_format="float"
    )
    assert [len(d.embedding) for d in cohere.data] == [8, 8]
    with pytest.raises(openai.BadRequestError) as exc:
        cloud_client.embeddings.create(model="titan-embed", input=["one", "two"])
    assert exc.value.code == "unsupported_parameter"


@pytest.mark.parametrize("model", ["nova", "bedrock-claude"])
def test_messages_clients_reach_bedrock_through_the_translated_lane(cloud_gateway, model):
    client = anthropic.Anthropic(base_url=cloud_gateway.url, api_key=MASTER_KEY, max_retries=0)
    message = client.messages.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "hello there"}]
    )
    assert message.content[0].text == "Echo: hello there"
    assert message.stop_reason == "end_turn"
    with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "hello there"}]
    ) as stream:
        assert "".join(stream.text_stream) == "Echo: hello there"
        assert stream.get_final_message().usage.output_tokens == 3
