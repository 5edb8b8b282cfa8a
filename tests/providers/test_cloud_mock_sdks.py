"""The Bedrock and Vertex AI mocks checked against the providers' own SDKs: if boto3,
google-genai and Anthropic's Bedrock and Vertex clients can talk to them, the mocks speak
the real wire formats (signing, event-stream framing, token exchange, paths, bodies)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from google import genai
from google.genai import types
from google.oauth2 import service_account

from tests.mocks import bedrock_mock, vertex_mock
from tests.mocks.bedrock_mock import BedrockMock
from tests.mocks.vertex_mock import VertexMock

USER = [{"role": "user", "content": [{"text": "hello there"}]}]


@pytest.fixture(scope="module")
def bedrock() -> Iterator[BedrockMock]:
    mock = BedrockMock().start()
    yield mock
    mock.stop()


@pytest.fixture(scope="module")
def vertex() -> Iterator[VertexMock]:
    mock = VertexMock().start()
    yield mock
    mock.stop()


def runtime(mock: BedrockMock, secret: str = bedrock_mock.SECRET_KEY, **keys: str):
    return boto3.client(
        "bedrock-runtime",
        region_name=bedrock_mock.REGION,
        endpoint_url=mock.url,
        aws_access_key_id=keys.get("key", bedrock_mock.ACCESS_KEY),
        aws_secret_access_key=secret,
        aws_session_token=keys.get("token"),
        config=Config(retries={"max_attempts": 0}),
    )


def test_boto3_converse_and_converse_stream(bedrock):
    client = runtime(bedrock)
    answer = client.converse(modelId=bedrock_mock.NOVA, messages=USER)
    assert answer["output"]["message"]["content"] == [{"text": "Echo: hello there"}]
    assert answer["stopReason"] == "end_turn"
    assert answer["usage"]["totalTokens"] == 8
    tools = {
        "tools": [
            {
                "toolSpec": {
                    "name": "lookup",
                    "inputSchema": {
                        "json": {"type": "object", "properties": {"q": {"type": "string"}}}
                    },
                }
            }
        ],
        "toolChoice": {"any": {}},
    }
    stream = client.converse_stream(modelId=bedrock_mock.NOVA, messages=USER, toolConfig=tools)
    events = list(stream["stream"])
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start["start"]["toolUse"]["name"] == "lookup"
    pieces = [
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e
    ]
    assert json.loads("".join(pieces)) == {"q": "hello there"}
    assert events[-2] == {"messageStop": {"stopReason": "tool_use"}}
    assert "usage" in events[-1]["metadata"]


def test_boto3_stream_exception_and_http_errors(bedrock):
    client = runtime(bedrock)
    trigger = [{"role": "user", "content": [{"text": "trigger stream exception"}]}]
    stream = client.converse_stream(modelId=bedrock_mock.NOVA, messages=trigger)
    with pytest.raises(botocore.exceptions.EventStreamError) as exc:
        list(stream["stream"])
    assert exc.value.response["Error"]["Code"] == "modelStreamErrorException"
    with pytest.raises(client.exceptions.ThrottlingException):
        client.converse(
            modelId=bedrock_mock.NOVA,
            messages=[{"role": "user", "content": [{"text": "trigger throttling"}]}],
        )
    with pytest.raises(client.exceptions.ValidationException) as exc:
        client.converse(
            modelId=bedrock_mock.NOVA, messages=[{"role": "assistant", "content": [{"text": "x"}]}]
        )
    assert "must start with a user message" in str(exc.value)


def test_boto3_signatures_are_checked(bedrock):
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        runtime(bedrock, secret="wrong").converse(modelId=bedrock_mock.NOVA, messages=USER)
    assert exc.value.response["Error"]["Code"] == "InvalidSignatureException"
    temporary = runtime(
        bedrock,
        bedrock_mock.TEMP_SECRET_KEY,
        key=bedrock_mock.TEMP_ACCESS_KEY,
        token=bedrock_mock.SESSION_TOKEN,
    )
    assert temporary.converse(modelId=bedrock_mock.NOVA, messages=USER)["stopReason"] == "end_turn"
    no_token = runtime(bedrock, bedrock_mock.TEMP_SECRET_KEY, key=bedrock_mock.TEMP_ACCESS_KEY)
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        no_token.converse(modelId=bedrock_mock.NOVA, messages=USER)
    assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_anthropic_bedrock_client_through_invoke_model(bedrock):
    client = anthropic.AnthropicBedrock(
        aws_access_key=bedrock_mock.ACCESS_KEY,
        aws_secret_key=bedrock_mock.SECRET_KEY,
        aws_region=bedrock_mock.REGION,
        base_url=bedrock.url,
        max_retries=0,
    )
    message = client.messages.create(
        model=bedrock_mock.CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "Echo: hi"
    with client.messages.stream(
        model=bedrock_mock.CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert "".join(stream.text_stream) == "Echo: hi"


def credentials(mock: VertexMock):
    info = vertex_mock.service_account(f"{mock.url}/token")
    return service_account.Credentials.from_service_account_info(info, scopes=[vertex_mock.SCOPE])


def test_google_genai_on_vertex(vertex):
    client = genai.Client(
        vertexai=True,
        project=vertex_mock.PROJECT,
        location=vertex_mock.LOCATION,
        credentials=credentials(vertex),
        http_options=types.HttpOptions(base_url=vertex.url, api_version="v1"),
    )
    answer = client.models.generate_content(model="gemini-2.5-flash", contents="hello vertex")
    assert answer.text == "Echo: hello vertex"
    pieces = [
        c.text
        for c in client.models.generate_content_stream(model="gemini-2.5-flash", contents="a b")
    ]
    assert "".join(p or "" for p in pieces) == "Echo: a b"
    embedded = client.models.embed_content(model="text-embedding-005", contents=["one", "two"])
    assert len(embedded.embeddings) == 2


def test_anthropic_vertex_client_through_raw_predict(vertex):
    client = anthropic.AnthropicVertex(
        project_id=vertex_mock.PROJECT,
        region=vertex_mock.LOCATION,
        credentials=credentials(vertex),
        base_url=f"{vertex.url}/v1",
        max_retries=0,
    )
    model = "claude-3-5-haiku@20241022"
    message = client.messages.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].text == "Echo: hi"
    with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert "".join(stream.text_stream) == "Echo: hi"
