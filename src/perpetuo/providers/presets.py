"""OpenAI-compatible hosts as data: default base URL and the quirks each needs smoothed.

Adding such a host is one entry here, not a new module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perpetuo.schema.endpoints import ALL_ENDPOINTS, Endpoint

E = Endpoint


@dataclass(frozen=True)
class OpenAIQuirks:
    api_base: str | None = None  # None: the config must give api_base
    stream_usage: bool = True  # accepts stream_options.include_usage
    max_completion_tokens: bool = True  # else sent as max_tokens
    developer_role: bool = True  # else developer messages become system messages
    unsupported: tuple[str, ...] = ()  # parameters the host rejects: try another deployment
    dropped: tuple[str, ...] = ()  # parameters the host rejects but that only hint: omit
    renames: dict[str, str] = field(default_factory=dict)  # our name -> the host's name
    float_embeddings_only: bool = False  # cannot return base64 embeddings itself
    responses_api: bool = False  # serves OpenAI's Responses API (/responses) natively
    requires_key: bool = True  # hosted services need one; local servers usually do not
    # What the host serves besides chat (schema/endpoints.py); a generic host: everything.
    endpoints: frozenset[str] = ALL_ENDPOINTS
    # Chat models also answer /completions (vLLM, Ollama); OpenAI's answer only on chat.
    chat_models_complete: bool = True


OPENAI_PRESETS: dict[str, OpenAIQuirks] = {
    "openai": OpenAIQuirks(
        api_base="https://api.openai.com/v1",
        responses_api=True,
        endpoints=ALL_ENDPOINTS - {E.RERANK},
        chat_models_complete=False,
    ),
    "openai-compatible": OpenAIQuirks(requires_key=False),
    # Perpetuo's built-in demo provider (perpetuo/demo): local, deterministic, no key.
    "demo": OpenAIQuirks(requires_key=False, endpoints=frozenset({E.CHAT, E.EMBEDDINGS})),
    "vllm": OpenAIQuirks(
        requires_key=False,
        # /v1/rerank (also at the root), and /v1/audio/transcriptions for Whisper models
        endpoints=frozenset({E.CHAT, E.COMPLETIONS, E.EMBEDDINGS, E.RERANK, E.TRANSCRIPTIONS}),
        developer_role=False,
        dropped=("store", "metadata", "service_tier", "prompt_cache_key", "safety_identifier"),
        float_embeddings_only=False,
    ),
    "ollama": OpenAIQuirks(
        api_base="http://127.0.0.1:11434/v1",
        requires_key=False,
        endpoints=frozenset({E.CHAT, E.COMPLETIONS, E.EMBEDDINGS}),
        max_completion_tokens=False,
        developer_role=False,
        dropped=("store", "metadata", "service_tier", "user", "prompt_cache_key"),
        unsupported=("n", "logprobs"),
        float_embeddings_only=True,
    ),
    "groq": OpenAIQuirks(
        api_base="https://api.groq.com/openai/v1",
        endpoints=frozenset({E.CHAT, E.TRANSCRIPTIONS, E.SPEECH}),
        developer_role=False,
        unsupported=("n", "logprobs", "logit_bias", "top_logprobs", "audio"),
        dropped=("store", "metadata", "prompt_cache_key"),
        float_embeddings_only=True,
    ),
    "together": OpenAIQuirks(
        api_base="https://api.together.xyz/v1",
        endpoints=frozenset({E.CHAT, E.COMPLETIONS, E.EMBEDDINGS, E.IMAGES, E.RERANK}),
        max_completion_tokens=False,
        developer_role=False,
        dropped=("store", "metadata", "service_tier", "prompt_cache_key"),
        float_embeddings_only=True,
    ),
    "mistral": OpenAIQuirks(
        api_base="https://api.mistral.ai/v1",
        endpoints=frozenset({E.CHAT, E.EMBEDDINGS}),
        stream_usage=False,  # Mistral always reports usage on its last chunk
        max_completion_tokens=False,
        developer_role=False,
        unsupported=("logprobs", "logit_bias", "top_logprobs", "audio"),
        dropped=("user", "store", "metadata", "service_tier", "prompt_cache_key"),
        renames={"seed": "random_seed"},
        float_embeddings_only=True,
    ),
    "deepseek": OpenAIQuirks(
        api_base="https://api.deepseek.com/v1",
        endpoints=frozenset({E.CHAT}),
        max_completion_tokens=False,
        developer_role=False,
        unsupported=("n",),
        dropped=("store", "metadata", "service_tier", "seed", "prompt_cache_key"),
    ),
    "openrouter": OpenAIQuirks(
        api_base="https://openrouter.ai/api/v1",
        developer_role=False,
        endpoints=frozenset({E.CHAT, E.COMPLETIONS}),
    ),
    "fireworks": OpenAIQuirks(
        api_base="https://api.fireworks.ai/inference/v1",
        endpoints=frozenset({E.CHAT, E.COMPLETIONS, E.EMBEDDINGS}),
        max_completion_tokens=False,
        developer_role=False,
        dropped=("store", "metadata", "service_tier", "prompt_cache_key"),
        float_embeddings_only=True,
    ),
    # Jina AI's embeddings (OpenAI's format) and reranker (the Cohere-style /v1/rerank).
    "jina": OpenAIQuirks(
        api_base="https://api.jina.ai/v1",
        endpoints=frozenset({E.EMBEDDINGS, E.RERANK}),
    ),
}
