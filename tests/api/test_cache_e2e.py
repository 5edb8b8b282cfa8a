"""The response cache through real gateway processes and the openai SDK: exact and semantic
hits, streams replayed with the same chunks, TTLs, request directives, purges, savings,
limits, isolation between workspaces, and two instances sharing Redis."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.api.cache_support import ADMIN, Tenant, cache_config, shape, until
from tests.support.gateway import GatewayProcess

ON = {"cache": {"enabled": True}}
SEMANTIC = {"cache": {"enabled": True, "semantic": True}}


@pytest.fixture(scope="module")
def gw(mocks, tmp_path_factory):
    config, env = cache_config(mocks)
    with GatewayProcess(config, tmp_path_factory.mktemp("cache"), env=env) as process:
        yield process


def ask(text: str, **extra) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], **extra}


def cached(tenant: Tenant, body: dict, expect: str = "hit", **headers: str) -> httpx.Response:
    """Repeat `body` until the stored answer is served (stores run off the response path)."""
    response = until(
        lambda: (r := tenant.chat(body, **headers)).headers.get("x-perpetuo-cache") == expect and r
    )
    assert response, f"never a {expect}"
    return response


def test_exact_hits_ignore_field_order_and_whitespace_but_not_parameters(gw, openai_mock):
    t = Tenant(gw, ON)
    first = t.client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "cache me"}], temperature=0
    )
    assert first.headers["x-perpetuo-cache"] == "miss"
    upstream = len(openai_mock.requests)
    reordered = (
        b'{\n  "temperature": 0.0,\n  "messages": [ { "content": "cache me", "role": "user" } ],'
        b'\n  "model": "gpt-4o-mini"\n}'
    )
    hit = cached(t, reordered)
    assert len(openai_mock.requests) == upstream  # the provider was not asked again
    answer, original = hit.json(), first.parse()
    assert answer["choices"][0]["message"]["content"] == original.choices[0].message.content
    assert answer["id"] != original.id
    assert hit.headers["x-perpetuo-attempts"] == "0"
    assert hit.headers["x-perpetuo-provider"] == "openai-main"
    sdk = t.client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "cache me"}], temperature=0
    )
    assert sdk.choices[0].message.content == "Echo: cache me"
    assert sdk.usage.total_tokens == original.usage.total_tokens  # the answer's own usage
    for different in ({"temperature": 0.5}, {"top_p": 0.9}, {"seed": 3}, {"max_tokens": 2}):
        response = t.chat(ask("cache me", **{"temperature": 0, **different}))
        assert response.headers["x-perpetuo-cache"] == "miss", different
    assert len(openai_mock.requests) == upstream + 4


def test_streams_are_replayed_with_the_same_chunks(gw, openai_mock):
    t = Tenant(gw, ON)
    body = ask("stream me please", stream_options={"include_usage": True})
    headers, original = t.stream(body)
    assert headers["x-perpetuo-cache"] == "miss"
    replay = until(lambda: (r := t.stream(body))[0].get("x-perpetuo-cache") == "hit" and r)
    assert replay, "the stream was never served from the cache"
    assert shape(replay[1]) == shape(original)
    assert original[-1] == "[DONE]" and original[-2]["usage"]["total_tokens"] > 0
    ids = {e["id"] for e in replay[1] if isinstance(e, dict)}
    assert len(ids) == 1 and ids != {original[0]["id"]}
    # The same answer as JSON, and a JSON-stored answer replayed as a stream.
    assert t.chat(ask("stream me please")).json()["choices"][0]["message"]["content"] == (
        "Echo: stream me please"
    )
    t.chat(ask("json first"))
    replayed = until(
        lambda: (r := t.stream(ask("json first")))[0].get("x-perpetuo-cache") == "hit" and r
    )
    events = replayed[1]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"]
    )
    assert text == "Echo: json first"
    assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[-1] == "[DONE]"
    sdk = t.client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "json first"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in sdk if c.choices) == "Echo: json first"


def test_ttl_expiry_and_the_ttl_header(gw):
    t = Tenant(gw, {"cache": {"enabled": True, "ttl_seconds": 1}})
    t.chat(ask("short lived"))
    cached(t, ask("short lived"))
    time.sleep(1.2)
    assert t.chat(ask("short lived")).headers["x-perpetuo-cache"] == "miss"
    long = Tenant(gw, {"cache": {"enabled": True, "ttl_seconds": 3600}})
    long.chat(ask("header ttl"), **{"x-perpetuo-cache-ttl": "1"})
    cached(long, ask("header ttl"))
    time.sleep(1.2)
    assert long.chat(ask("header ttl")).headers["x-perpetuo-cache"] == "miss"
    bad = long.chat(ask("x"), **{"x-perpetuo-cache-ttl": "soon"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "x-perpetuo-cache-ttl"


def test_cache_control_no_cache_and_no_store(gw, openai_mock):
    t = Tenant(gw, ON)
    t.chat(ask("directive"))
    cached(t, ask("directive"))
    before = len(openai_mock.requests)
    fresh = t.chat(ask("directive"), **{"cache-control": "no-cache"})
    assert fresh.headers["x-perpetuo-cache"] == "miss" and len(openai_mock.requests) == before + 1
    never = t.chat(ask("not kept"), **{"cache-control": "no-store"})
    assert "x-perpetuo-cache" not in never.headers
    time.sleep(0.3)
    assert t.chat(ask("not kept")).headers["x-perpetuo-cache"] == "miss"


def test_purge_by_alias_then_workspace(gw):
    t = Tenant(gw, ON)
    t.chat(ask("purge me"))
    t.chat({**ask("purge me"), "model": "azure-gpt"})
    cached(t, ask("purge me"))
    cached(t, {**ask("purge me"), "model": "azure-gpt"})
    stats = t.admin("GET", "/cache").json()["data"]
    assert stats["backend"] == "memory" and stats["exact"]["entries"] == 2
    purged = t.admin("DELETE", "/cache", params={"alias": "gpt-4o-mini"})
    assert purged.status_code == 200 and purged.json()["data"]["exact"] == 1
    assert t.chat(ask("purge me")).headers["x-perpetuo-cache"] == "miss"
    assert t.chat({**ask("purge me"), "model": "azure-gpt"}).headers["x-perpetuo-cache"] == "hit"
    assert t.admin("DELETE", "/cache").json()["data"]["exact"] >= 1
    assert t.chat({**ask("purge me"), "model": "azure-gpt"}).headers["x-perpetuo-cache"] == "miss"
    audit = t.admin("GET", "/audit").json()["data"]
    assert [e["action"] for e in audit].count("cache.purge") == 2


def test_savings_reach_the_request_log_analytics_and_metrics(gw):
    t = Tenant(gw, ON)
    t.chat(ask("what does it save", max_tokens=50))
    cached(t, ask("what does it save", max_tokens=50))
    logs = t.logs(2)
    miss = next(e for e in logs if e["cache"] == "miss")
    hit = next(e for e in logs if e["cache"] == "hit")
    assert miss["cost_usd"] > 0 and hit["cost_usd"] == 0
    assert hit["prompt_tokens"] == 0 and hit["completion_tokens"] == 0
    assert hit["saved_usd"] == pytest.approx(miss["cost_usd"])
    detail = t.admin("GET", f"/logs/{hit['id']}").json()["data"]["detail"]["cache"]
    assert detail["saved_prompt_tokens"] == miss["prompt_tokens"]
    assert detail["saved_completion_tokens"] == miss["completion_tokens"]
    series = t.admin("GET", "/usage").json()["data"]
    assert sum(row["cache_hits"] for row in series) >= 1
    assert sum(row["saved_usd"] for row in series) == pytest.approx(
        hit["saved_usd"] * sum(row["cache_hits"] for row in series)
    )
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert 'perpetuo_cache_lookups_total{result="hit"}' in metrics
    assert 'perpetuo_cache_lookups_total{result="miss"}' in metrics
    saved = [
        line for line in metrics.splitlines() if line.startswith("perpetuo_cache_saved_usd_total")
    ]
    assert saved and float(saved[0].split()[-1]) > 0
    assert 'kind="saved"' in metrics


def test_hits_count_toward_request_rates_but_spend_no_tokens(gw):
    t = Tenant(gw, ON, limits={"rpm": 3})
    assert t.chat(ask("rate me")).status_code == 200
    time.sleep(0.3)  # the answer is stored off the response path
    assert t.chat(ask("rate me")).headers["x-perpetuo-cache"] == "hit"
    third = t.chat(ask("rate me"))
    assert third.headers["x-perpetuo-cache"] == "hit"
    assert third.headers["x-ratelimit-remaining-requests"] == "0"
    refused = t.chat(ask("rate me"))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_requests"
    # One miss (19 tokens reserved, 8 used) fits the daily quota; its hits spend nothing.
    q = Tenant(gw, ON, limits={"daily_tokens": 20})
    assert q.chat(ask("quota me", max_tokens=10)).status_code == 200
    time.sleep(0.3)
    for _ in range(5):
        assert q.chat(ask("quota me", max_tokens=10)).headers["x-perpetuo-cache"] == "hit"
    assert q.chat(ask("quota me", max_tokens=10)).status_code == 200
    other = q.chat(ask("something new entirely", max_tokens=10))
    assert other.status_code == 429 and other.json()["error"]["code"] == "quota_daily_tokens"


def test_semantic_hits_above_the_threshold_and_misses_below(gw, openai_mock):
    t = Tenant(gw, SEMANTIC)
    first = t.chat(ask("What is the capital of France?", temperature=0))
    assert first.headers["x-perpetuo-cache"] == "miss"
    close = cached(t, ask("what is the capital of france", temperature=0), expect="semantic-hit")
    assert float(close.headers["x-perpetuo-cache-similarity"]) >= 0.92
    assert (
        close.json()["choices"][0]["message"]["content"] == "Echo: What is the capital of France?"
    )
    far = t.chat(ask("What is the capital of Spain?", temperature=0))
    assert far.headers["x-perpetuo-cache"] == "miss"  # 5 of 6 words shared: ~0.83
    loose = Tenant(gw, {"cache": {"enabled": True, "semantic": True, "semantic_threshold": 0.8}})
    loose.chat(ask("What is the capital of France?", temperature=0))
    hit = cached(loose, ask("What is the capital of Spain?", temperature=0), expect="semantic-hit")
    assert 0.8 <= float(hit.headers["x-perpetuo-cache-similarity"]) < 0.92
    log = t.logs(3)
    semantic = next(e for e in log if e["cache"] == "semantic-hit")
    assert semantic["saved_usd"] > 0


def test_semantic_eligibility_tools_and_temperature(gw):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    t = Tenant(gw, SEMANTIC)
    t.chat(ask("Tell me a fact about owls", temperature=0, tools=tools, tool_choice="none"))
    time.sleep(0.5)
    other = t.chat(ask("tell me a fact about owls", temperature=0, tools=tools, tool_choice="none"))
    assert other.headers["x-perpetuo-cache"] == "miss"  # tools: exact matches only
    t.chat(ask("Tell me a fact about bats", temperature=0.9))
    time.sleep(0.5)
    warm = t.chat(ask("tell me a fact about bats", temperature=0.9))
    assert warm.headers["x-perpetuo-cache"] == "miss"  # too random to stand in for another
    opted = Tenant(
        gw,
        {
            "cache": {
                **SEMANTIC["cache"],
                "semantic_allow_tools": True,
                "semantic_max_temperature": 1,
            }
        },
    )
    opted.chat(ask("Tell me a fact about owls", temperature=0.9, tools=tools, tool_choice="none"))
    cached(
        opted,
        ask("tell me a fact about owls", temperature=0.9, tools=tools, tool_choice="none"),
        expect="semantic-hit",
    )


def test_one_workspace_never_receives_anothers_answer(gw, openai_mock):
    a, b, c = Tenant(gw, SEMANTIC), Tenant(gw, SEMANTIC), Tenant(gw, SEMANTIC)
    a.chat(ask("Shared question about the moon", temperature=0))
    cached(a, ask("Shared question about the moon", temperature=0))
    cached(a, ask("shared question about the moon", temperature=0), expect="semantic-hit")
    before = len(openai_mock.requests)
    exact = b.chat(ask("Shared question about the moon", temperature=0))
    similar = c.chat(ask("shared question about the moon!", temperature=0))
    assert exact.headers["x-perpetuo-cache"] == "miss"
    assert similar.headers["x-perpetuo-cache"] == "miss"
    chats = [r for r in openai_mock.requests[before:] if r.path.endswith("/chat/completions")]
    assert len(chats) == 2  # B's answers came from the provider, not from A's cache
    # A data-plane key is no admin credential: it cannot purge anyone's cache.
    purged = httpx.delete(f"{gw.url}/api/workspaces/{b.id}/cache", headers=a.auth)
    assert purged.status_code == 401


def test_key_and_alias_overrides(gw):
    t = Tenant(gw, {}, cache={"enabled": True})  # off for the workspace, on for this key
    t.chat(ask("key override"))
    cached(t, ask("key override"))
    off = Tenant(gw, ON, cache={"enabled": False})
    off.chat(ask("key off"))
    time.sleep(0.3)
    assert "x-perpetuo-cache" not in off.chat(ask("key off")).headers
    key = httpx.get(f"{gw.url}/api/workspaces/{off.id}/keys/{off.key_id}", headers=ADMIN).json()
    assert key["data"]["cache"] == {"enabled": False} and key["data"]["limits"] == {}


def test_two_instances_share_answers_through_redis(mocks, postgres, redis_server, tmp_path):
    config, env = cache_config(mocks)
    shared = {
        **env,
        "PERPETUO_DATABASE_URL": postgres.create_database("cache_two"),
        "PERPETUO_SECRET_KEY": "s" * 40,
        "PERPETUO_REDIS_URL": redis_server.url,
    }
    a = GatewayProcess(config, tmp_path / "a", env=shared).start()
    b = GatewayProcess(config, tmp_path / "b", env=shared).start()
    try:
        t = Tenant(a, SEMANTIC)
        on_b = Tenant.__new__(Tenant)
        on_b.__dict__.update({**t.__dict__, "gw": b})
        first = t.chat(ask("Across instances, what is Redis?", temperature=0))
        assert first.headers["x-perpetuo-cache"] == "miss"
        hit = cached(on_b, ask("Across instances, what is Redis?", temperature=0))
        assert (
            hit.json()["choices"][0]["message"]["content"]
            == "Echo: Across instances, what is Redis?"
        )
        similar = cached(
            on_b, ask("across instances what is redis", temperature=0), expect="semantic-hit"
        )
        assert similar.status_code == 200
        stats = t.admin("GET", "/cache").json()["data"]
        assert stats["backend"] == "redis" and stats["exact"]["entries"] >= 1
        # A purge on A empties B's view too: Redis is shared, and B's vector index hears of
        # it through the change feed (pub/sub here, database polling as the fallback).
        assert t.admin("DELETE", "/cache").status_code == 200
        assert t.admin("GET", "/cache").json()["data"]["exact"]["entries"] == 0
        time.sleep(0.5)
        after = on_b.chat(ask("across instances, what is redis??", temperature=0))
        assert after.headers["x-perpetuo-cache"] == "miss"
    finally:
        a.stop()
        b.stop()


def test_semantic_entries_survive_a_restart(mocks, tmp_path):
    config, env = cache_config(mocks)
    env = {**env, "PERPETUO_SECRET_KEY": "s" * 40}
    with GatewayProcess(config, tmp_path, env=env) as first:
        t = Tenant(first, SEMANTIC)
        t.chat(ask("Remember this across restarts", temperature=0))
        cached(t, ask("remember this across restarts", temperature=0), expect="semantic-hit")
    with GatewayProcess(config, tmp_path, env=env) as second:
        t.gw = second
        t.client = openai.OpenAI(base_url=f"{second.url}/v1", api_key=t.key, max_retries=0)
        response = t.chat(ask("remember this, across restarts!", temperature=0))
        assert response.headers["x-perpetuo-cache"] == "semantic-hit"
        assert json.loads(response.text)["choices"][0]["message"]["content"] == (
            "Echo: Remember this across restarts"
        )
