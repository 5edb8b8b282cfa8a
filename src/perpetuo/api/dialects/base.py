"""What every dialect decoder returns: the client's body, its internal form, and what only a
deployment of the same wire format can serve."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perpetuo.schema.chat import ChatCompletionRequest


@dataclass(slots=True)
class DialectRequest:
    raw: dict[str, Any]  # the client's JSON object as sent (for native pass-through)
    chat: ChatCompletionRequest  # the IR (for translated lanes, guardrails, cache, limits)
    # Features only a same-format deployment can serve, each a short description naming the
    # parameter, e.g. "tools[2] (web_search_preview)"; empty when fully translatable.
    native_only: list[str]
