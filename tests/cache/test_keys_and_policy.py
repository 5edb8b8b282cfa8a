"""Canonical keys, eligibility, policy layering and request directives."""

from __future__ import annotations

import msgspec
import pytest

from perpetuo.api.ingress import decode_chat_request
from perpetuo.cache.keys import cacheable, request_key, semantic_eligible
from perpetuo.cache.policy import BadDirective, CachePolicy, parse_directive, resolve


def key(body: bytes | dict, workspace: str = "ws_a", alias: str = "m", fingerprint: str = ""):
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    request, extras = decode_chat_request(raw)
    return request_key(workspace, alias, request, extras, fingerprint)


BASE = {"model": "m", "messages": [{"role": "user", "content": "Hi there"}], "temperature": 0}


def test_field_order_json_whitespace_and_transport_fields_do_not_matter():
    compact = key(BASE)
    spaced = key(
        b'{ "temperature" : 0.0 ,\n  "messages": [ {"content": "Hi there", "role": "user"} ],'
        b'\n "model": "m", "stream": true, "stream_options": {"include_usage": true},'
        b' "user": "u-1", "metadata": {"a": "b"} }'
    )
    assert compact.digest == spaced.digest


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.7},
        {"top_p": 0.5},
        {"seed": 7},
        {"max_tokens": 5},
        {"stop": ["x"]},
        {"messages": [{"role": "user", "content": "Hi there!"}]},
        {
            "messages": [
                {"role": "system", "content": "Be terse"},
                {"role": "user", "content": "Hi there"},
            ]
        },
        {"response_format": {"type": "json_object"}},
    ],
)
def test_anything_that_shapes_the_answer_changes_the_key(change):
    assert key({**BASE, **change}).digest != key(BASE).digest


def test_workspace_alias_and_policy_are_part_of_every_key():
    base = key(BASE)
    assert key(BASE, workspace="ws_b").digest != base.digest
    assert key(BASE, alias="other").digest != base.digest
    assert key(BASE, fingerprint="abc").digest != base.digest
    assert key(BASE, workspace="ws_b").partition != base.partition


def test_semantic_partition_ignores_only_the_last_user_message():
    a = key(BASE)
    b = key({**BASE, "messages": [{"role": "user", "content": "Hello there"}]})
    c = key(
        {
            **BASE,
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "Hi there"},
            ],
        }
    )
    assert a.partition == b.partition != c.partition
    assert a.prompt == "Hi there" and b.prompt == "Hello there"
    tool_last = key(
        {**BASE, "messages": [*BASE["messages"], {"role": "assistant", "content": "x"}]}
    )
    assert tool_last.prompt is None


def test_eligibility():
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]

    def request(**fields):
        return decode_chat_request(msgspec.json.encode({**BASE, **fields}))[0]

    assert semantic_eligible(request(), allow_tools=False, max_temperature=0.5)
    assert not semantic_eligible(request(tools=tools), allow_tools=False, max_temperature=0.5)
    assert semantic_eligible(request(tools=tools), allow_tools=True, max_temperature=0.5)
    assert not semantic_eligible(request(temperature=0.9), allow_tools=False, max_temperature=0.5)
    unset = {k: v for k, v in BASE.items() if k != "temperature"}
    no_temperature = decode_chat_request(msgspec.json.encode(unset))[0]
    assert not semantic_eligible(no_temperature, allow_tools=False, max_temperature=0.5)
    assert semantic_eligible(no_temperature, allow_tools=False, max_temperature=1.0)
    assert not semantic_eligible(request(n=2), allow_tools=True, max_temperature=2)
    assert not cacheable(request(logprobs=True)) and cacheable(request())


def test_policy_layers_and_defaults():
    assert resolve(None, None, None) is None
    assert resolve(CachePolicy(ttl_seconds=5)) is None  # never enabled
    merged = resolve(CachePolicy(enabled=True, ttl_seconds=60), None, CachePolicy(semantic=True))
    assert merged.ttl_seconds == 60 and merged.semantic and merged.threshold == 0.92
    assert resolve(CachePolicy(enabled=True), CachePolicy(enabled=False)) is None


def test_directives():
    assert parse_directive(None, None) is None
    assert parse_directive("no-cache", None).lookup is False
    assert parse_directive("no-cache", None).store is True
    no_store = parse_directive("max-age=0, no-store", None)
    assert (no_store.lookup, no_store.store) == (False, False)
    assert parse_directive(None, "30").ttl_seconds == 30
    assert parse_directive(None, "0").store is False
    for bad in ("soon", "-1"):
        with pytest.raises(BadDirective):
            parse_directive(None, bad)
