"""Agent frameworks pointed at the gateway: the openai-agents SDK on its default model and
model API (Responses), LangChain's ChatOpenAI on the Responses API and ChatAnthropic on the
Messages API, each with tools (and a handoff) over several turns, streaming included.

Nothing may leave the machine: tracing and telemetry are off through each SDK's documented
switch, and every test runs with non-loopback connections and name lookups refused."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from agents import (
    Agent,
    Runner,
    function_tool,
    set_default_openai_api,
    set_default_openai_client,
    set_tracing_disabled,
)
from agents.models import get_default_model
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI

from tests.conftest import full_config
from tests.support.gateway import MASTER_KEY, GatewayProcess

TELEMETRY_OFF = {
    "OPENAI_AGENTS_DISABLE_TRACING": "1",  # openai-agents' switch
    "LANGSMITH_TRACING": "false",  # LangChain's (both spellings of it)
    "LANGCHAIN_TRACING_V2": "false",
}


@pytest.fixture(scope="module")
def gw(mocks, tmp_path_factory):
    """The session gateway's aliases, plus the agents SDK's default model name (served by
    OpenAI), so that an Agent built without a model comes here unchanged."""
    config, env = full_config(mocks)
    config["models"][get_default_model()] = {
        "deployments": [{"provider": "openai-main", "model": "gpt-5-mini"}]
    }
    with GatewayProcess(config, tmp_path_factory.mktemp("agents"), env=env) as process:
        yield process


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Refuse every connection and name lookup that is not loopback, and keep telemetry off."""
    for name, value in TELEMETRY_OFF.items():
        monkeypatch.setenv(name, value)
    set_tracing_disabled(True)
    connect, lookup = socket.socket.connect, socket.getaddrinfo

    def local(host: Any) -> bool:
        if host in ("localhost", None):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def guarded_connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
            raise AssertionError(f"a client tried to reach {address[0]}")
        return connect(sock, address)

    def guarded_lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not local(host.decode() if isinstance(host, bytes) else host):
            raise AssertionError(f"a client tried to resolve {host}")
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_lookup)


def test_the_guard_refuses_anything_but_loopback():
    with pytest.raises(AssertionError, match="reach"), socket.socket() as sock:
        sock.connect(("192.0.2.1", 443))  # never sent: refused before the socket is used
    with pytest.raises(AssertionError, match="resolve"):
        socket.getaddrinfo("api.openai.com", 443)


# -- openai-agents --------------------------------------------------------------------------


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def agents_pointed_at(gw: GatewayProcess) -> None:
    set_default_openai_client(
        AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0),
        use_for_tracing=False,
    )
    set_default_openai_api("responses")


@pytest.mark.parametrize("model", [None, "claude", "gemini-flash"])
async def test_agent_with_a_function_tool_and_a_handoff_over_two_turns(gw, mocks, model):
    """The mock model calls every offered tool when asked for "all tools": the triage agent
    runs get_weather and hands off in one step; the weather agent answers from the tool
    output, then serves a follow-up that continues from the stored response."""
    agents_pointed_at(gw)
    extra = {} if model is None else {"model": model}  # None: the SDK's default model
    forecaster = Agent(
        name="Forecaster", instructions="Give forecasts.", tools=[get_weather], **extra
    )
    triage = Agent(
        name="Triage",
        instructions="Route weather questions.",
        tools=[get_weather],
        handoffs=[forecaster],
        **extra,
    )
    first = await Runner.run(triage, "use all tools for Oslo")
    assert first.last_agent is forecaster
    kinds = [item.type for item in first.new_items]
    assert "tool_call_output_item" in kinds and "handoff_output_item" in kinds
    assert any(
        "sunny in use all tools for Oslo" in str(i.output)
        for i in first.new_items
        if i.type == "tool_call_output_item"
    )
    assert first.final_output.startswith("The tool returned:")
    second = await Runner.run(
        forecaster, "and in Bergen?", previous_response_id=first.last_response_id
    )
    assert second.final_output == "The tool returned: sunny in and in Bergen?"
    served = mocks["openai" if model is None else "anthropic" if model == "claude" else "gemini"]
    assert served.requests, "the agent's calls reached the expected provider"
    if model is None:
        assert {r.body["model"] for r in served.requests if r.method == "POST"} == {"gpt-5-mini"}
        assert all(r.path == "/v1/responses" for r in served.requests)


async def test_agent_streams_its_run(gw):
    agents_pointed_at(gw)
    agent = Agent(name="Helper", instructions="Help.", tools=[get_weather])
    run = Runner.run_streamed(agent, "weather in Rome")
    kinds = [event.type async for event in run.stream_events()]
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert run.final_output == "The tool returned: sunny in weather in Rome"


# -- LangChain ------------------------------------------------------------------------------


@tool
def lookup_weather(city: str) -> str:
    """The weather in a city."""
    return f"cloudy in {city}"


def tool_loop(llm: Any, question: str, stream: bool) -> tuple[Any, Any]:
    """Ask, run the tool the model called, ask again: (the tool call, the final answer)."""
    bound = llm.bind_tools([lookup_weather])
    history: list[Any] = [HumanMessage(question)]
    if stream:
        called: Any = None
        for chunk in bound.stream(history):
            assert isinstance(chunk, AIMessageChunk)
            called = chunk if called is None else called + chunk
    else:
        called = bound.invoke(history)
    [call] = called.tool_calls
    history += [called, ToolMessage(lookup_weather.invoke(call["args"]), tool_call_id=call["id"])]
    if stream:
        answer: Any = None
        for chunk in bound.stream(history):
            answer = chunk if answer is None else answer + chunk
    else:
        answer = bound.invoke(history)
    return call, answer


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude"])
def test_langchain_chat_openai_on_the_responses_api(gw, mocks, model, stream):
    llm = ChatOpenAI(
        model=model,
        base_url=f"{gw.url}/v1",
        api_key=MASTER_KEY,
        use_responses_api=True,
        max_retries=0,
    )
    call, answer = tool_loop(llm, "weather in Lyon", stream)
    assert call["name"] == "lookup_weather" and call["args"] == {"city": "weather in Lyon"}
    assert answer.text == "The tool returned: cloudy in weather in Lyon"
    assert answer.usage_metadata["input_tokens"] > 0
    served = mocks["openai" if model == "gpt-4o-mini" else "anthropic"]
    assert served.requests and all(
        "/responses" in r.path or "/messages" in r.path for r in served.requests
    )


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["claude", "gpt-4o-mini", "gemini-flash"])
def test_langchain_chat_anthropic_on_the_messages_api(gw, mocks, model, stream):
    llm = ChatAnthropic(
        model=model, base_url=gw.url, api_key=MASTER_KEY, max_retries=0, max_tokens=300
    )
    call, answer = tool_loop(llm, "weather in Nice", stream)
    assert call["name"] == "lookup_weather" and call["args"] == {"city": "weather in Nice"}
    assert answer.text == "The tool returned: cloudy in weather in Nice"
    assert answer.usage_metadata["output_tokens"] > 0
