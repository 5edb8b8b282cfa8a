"""Fuzzing the decoders: whatever bytes a client or an upstream sends, the only exceptions
that leave a decoder are the gateway's own (a clean 4xx for clients, a classified upstream
error for providers), never UnicodeDecodeError, KeyError, TypeError and the like (a 500)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from perpetuo.api.ingress import decode_chat_request, decode_embedding_request
from perpetuo.config.model import DeploymentConfig, ProviderConfig
from perpetuo.providers.registry import ADAPTERS, build_target
from perpetuo.schema.errors import GatewayError, UpstreamError
from perpetuo.transport.sse import SSEEvent
from tests.support.gateway import MASTER_KEY

CHAT = (
    b'{"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "be brief"}, '
    b'{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", '
    b'"image_url": {"url": "data:image/png;base64,AAAA"}}]}, {"role": "assistant", '
    b'"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", '
    b'"arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "ok"}], '
    b'"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}], '
    b'"max_tokens": 5, "stream": true, "temperature": 0.5}'
)
EMBEDDING = b'{"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 8}'

NASTY = [
    b"",
    b"\xff\xfe",
    b'{"model": "\xff", "messages": []}',
    b'{"model": "m\xc3", "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": "m", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}',  # surrogate
    b"[" * 100_000,
    b'{"model": 1e999999, "messages": []}',
    b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": '
    + b"9" * 5000
    + b"}",
    b'{"model": "m", "messages": [{"role": "\\u0000", "content": null}]}',
    b"null",
    b'"string"',
    b"\x00" * 64,
]


def mutations(seed: bytes, count: int, rng: random.Random) -> list[bytes]:
    out = []
    for _ in range(count):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 6)):
            op = rng.randrange(4)
            pos = rng.randrange(len(data) + 1)
            if op == 0 and data:
                data[min(pos, len(data) - 1)] = rng.randrange(256)
            elif op == 1:
                data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            elif op == 2 and data:
                del data[pos : pos + rng.randint(1, 8)]
            else:
                data = data[:pos]
        out.append(bytes(data))
    return out


@pytest.mark.parametrize(
    ("decode", "seed"),
    [(decode_chat_request, CHAT), (decode_embedding_request, EMBEDDING)],
    ids=["chat", "embeddings"],
)
def test_client_decoders_raise_only_client_errors(decode: Callable[[bytes], Any], seed: bytes):
    rng = random.Random(1234)
    for body in [seed, *NASTY, *mutations(seed, 3000, rng)]:
        try:
            decode(body)
        except GatewayError as exc:
            assert exc.status == 400, (body, exc)


def test_invalid_utf8_is_a_400_over_http(gateway):
    for body in (NASTY[2], NASTY[3], NASTY[4]):
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"},
            content=body,
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_json"


UPSTREAM_SEEDS = [
    b'{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": '
    b'{"role": "assistant", "content": "hi"}, "finish_reason": "stop"}], "usage": '
    b'{"prompt_tokens": 1, "completion_tokens": 1}}',
    b'{"id": "msg", "type": "message", "role": "assistant", "content": [{"type": "text", '
    b'"text": "hi"}, {"type": "tool_use", "id": "t", "name": "f", "input": {}}], '
    b'"stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}}',
    b'{"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}, '
    b'{"functionCall": {"name": "f", "args": {}}}]}, "finishReason": "STOP"}], '
    b'"usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}}',
]


def _target(kind: str):
    provider = ProviderConfig(type=kind, api_base="https://example.com", api_key="k")
    if kind == "azure":
        provider = provider.model_copy(update={"api_version": "2024-10-21"})
    return build_target("p", provider, DeploymentConfig(provider="p", model="m"))


async def _events(items: list[str]) -> AsyncIterator[SSEEvent]:
    for item in items:
        yield SSEEvent(data=item)


@pytest.mark.parametrize("kind", ["openai", "azure", "anthropic", "gemini"])
async def test_upstream_decoders_raise_only_upstream_errors(kind: str):
    adapter, target = ADAPTERS[kind], _target(kind)
    rng = random.Random(99)
    bodies = [b for seed in UPSTREAM_SEEDS for b in [seed, *mutations(seed, 700, rng)]]
    for body in [*bodies, *NASTY[:5]]:
        with contextlib.suppress(UpstreamError):
            adapter.chat_response(body, target)
        try:
            stream = adapter.chat_stream(
                _events([body.decode("utf-8", "replace"), "[DONE]"]), target
            )
            async for _ in stream:
                pass
        except UpstreamError:
            pass
        adapter.error(rng.choice([400, 401, 429, 500, 529]), {}, body)
