"""The OpenAI-compatible hosts the compat mock plays, each with the quirks its public
reference (or its users' reports) documents, as data plus a check per host for what data
cannot say. compat_mock.py serves them under `/{host}/v1/...`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# What OpenAI's chat completions take; a host takes these minus `rejects`, plus `extra`.
OPENAI_FIELDS = frozenset(
    {"model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop"}
    | {"max_tokens", "max_completion_tokens", "presence_penalty", "frequency_penalty"}
    | {"logit_bias", "logprobs", "top_logprobs", "seed", "user", "tools", "tool_choice"}
    | {"parallel_tool_calls", "response_format", "metadata", "store", "service_tier"}
    | {"reasoning_effort", "verbosity", "modalities", "audio", "prediction"}
    | {"web_search_options", "prompt_cache_key", "safety_identifier", "prompt_cache_retention"}
)
REASONING = "First I consider what is asked."
REASONING_TOKENS = 4


@dataclass(frozen=True)
class Host:
    key: str | None = "host-key"  # None: no key needed (local servers)
    key_header: str = "authorization"  # "authorization" means a bearer token
    rejects: frozenset[str] = frozenset()
    extra: frozenset[str] = frozenset()
    reasoning_field: str = "reasoning_content"  # where reasoning text goes in answers
    # Where a stream's usage goes: "chunk" (OpenAI's usage-only chunk, when asked),
    # "x_groq" (Groq's final chunk), "last" (with the finish chunk, always: Together, Mistral).
    stream_usage: str = "chunk"
    error_shape: str = "openai"  # "mistral": top-level object, details for 422
    models: Any = field(default_factory=list)  # the model list as the host answers it
    embeddings_base64: bool = True


def mistral_models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": "mistral-large-latest", "object": "model", "max_context_length": 131072},
            {"id": "mistral-embed", "object": "model", "max_context_length": 8192},
        ],
    }


HOSTS: dict[str, Host] = {
    "openrouter": Host(
        extra=frozenset({"usage", "provider", "models", "route", "transforms", "reasoning"}),
        reasoning_field="reasoning",
        models={
            "data": [
                {
                    "id": "openai/gpt-4o-mini",
                    "context_length": 128000,
                    "pricing": {"prompt": "0.00000015", "completion": "0.0000006"},
                    "top_provider": {"max_completion_tokens": 16384},
                },
                {"id": "deepseek/deepseek-r1", "context_length": 163840, "pricing": {}},
            ]
        },
    ),
    "groq": Host(
        rejects=frozenset({"store", "metadata", "n", "logprobs", "logit_bias"}),
        extra=frozenset({"reasoning_format", "reasoning_effort"}),
        reasoning_field="reasoning",
        stream_usage="x_groq",
        models={
            "object": "list",
            "data": [{"id": "llama-3.3-70b-versatile", "context_window": 131072}],
        },
    ),
    "together": Host(
        rejects=frozenset({"store", "metadata", "max_completion_tokens", "service_tier"}),
        reasoning_field="reasoning",
        stream_usage="last",
        models=[
            {
                "id": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                "type": "chat",
                "context_length": 131072,
            }
        ],
        embeddings_base64=False,
    ),
    "fireworks": Host(
        rejects=frozenset({"store", "metadata", "max_completion_tokens"}),
        models={
            "data": [{"id": "accounts/fireworks/models/deepseek-v3", "context_length": 163840}]
        },
        embeddings_base64=False,
    ),
    "deepseek": Host(
        rejects=frozenset({"store", "metadata", "n", "max_completion_tokens", "seed"}),
        extra=frozenset({"thinking"}),
        models={"object": "list", "data": [{"id": "deepseek-chat"}, {"id": "deepseek-reasoner"}]},
    ),
    "ollama": Host(
        key=None,
        rejects=frozenset({"store", "metadata", "n", "logprobs", "max_completion_tokens"}),
        reasoning_field="reasoning",
        models={"object": "list", "data": [{"id": "llama3.2:latest", "owned_by": "library"}]},
        embeddings_base64=False,
    ),
    "vllm": Host(
        key=None,
        rejects=frozenset({"store", "metadata"}),
        reasoning_field="reasoning",
        models={"data": [{"id": "Qwen/Qwen3-8B", "max_model_len": 32768}]},
    ),
    "portkey": Host(
        key_header="x-portkey-api-key",
        models={"object": "list", "data": [{"id": "gpt-4o-mini"}]},
    ),
    "featherless": Host(
        rejects=frozenset({"store", "metadata", "n", "max_completion_tokens"}),
        models={"data": [{"id": "Qwen/Qwen2.5-7B-Instruct", "context_length": 32768}]},
    ),
    "chutes": Host(
        rejects=frozenset({"store", "metadata", "max_completion_tokens"}),
        reasoning_field="reasoning",
        models={"data": [{"id": "deepseek-ai/DeepSeek-V3-0324"}]},
    ),
    "mistral": Host(
        rejects=frozenset(
            {"store", "metadata", "seed", "user", "stream_options", "logprobs", "logit_bias"}
            | {"max_completion_tokens", "verbosity", "reasoning_effort", "service_tier"}
            | {"prompt_cache_key", "safety_identifier"}
        ),
        extra=frozenset({"random_seed", "safe_prompt", "prompt_mode"}),
        stream_usage="last",
        error_shape="mistral",
        models=mistral_models(),
        embeddings_base64=False,
    ),
    "xai": Host(
        rejects=frozenset({"store", "metadata", "max_completion_tokens"}),
        extra=frozenset({"search_parameters"}),
        models={"data": [{"id": "grok-4"}, {"id": "grok-3-mini"}]},
    ),
    "nim": Host(  # an "openai-compatible" host whose embeddings need input_type
        extra=frozenset({"input_type"}),
        models={"data": [{"id": "nvidia/nv-embedqa-e5-v5"}]},
    ),
}

MISTRAL_ID = re.compile(r"[A-Za-z0-9]{9}")
XAI_EFFORTS = {"grok-3-mini": ("low", "high"), "grok-4.3": ("none", "low", "medium", "high")}
XAI_REASONING = re.compile(r"grok-3-mini|grok-4(?!.*non-reasoning)")


def host_check(name: str, body: dict[str, Any], headers: dict[str, str]) -> str | None:
    """What the host refuses in this request that a field list cannot say, or None."""
    messages = body.get("messages") or []
    if name == "mistral":
        for message in messages:
            ids = [c["id"] for c in message.get("tool_calls") or []]
            if message.get("role") == "tool":
                ids.append(message.get("tool_call_id", ""))
            for value in ids:
                if not MISTRAL_ID.fullmatch(value):
                    return (
                        f"Tool call id was {value} but must be a-z, A-Z, 0-9, with a length of 9."
                    )
    if name == "deepseek":
        for index, message in enumerate(messages):
            called = message.get("role") == "assistant" and message.get("tool_calls")
            if called and "reasoning_content" not in message:
                return (
                    f"Missing `reasoning_content` field in the assistant message at message "
                    f"index {index}."
                )
    if name == "xai":
        model = body.get("model", "")
        effort = body.get("reasoning_effort")
        if effort is not None and effort not in XAI_EFFORTS.get(model, ()):
            return f"Model {model} does not support parameter reasoningEffort."
        if XAI_REASONING.search(model):
            for field_name in ("stop", "presence_penalty", "frequency_penalty"):
                if field_name in body:
                    return f"Argument not supported on this model: {field_name}"
    if name == "portkey":
        chosen = ("x-portkey-virtual-key", "x-portkey-provider", "x-portkey-config")
        if not any(h in headers for h in chosen):
            return "Either x-portkey-config or x-portkey-provider header is required"
    for index, message in enumerate(messages):
        if message.get("role") == "developer" and name in ("groq", "vllm"):
            return f"messages[{index}]: role 'developer' is not supported"
    return None
