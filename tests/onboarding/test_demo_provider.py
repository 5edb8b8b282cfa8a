"""The built-in demo provider: every kind of answer an app needs to try the gateway, with no
key and no network, deterministic, and labelled as a demo; also usable stand-alone."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.support.gateway import MASTER_KEY, GatewayProcess, free_port

CONFIG = {
    "providers": {"demo": {"type": "demo"}},
    "models": {
        "demo": {"deployments": [{"provider": "demo", "model": "perpetuo-demo"}]},
        "demo-embedding": {"deployments": [{"provider": "demo", "model": "perpetuo-demo"}]},
    },
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


@pytest.fixture(scope="module")
def demo_gateway(tmp_path_factory):
    with GatewayProcess(CONFIG, tmp_path_factory.mktemp("demo")) as process:
        yield process


@pytest.fixture
def client(demo_gateway):
    return openai.OpenAI(base_url=f"{demo_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0)


def ask(client, **params):
    return client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "Hello!"}], **params
    )


def test_chat_is_labelled_and_deterministic(client):
    first, second = ask(client), ask(client)
    text = first.choices[0].message.content
    assert text.startswith("[demo]") and "Hello!" in text
    assert second.choices[0].message.content == text
    assert first.model == "perpetuo-demo" and first.usage.total_tokens > 0


def test_streaming_matches_the_complete_answer(client):
    whole = ask(client).choices[0].message.content
    pieces = [c.choices[0].delta.content or "" for c in ask(client, stream=True) if c.choices]
    assert len(pieces) > 3 and "".join(pieces) == whole


def test_tool_calls_follow_the_schema_and_round_trip(client):
    answer = ask(client, tools=[WEATHER])
    call = answer.choices[0].message.tool_calls[0]
    assert answer.choices[0].finish_reason == "tool_calls"
    arguments = json.loads(call.function.arguments)
    assert call.function.name == "get_weather" and set(arguments) == {"city", "days"}
    assert isinstance(arguments["days"], int)
    final = client.chat.completions.create(
        model="demo",
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather?"},
            answer.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert final.choices[0].message.content == "[demo] The tool returned: sunny"


def test_structured_output_parses(client):
    class Answer(BaseModel):
        city: str
        temperature: float
        tags: list[str]

    parsed = (
        client.beta.chat.completions.parse(
            model="demo", messages=[{"role": "user", "content": "x"}], response_format=Answer
        )
        .choices[0]
        .message.parsed
    )
    assert isinstance(parsed, Answer) and parsed.tags


def test_embeddings_are_unit_vectors_and_stable(client):
    one = client.embeddings.create(model="demo-embedding", input=["a", "b"], dimensions=16)
    again = client.embeddings.create(model="demo-embedding", input=["a"], dimensions=16)
    vectors = [d.embedding for d in one.data]
    assert len(vectors) == 2 and len(vectors[0]) == 16 and vectors[0] != vectors[1]
    assert abs(sum(v * v for v in vectors[0]) - 1.0) < 1e-3
    assert again.data[0].embedding == vectors[0]


def test_the_demo_is_never_used_unless_configured(tmp_path):
    with GatewayProcess({}, tmp_path) as process:
        response = httpx.post(
            f"{process.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {MASTER_KEY}"},
            json={"model": "demo", "messages": [{"role": "user", "content": "x"}]},
        )
    assert response.status_code == 404


def test_demo_upstream_runs_alone():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "perpetuo", "demo-upstream", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="anything")
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = ask(client)
                break
            except openai.APIConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert answer.choices[0].message.content.startswith("[demo]")
        assert [m.id for m in client.models.list()] == ["perpetuo-demo"]
    finally:
        proc.terminate()
        proc.wait(10)
