"""OpenAI-compatible hosts as data: default base URL and the quirks each needs smoothed.

Adding such a host is one entry here, not a new module. The request side (what a host
refuses, drops or renames, per host and per model family) is read by openai.py; the answer
side (where a host puts reasoning, usage details and its charge) by openai_answers.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from perpetuo.schema.endpoints import ALL_ENDPOINTS, Endpoint

E = Endpoint
# OpenAI's bookkeeping hints, which most hosts reject as unknown fields and none needs.
BOOKKEEPING = ("store", "metadata", "service_tier", "prompt_cache_key", "safety_identifier")
PENALTIES = ("presence_penalty", "frequency_penalty")


@dataclass(frozen=True)
class ModelRule:
    """What one family of a host's models refuses or ignores, matched by `pattern` (a regular
    expression searched in the lower-cased upstream model). The first rule that matches
    applies, in addition to the host's own lists."""

    pattern: str
    unsupported: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    # The reasoning_effort values the family takes, lowest first: another value becomes the
    # nearest of them; () means the family takes none (it is dropped). None: as the host.
    reasoning_efforts: tuple[str, ...] | None = None

    def matches(self, model: str) -> bool:
        return re.search(self.pattern, model.lower()) is not None


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
    # -- requests ---------------------------------------------------------------------------
    key_header: str | None = None  # the key goes in this header as it is (else a bearer token)
    request_defaults: dict[str, Any] = field(default_factory=dict)  # unless the client sends them
    model_rules: tuple[ModelRule, ...] = ()
    replays_reasoning: bool = False  # earlier turns' reasoning_content goes back (DeepSeek)
    # Tool-call ids the host accepts: ids of other providers are rewritten to this many
    # letters and digits (the same id always gives the same one). None: any id.
    tool_id_length: int | None = None
    embedding_input_type: bool = False  # embeddings take `input_type` (asymmetric models)
    # -- answers (openai_answers.py) ---------------------------------------------------------
    reasoning_field: str | None = None  # the host's name for reasoning text in messages/deltas
    content_parts: bool = False  # content may come as a list of text and thinking chunks
    stream_usage_path: tuple[str, ...] = ()  # where a stream's usage is when not at `usage`
    cached_tokens_field: str | None = None  # usage field counting prompt-cache hits
    reasoning_outside_completion: bool = False  # completion_tokens leave out reasoning_tokens
    # The usage field with what the host charged, and USD per unit of it: metered instead of
    # the catalog price for deployments the operator configured.
    cost_field: tuple[str, float] | None = None

    def rule_for(self, model: str) -> ModelRule | None:
        return next((rule for rule in self.model_rules if rule.matches(model)), None)

    @property
    def fixes_answers(self) -> bool:
        """Does an answer need any rewriting before it is chat form?"""
        return bool(
            self.reasoning_field
            or self.content_parts
            or self.stream_usage_path
            or self.cached_tokens_field
            or self.reasoning_outside_completion
            or self.cost_field
        )


# xAI: reasoning models refuse penalties and stop sequences; reasoning_effort is taken by
# a few models only, each with its own values (the others answer 400 "not supported").
_XAI_RULES = (
    ModelRule(
        r"grok-3-mini", unsupported=("stop",), dropped=PENALTIES, reasoning_efforts=("low", "high")
    ),
    ModelRule(
        r"grok-4\.3",
        unsupported=("stop",),
        dropped=PENALTIES,
        reasoning_efforts=("none", "low", "medium", "high"),
    ),
    ModelRule(
        r"grok-4\.5|grok-[5-9]",
        unsupported=("stop",),
        dropped=PENALTIES,
        reasoning_efforts=("low", "medium", "high"),
    ),
    ModelRule(r"non-reasoning", reasoning_efforts=()),
    ModelRule(r"grok-4|grok-code", unsupported=("stop",), dropped=PENALTIES, reasoning_efforts=()),
    ModelRule(r"", reasoning_efforts=()),
)

