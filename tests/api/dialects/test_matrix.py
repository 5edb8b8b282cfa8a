"""Every dialect on every provider kind, feature by feature, through a real gateway process.

Each cell sends the same request as a complete answer and as a stream and checks what every
client relies on: the assembled stream equals the complete answer (text, tool calls and
their ids, stop reason, usage), the stream's framing is sound (see matrix_support), usage
is there and not negative, tool call ids survive a round trip to the provider. Cells in
REFUSED must answer a clear 400 naming the parameter, before any provider is called; the
same table is in docs/dialects.md (checked below).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.dialects.matrix_support import DIALECTS, TOOLS, Answer, Ask
from tests.mocks.brain import UNICODE_REPLY
from tests.support.gateway import MASTER_KEY

PROVIDERS = {"openai": "gpt-4o-mini", "azure": "azure-v1-gpt", "anthropic": "claude"}
PROVIDERS["gemini"] = "gemini-flash"
MOCK_OF = {"openai": "openai", "azure": "openai", "anthropic": "anthropic", "gemini": "gemini"}
# Which deployments take each dialect's body as it is (the others get it translated).
NATIVE = {"chat": {"openai", "azure"}, "responses": {"openai", "azure"}, "messages": {"anthropic"}}
ASKS = {
    "plain": Ask("hello matrix"),
    "stream": Ask("unicode please, in small pieces"),  # multi-byte text, 3 characters a chunk
    "tools": Ask("use all tools please", tools=True),  # two parallel calls, then their results
    "structured": Ask("forecast for Oslo", schema=True),
    "image": Ask("describe this", image=True),
    "server tool": Ask("search the news", server_tool=True),
}
EXPECTED_TEXT = {
    "plain": "Echo: hello matrix",
    "stream": UNICODE_REPLY,
    "structured": {"city": "forecast for Oslo", "days": 1},  # as JSON (spacing may differ)
    "image": "Echo: describe this [1 image(s)]",
    "server tool": "Echo: search the news",
}
RESULTS = ["sunny", "noon"]

# (dialect, provider, feature) -> (the parameter the 400 names, why).
_WEB_SEARCH = "web_search_options is OpenAI's search; no translation to this provider"
_BUILT_IN = "web_search_preview is a tool OpenAI runs; only Responses deployments have it"
_SERVER = "web_search_20250305 is a tool Anthropic runs; only Anthropic deployments have it"
REFUSED: dict[tuple[str, str, str], tuple[str, str]] = {
    ("chat", "anthropic", "server tool"): ("web_search_options", _WEB_SEARCH),
    ("chat", "gemini", "server tool"): ("web_search_options", _WEB_SEARCH),
    ("responses", "anthropic", "server tool"): ("tools[0]", _BUILT_IN),
    ("responses", "gemini", "server tool"): ("tools[0]", _BUILT_IN),
    ("messages", "openai", "server tool"): ("tools[0]", _SERVER),
    ("messages", "azure", "server tool"): ("tools[0]", _SERVER),
    ("messages", "gemini", "server tool"): ("tools[0]", _SERVER),
}
CELLS = list(itertools.product(DIALECTS, PROVIDERS, ASKS))


@pytest.fixture(scope="module")
def http(gateway) -> Any:
    headers = {"authorization": f"Bearer {MASTER_KEY}", "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as client:
        yield client


def served(http: Any, dialect: str, model: str, ask: Ask) -> tuple[Answer, Answer]:
    """(the complete answer, the assembled stream) for one request."""
    path, build, read, read_stream = DIALECTS[dialect]
    whole = http.post(path, json=build(model, ask, False))
    assert whole.status_code == 200, whole.text
    with http.stream("POST", path, json=build(model, ask, True)) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        streamed = read_stream(response.read().decode())
    return read(whole.json()), streamed


def same_answer(whole: Answer, streamed: Answer, provider: str) -> None:
    assert streamed.text == whole.text and streamed.stop == whole.stop
    assert [(c.name, c.args) for c in streamed.calls] == [(c.name, c.args) for c in whole.calls]
    if provider == "gemini":  # Gemini gives no call ids: the gateway makes fresh ones each time
        ids = [c.id for c in whole.calls + streamed.calls]
        assert all(ids) and len(set(ids)) == len(ids)
    else:
        assert [c.id for c in streamed.calls] == [c.id for c in whole.calls]
    for answer in (whole, streamed):
        assert min(answer.usage) >= 0 and answer.usage[0] > 0
    assert streamed.usage == whole.usage


@pytest.mark.parametrize("dialect,provider,feature", CELLS)
def test_cell(http, mocks, dialect, provider, feature):
    model, ask = PROVIDERS[provider], ASKS[feature]
    mock = mocks[MOCK_OF[provider]]
    if (refusal := REFUSED.get((dialect, provider, feature))) is not None:
        refused(http, dialect, model, ask, refusal[0])
        assert not mock.requests, "refused before any provider was called"
        return
    whole, streamed = served(http, dialect, model, ask)
    same_answer(whole, streamed, provider)
    if feature != "tools":
        text = json.loads(whole.text) if feature == "structured" else whole.text
        assert text == EXPECTED_TEXT[feature] and whole.stop == "stop"
        return
    assert whole.stop == "tool_calls" and not whole.text
    assert [c.name for c in whole.calls] == [name for name, _ in TOOLS]
    answered = Ask(ask.text, tools=True, calls=whole.calls, results=RESULTS)
    mock.requests.clear()
    final, final_streamed = served(http, dialect, model, answered)
    same_answer(final, final_streamed, provider)
    assert final.stop == "stop" and final.text.startswith("The tool returned:")
    assert RESULTS[-1] in final.text
    sent = [repr(r.body) for r in mock.requests]
    assert len(sent) == 2 and all(RESULTS[0] in s and RESULTS[1] in s for s in sent)
    if provider != "gemini":  # the client's ids reach the provider, paired with the results
        assert all(c.id in s for c in whole.calls for s in sent)


def refused(http: Any, dialect: str, model: str, ask: Ask, param: str) -> None:
    path, build, _, _ = DIALECTS[dialect]
    for stream in (False, True):
        response = http.post(path, json=build(model, ask, stream))
        assert response.status_code == 400, response.text
        body = response.json()
        if dialect == "messages":
            assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
            assert param in body["error"]["message"]
        else:
            assert body["error"]["param"] == param and param in body["error"]["message"]


# -- the support table ----------------------------------------------------------------------


def support_table() -> str:
    """The matrix as docs/dialects.md shows it: how each cell is served."""
    head = ["dialect", "feature", *PROVIDERS]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dialect, feature in itertools.product(DIALECTS, ASKS):
        cells = []
        for provider in PROVIDERS:
            refusal = REFUSED.get((dialect, provider, feature))
            if refusal is not None:
                cells.append(f"400 `{refusal[0]}`")
            else:
                cells.append("native" if provider in NATIVE[dialect] else "translated")
        rows.append(f"| {dialect} | {feature} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def test_the_docs_carry_this_support_table():
    docs = (Path(__file__).parents[3] / "docs" / "dialects.md").read_text()
    assert support_table() in docs, "docs/dialects.md must show support_table() as it is"
    for _, why in REFUSED.values():
        assert why in docs
