"""The model list and model objects in Anthropic's shape, for Anthropic clients (their SDKs send
anthropic-version on every request; OpenAI's never do)."""

from __future__ import annotations

import time
from typing import Any

VERSION_HEADER = "anthropic-version"


def models_page(names: list[str], created: int) -> dict[str, Any]:
    """GET /v1/models in Anthropic's list shape (what the anthropic SDK's models.list reads)."""
    data = [model_object(name, created) for name in names]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def model_object(name: str, created: int) -> dict[str, Any]:
    """One model as Anthropic describes it (GET /v1/models/{id}, and each list entry)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
    return {"type": "model", "id": name, "display_name": name, "created_at": stamp}


def wants_anthropic_shape(headers: dict[str, str]) -> bool:
    """Anthropic's SDKs always send anthropic-version; OpenAI's never do."""
    return VERSION_HEADER in headers