OPENAI_PRESETS: dict[str, OpenAIQuirks] = {
    "openai": OpenAIQuirks(
        api_base="https://api.openai.com/v1",
        responses_api=True,
        endpoints=ALL_ENDPOINTS - {E.RERANK},
        chat_models_complete=False,
    ),
    "openai-compatible": OpenAIQuirks(requires_key=False, embedding_input_type=True),
    # Perpetuo's built-in demo provider (perpetuo/demo): local, deterministic, no key.
    "demo": OpenAIQuirks(requires_key=False, endpoints=frozenset({E.CHAT, E.EMBEDDINGS})),
    "vllm": OpenAIQuirks(
        requires_key=False,
        # /v1/rerank (also at the root), and /v1/audio/transcriptions for Whisper models
        endpoints=frozenset({E.CHAT, E.COMPLETIONS, E.EMBEDDINGS, E.RERANK, E.TRANSCRIPTIONS}),
        developer_role=False,
        dropped=BOOKKEEPING,
        reasoning_field="reasoning",  # vLLM 0.11+; earlier versions say reasoning_content
    ),
    "ollama": OpenAIQuirks(
        api_base="http://127.0.0.1:11434/v1",
        requires_key=False,
        endpoints=frozenset({E.CHAT, E.COMPLETIONS, E.EMBEDDINGS}),
        max_completion_tokens=False,
        developer_role=False,
        dropped=(*BOOKKEEPING, "user"),
        unsupported=("n", "logprobs"),
        float_embeddings_only=True,
        reasoning_field="reasoning",
    ),
    "groq": OpenAIQuirks(
        api_base="https://api.groq.com/openai/v1",
        endpoints=frozenset({E.CHAT, E.TRANSCRIPTIONS, E.SPEECH}),
        developer_role=False,
        unsupported=("n", "logprobs", "logit_bias", "top_logprobs", "audio"),
        dropped=("store", "metadata", "prompt_cache_key", "safety_identifier"),
        float_embeddings_only=True,
        reasoning_field="reasoning",  # with reasoning_format "parsed" (its default)
        stream_usage_path=("x_groq", "usage"),
    ),
    "together": OpenAIQuirks(
        api_base="https://api.together.xyz/v1",
        endpoints=frozenset({E.CHAT, E.COMPLETIONS, E.EMBEDDINGS, E.IMAGES, E.RERANK}),
        max_completion_tokens=False,
        developer_role=False,
        dropped=BOOKKEEPING,
        float_embeddings_only=True,
        reasoning_field="reasoning",
    ),
    "mistral": OpenAIQuirks(
        api_base="https://api.mistral.ai/v1",
        endpoints=frozenset({E.CHAT, E.EMBEDDINGS}),
        stream_usage=False,  # Mistral always reports usage on its last chunk
        max_completion_tokens=False,
        developer_role=False,
        unsupported=("logprobs", "logit_bias", "top_logprobs", "audio", "web_search_options"),
        dropped=(
            *BOOKKEEPING,
            "user",
            "stream_options",
            "verbosity",
            "reasoning_effort",
            "prompt_cache_retention",
        ),
        renames={"seed": "random_seed"},
        float_embeddings_only=True,
        tool_id_length=9,  # "must be a-z, A-Z, 0-9, with a length of 9"
        content_parts=True,  # Magistral answers with thinking chunks
    ),
    "deepseek": OpenAIQuirks(
        api_base="https://api.deepseek.com/v1",
        endpoints=frozenset({E.CHAT}),
        max_completion_tokens=False,
        developer_role=False,
        unsupported=("n",),
        dropped=(*BOOKKEEPING, "seed"),
        # Thinking mode: an assistant turn that called tools must come back with its
        # reasoning_content (400 otherwise); on other turns it is ignored.
        replays_reasoning=True,
        cached_tokens_field="prompt_cache_hit_tokens",
        model_rules=(ModelRule(r"reasoner", unsupported=("logprobs", "top_logprobs")),),
    ),
    "xai": OpenAIQuirks(
        api_base="https://api.x.ai/v1",
        endpoints=frozenset({E.CHAT, E.IMAGES}),
        max_completion_tokens=False,
        developer_role=False,
        dropped=BOOKKEEPING,
        model_rules=_XAI_RULES,
        reasoning_outside_completion=True,
        cost_field=("cost_in_usd_ticks", 1e-10),
    ),
    "openrouter": OpenAIQuirks(
        api_base="https://openrouter.ai/api/v1",
        developer_role=False,
        endpoints=frozenset({E.CHAT, E.COMPLETIONS}),
        request_defaults={"usage": {"include": True}},  # cost and cache details in usage
        reasoning_field="reasoning",
        cost_field=("cost", 1.0),  # credits, one dollar each
    ),
    "fireworks": OpenAIQuirks(
        api_base="https://api.fireworks.ai/inference/v1",
        endpoints=frozenset({E.CHAT, E.COMPLETIONS, E.EMBEDDINGS}),
        max_completion_tokens=False,
        developer_role=False,
        dropped=BOOKKEEPING,
        float_embeddings_only=True,
    ),
    # Portkey's gateway: its key in x-portkey-api-key; which provider it calls comes from the
    # provider's `headers` (x-portkey-virtual-key, x-portkey-config or x-portkey-provider).
    "portkey": OpenAIQuirks(
        api_base="https://api.portkey.ai/v1",
        key_header="x-portkey-api-key",
        endpoints=ALL_ENDPOINTS - {E.RERANK},
        chat_models_complete=False,
    ),
    "featherless": OpenAIQuirks(
        api_base="https://api.featherless.ai/v1",
        endpoints=frozenset({E.CHAT, E.COMPLETIONS}),
        max_completion_tokens=False,
        developer_role=False,
        unsupported=("n",),
        dropped=BOOKKEEPING,
    ),
    "chutes": OpenAIQuirks(
        api_base="https://llm.chutes.ai/v1",
        endpoints=frozenset({E.CHAT, E.COMPLETIONS}),
        max_completion_tokens=False,
        developer_role=False,
        dropped=BOOKKEEPING,
        reasoning_field="reasoning",
    ),
    # Jina AI's embeddings (OpenAI's format) and reranker (the Cohere-style /v1/rerank).
    "jina": OpenAIQuirks(
        api_base="https://api.jina.ai/v1",
        endpoints=frozenset({E.EMBEDDINGS, E.RERANK}),
    ),
}

# The effort scale reasoning_effort values sit on, to find a family's nearest value.
EFFORT_SCALE = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def nearest_effort(asked: str, offered: tuple[str, ...]) -> str | None:
    """The value of `offered` closest to `asked` on EFFORT_SCALE (the higher on a tie);
    None when nothing is offered. An unknown value is passed as it is."""
    if not offered:
        return None
    if asked in offered or asked not in EFFORT_SCALE:
        return asked
    rank = EFFORT_SCALE.index(asked)
    known = [value for value in offered if value in EFFORT_SCALE]
    if not known:
        return asked
    return min(known, key=lambda v: (abs(EFFORT_SCALE.index(v) - rank), -EFFORT_SCALE.index(v)))
