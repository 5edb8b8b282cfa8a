"""Reasoning blocks carried across dialects.

A provider's reasoning (Anthropic's signed thinking blocks) must come back to that provider
verbatim on the next turn. A dialect with no place for it (OpenAI Responses has reasoning
items whose `encrypted_content` is opaque to clients) carries it sealed in that opaque
field: `perpetuo.v1.` + base64url(JSON of the block). The provider's own signature inside
keeps it tamper-proof; a forged or altered block is refused by the provider, as it would be
without the gateway.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

SEALED_PREFIX = "perpetuo.v1."
FOREIGN_KINDS = frozenset({"thinking", "redacted_thinking"})  # Anthropic's


def seal(block: dict[str, Any]) -> str:
    data = base64.urlsafe_b64encode(msgspec.json.encode(block)).decode("ascii")
    return SEALED_PREFIX + data.rstrip("=")


def unseal(value: Any) -> dict[str, Any] | None:
    """The block inside a sealed string; None for anything else (e.g. OpenAI's own)."""
    if not isinstance(value, str) or not value.startswith(SEALED_PREFIX):
        return None
    data = value[len(SEALED_PREFIX) :]
    try:
        block = msgspec.json.decode(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    if isinstance(block, dict) and block.get("type") in FOREIGN_KINDS:
        return block
    return None


def as_reasoning_item(block: dict[str, Any], item_id: str, summarize: bool) -> dict[str, Any]:
    """An Anthropic thinking block as an OpenAI Responses reasoning item; its text is the
    summary when the client asked for summaries."""
    text = block.get("thinking") if block.get("type") == "thinking" and summarize else None
    summary = [{"type": "summary_text", "text": text}] if isinstance(text, str) and text else []
    sealed = seal(block)
    return {"id": item_id, "type": "reasoning", "summary": summary, "encrypted_content": sealed}
