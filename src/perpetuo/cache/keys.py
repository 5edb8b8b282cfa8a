"""Cache keys: a canonical form of the request, so equal requests hash equally.

The canonical form is the request as it goes upstream (after input guardrails) minus what
cannot change the answer (`stream`, `stream_options`, `user`, `metadata`, `store`, prompt
cache hints), encoded as JSON with sorted keys and no whitespace: field order and the
client's JSON formatting do not matter; every sampling parameter does. The workspace, the
alias and the output-guardrail policy are part of every key, so answers never cross
workspaces, aliases or policies.

Semantic matching compares the last user message only; everything else (system prompt,
earlier turns, parameters) must be identical, which the partition hash captures.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec

from perpetuo.schema.chat import ChatCompletionRequest, UserMessage, text_of

IGNORED_FIELDS = (
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
)
VERSION = b"perpetuo-cache-v1"


@dataclass(frozen=True, slots=True)
class RequestKey:
    workspace_id: str
    alias: str
    digest: str  # the exact-match key
    partition: str  # semantic: everything but the last user message
    prompt: str | None  # semantic: the last user message's text (None: not comparable)


def canonical(request: ChatCompletionRequest, extras: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(request)
    for name in IGNORED_FIELDS:
        body.pop(name, None)
    if extras:
        body["extra"] = extras
    return body


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256(VERSION)
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()


def request_key(
    workspace_id: str,
    alias: str,
    request: ChatCompletionRequest,
    extras: dict[str, Any],
    policy_fingerprint: str = "",
) -> RequestKey:
    body = canonical(request, extras)
    scope = (workspace_id.encode(), alias.encode(), policy_fingerprint.encode())
    digest = _digest(*scope, msgspec.json.encode(body, order="sorted"))
    prompt = None
    last = request.messages[-1]
    if isinstance(last, UserMessage):
        prompt = text_of(last.content) if _text_only(last.content) else None
        body["messages"] = body["messages"][:-1]
    partition = _digest(*scope, b"semantic", msgspec.json.encode(body, order="sorted"))
    return RequestKey(workspace_id, alias, digest, partition, prompt or None)


def _text_only(content: object) -> bool:
    return isinstance(content, str) or (
        isinstance(content, list) and all(getattr(p, "text", None) is not None for p in content)
    )


def semantic_eligible(
    request: ChatCompletionRequest, allow_tools: bool, max_temperature: float
) -> bool:
    """Similar-prompt answers only where the answer is close to determined by the prompt:
    no tools (unless allowed), one choice, no logprobs, a low temperature (unset counts as
    OpenAI's default, 1.0)."""
    if not allow_tools and (request.tools or request.functions):
        return False
    if isinstance(request.n, int) and request.n > 1:
        return False
    temperature = request.temperature if isinstance(request.temperature, float | int) else 1.0
    return temperature <= max_temperature


def cacheable(request: ChatCompletionRequest) -> bool:
    """Log probabilities are tied to one sampling run: never served from a cache."""
    return request.logprobs is not True
