"""Chat sessions through a real gateway process: created, listed, read and deleted with the
official openai SDK's generic methods, messages posted with the SDK and with httpx, the
history the upstream receives turn after turn (checked at the mock), the budget cutting old
turns, streaming, tool round trips, summaries of old turns, and the refusals."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.api.cache_support import Tenant, until

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def tenant(gateway) -> Tenant:
    return Tenant(gateway, {})


def create(t: Tenant, **body: Any) -> dict[str, Any]:
    return t.client.post("/chat/sessions", cast_to=object, body={"model": "gpt-4o-mini", **body})


def post(t: Tenant, session_id: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{t.gw.url}/v1/chat/sessions/{session_id}/messages",
        headers=t.auth,
        json=body,
        timeout=30,
    )


def say(t: Tenant, session_id: str, text: str, **params: Any) -> dict[str, Any]:
    response = post(t, session_id, {"messages": [{"role": "user", "content": text}], **params})
    assert response.status_code == 200, response.text
    return response.json()


SUMMARIZING = "You keep the memory"  # how the summarizing request's instructions begin


def upstream_messages(mock: Any) -> list[dict[str, Any]]:
    """The messages of the last turn sent upstream (not a background summarizing request,
    which may reach the mock after it)."""
    chats = [
        r
        for r in mock.requests
        if r.path.endswith("/chat/completions")
        and not str(r.body["messages"][0].get("content", "")).startswith(SUMMARIZING)
    ]
    return chats[-1].body["messages"]


def test_a_session_through_the_openai_sdk(tenant, openai_mock):
    made = create(tenant, system_prompt="Be brief.", metadata={"ticket": "T-1"})
    assert made["object"] == "chat.session" and made["id"].startswith("cs_")
    assert made["model"] == "gpt-4o-mini" and made["system_prompt"] == "Be brief."
    assert made["metadata"] == {"ticket": "T-1"} and made["message_count"] == 0
    answer = tenant.client.post(
        f"/chat/sessions/{made['id']}/messages",
        cast_to=ChatCompletion,
        body={"messages": [{"role": "user", "content": "hello there"}], "temperature": 0.2},
    )
    assert answer.choices[0].message.content == "Echo: hello there"
    assert answer.model_extra["session_id"] == made["id"]
    assert openai_mock.last.body["temperature"] == 0.2  # chat parameters pass on
    listed = tenant.client.get("/chat/sessions?limit=100", cast_to=object)
    assert made["id"] in [s["id"] for s in listed["data"]] and listed["object"] == "list"
    held = tenant.client.get(f"/chat/sessions/{made['id']}", cast_to=object)
    roles = [(m["role"], m["content"]) for m in held["messages"]]
    assert roles == [("user", "hello there"), ("assistant", "Echo: hello there")]
    assert held["message_count"] == 2 and all(m["request_id"] for m in held["messages"])
    gone = tenant.client.delete(f"/chat/sessions/{made['id']}", cast_to=object)
    assert gone == {"id": made["id"], "object": "chat.session.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        tenant.client.get(f"/chat/sessions/{made['id']}", cast_to=object)


def test_every_earlier_turn_reaches_the_upstream(tenant, openai_mock):
    session = create(tenant, system_prompt="You are terse.")["id"]
    first = say(tenant, session, "first question")
    assert first["session_id"] == session and first["object"] == "chat.completion"
    say(tenant, session, "second question")
    response = post(tenant, session, {"messages": [{"role": "user", "content": "third"}]})
    assert response.headers["x-perpetuo-session-id"] == session
    assert upstream_messages(openai_mock) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "Echo: first question"},
        {"role": "user", "content": "second question"},
        {"role": "assistant", "content": "Echo: second question"},
        {"role": "user", "content": "third"},
    ]
    assert openai_mock.last.body["model"] == "gpt-4o-mini"


def test_a_streamed_answer_joins_the_history(tenant, openai_mock):
    session = create(tenant)["id"]
    stream = tenant.client.post(
        f"/chat/sessions/{session}/messages",
        cast_to=ChatCompletionChunk,
        body={"messages": [{"role": "user", "content": "stream me"}], "stream": True},
        stream=True,
        stream_cls=openai.Stream[ChatCompletionChunk],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream me"
    assert {c.model_extra["session_id"] for c in chunks} == {session}
    say(tenant, session, "and now?")  # at once: the answer is read back before it is written
    assert upstream_messages(openai_mock)[:2] == [
        {"role": "user", "content": "stream me"},
        {"role": "assistant", "content": "Echo: stream me"},
    ]


def test_a_failed_stream_leaves_the_history_as_it_was(tenant, openai_mock):
    from tests.mocks.server import Fault

    session = create(tenant)["id"]
    openai_mock.fail_next(Fault(cut_after=2))
    with httpx.stream(
        "POST",
        f"{tenant.gw.url}/v1/chat/sessions/{session}/messages",
        headers=tenant.auth,
        json={"messages": [{"role": "user", "content": "cut me off"}], "stream": True},
        timeout=30,
    ) as response:
        body = response.read().decode()
    assert '"error"' in body
    held = tenant.client.get(f"/chat/sessions/{session}", cast_to=object)
    assert held["messages"] == []  # nothing half-answered is kept: the client may retry


def test_old_turns_are_cut_to_the_budget(tenant, openai_mock):
    session = create(tenant, max_history_tokens=60)["id"]
    for n in range(6):
        say(tenant, session, f"turn number {n} with a few more words in it")
    held = until(
        lambda: (
            (h := tenant.client.get(f"/chat/sessions/{session}", cast_to=object))
            and all(m["tokens"] for m in h["messages"])
            and h
        )
    )
    history = held["messages"]
    assert len(history) == 12  # everything is kept; only what is sent is cut
    say(tenant, session, "last")
    sent = upstream_messages(openai_mock)[:-1]
    # The newest whole turns whose sizes (as the session reports them) fit the budget.
    expected: list[dict[str, Any]] = []
    total = 0
    for index in range(len(history) - 2, -1, -2):
        size = history[index]["tokens"] + history[index + 1]["tokens"]
        if total + size > 60:
            break
        expected[:0] = history[index : index + 2]
        total += size
    assert 0 < len(expected) < len(history)
    assert sent == [{"role": m["role"], "content": m["content"]} for m in expected]
    assert sent[0]["role"] == "user"  # a turn is never cut in half
    assert "turn number 0" not in str(sent)


def test_a_tool_result_travels_with_its_call_whatever_the_budget(tenant, openai_mock):
    session = create(tenant, max_history_tokens=1)["id"]
    asked = say(tenant, session, "weather in Oslo", tools=[WEATHER])
    call = asked["choices"][0]["message"]["tool_calls"][0]
    result = {"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21C"}
    response = post(tenant, session, {"messages": [result], "tools": [WEATHER]})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "The tool returned: sunny, 21C"
    sent = upstream_messages(openai_mock)
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["id"] == call["id"]


def test_old_turns_are_summarized_through_the_summary_model(tenant, openai_mock):
    session = create(tenant, max_history_tokens=50, summary_model="gpt-4o-mini")["id"]
    for n in range(4):
        say(tenant, session, f"fact {n}: the blue door code is {1000 + n}")

    def summary() -> str | None:
        return tenant.client.get(f"/chat/sessions/{session}", cast_to=object)["summary"]

    made = until(summary, timeout=10)
    assert made and made.startswith("Echo: ")  # the mock's answer to the summarizing request
    asks = [
        r.body
        for r in openai_mock.requests
        if r.path.endswith("/chat/completions")
        and r.body["messages"][0]["content"].startswith(SUMMARIZING)
    ]
    assert asks and "fact 0" in asks[0]["messages"][1]["content"]
    say(tenant, session, "what was the first code?")
    sent = upstream_messages(openai_mock)
    assert sent[0]["role"] == "system"
    assert sent[0]["content"].startswith("Summary of the earlier conversation:\nEcho: ")
    assert "fact 0" not in str(sent[1:])  # folded into the summary, no longer sent as a turn
    logs = tenant.logs(1, endpoint="chat_sessions.summary")
    assert logs[0]["prompt_tokens"] > 0  # charged to the workspace like any request


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "no-such-model"}, 404, "model"),
        ({"model": "gpt-4o-mini", "summary_model": "nope"}, 404, "summary_model"),
        ({"model": "text-embedding-3-small"}, 400, "model"),
        ({"model": "gpt-4o-mini", "colour": "blue"}, 400, "colour"),
        ({"model": "gpt-4o-mini", "max_history_tokens": 0}, 400, "max_history_tokens"),
        ({"system_prompt": "no model"}, 400, "model"),
    ],
)
def test_creating_refuses_what_cannot_work(tenant, body, status, param):
    response = httpx.post(
        f"{tenant.gw.url}/v1/chat/sessions", headers=tenant.auth, json=body, timeout=30
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"messages": [{"role": "user", "content": "x"}], "bogus": 1}, "bogus"),
    ],
)
def test_posting_refuses_bad_messages(tenant, openai_mock, body, param):
    session = create(tenant)["id"]
    before = len(openai_mock.requests)
    response = post(tenant, session, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert len(openai_mock.requests) == before  # refused before any upstream call


def test_unknown_sessions_and_methods(tenant):
    assert (
        post(tenant, "cs_nope", {"messages": [{"role": "user", "content": "x"}]}).status_code == 404
    )
    response = httpx.post(
        f"{tenant.gw.url}/v1/chat/sessions/cs_nope", headers=tenant.auth, json={}, timeout=30
    )
    assert response.status_code == 405 and response.headers["allow"] == "GET, DELETE"
    response = httpx.get(
        f"{tenant.gw.url}/v1/chat/sessions/cs_nope/messages", headers=tenant.auth, timeout=30
    )
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    response = httpx.get(f"{tenant.gw.url}/v1/chat/sessions/cs_nope", headers=tenant.auth)
    assert response.status_code == 404 and response.json()["error"]["param"] == "session_id"


def test_sessions_are_kept_for_the_workspaces_retention(gateway):
    short = Tenant(gateway, {"chat_session_retention_days": 2})
    made = create(short)
    assert made["expires_at"] - made["created_at"] == 2 * 86400
    say(short, made["id"], "still here")
    held = short.client.get(f"/chat/sessions/{made['id']}", cast_to=object)
    assert 2 * 86400 - 5 <= held["expires_at"] - held["updated_at"] <= 2 * 86400 + 5


def test_the_workspace_exports_its_sessions_as_json(gateway):
    owner = Tenant(gateway, {})
    other = Tenant(gateway, {})
    mine = create(owner, metadata={"who": "owner"})["id"]
    say(owner, mine, "remember the lighthouse")
    theirs = create(other)["id"]
    exported = until(
        lambda: (
            (r := owner.admin("GET", "/chat-sessions.json"))
            and "Echo: remember the lighthouse" in r.text
            and r
        )
    )
    assert exported.headers["content-type"].startswith("application/json")
    body = exported.json()
    assert body["object"] == "chat_session_export" and body["workspace_id"] == owner.id
    (session,) = body["sessions"]
    assert session["id"] == mine and session["metadata"] == {"who": "owner"}
    assert [m["message"]["content"] for m in session["messages"]] == [
        "remember the lighthouse",
        "Echo: remember the lighthouse",
    ]
    assert theirs not in exported.text
    audit = owner.admin("GET", "/audit", params={"action": "chat_session.export"}).json()
    assert audit["data"], "exports are audited"
