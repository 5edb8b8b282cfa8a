"""An estimate of a Messages request's input tokens, for `POST /v1/messages/count_tokens` on
deployments that are not Anthropic's (an Anthropic deployment counts exactly itself).

It is an estimate: the gateway's usual four-bytes-per-token reckoning over every text the
model reads (system, messages, tool calls and results, tool definitions), plus a flat figure
per image and PDF. Real tokenizers differ by model; this is meant for budgeting a context
window, not for billing.
"""

from __future__ import annotations

import msgspec

from perpetuo.api.dialects.base import DialectRequest
from perpetuo.metering.tokens import estimate_prompt_tokens, estimate_text_tokens
from perpetuo.schema.chat import (
    AssistantMessage,
    FilePart,
    FunctionToolCall,
    ImagePart,
    UserMessage,
)

# Anthropic sizes images down to about 1.15 megapixels, which is about 1,600 tokens.
IMAGE_TOKENS = 1600
# A PDF page costs its text plus an image of the page; a short document's worth.
PDF_TOKENS = 3000
_encode = msgspec.json.Encoder().encode


def estimate_input_tokens(request: DialectRequest) -> int:
    """Estimated input tokens of the request (never below 1)."""
    chat = request.chat
    total = estimate_prompt_tokens(chat)
    for message in chat.messages:
        if isinstance(message, UserMessage) and isinstance(message.content, list):
            for part in message.content:
                if isinstance(part, ImagePart):
                    total += IMAGE_TOKENS
                elif isinstance(part, FilePart):
                    total += PDF_TOKENS
        elif isinstance(message, AssistantMessage):
            for call in message.tool_calls or ():
                if isinstance(call, FunctionToolCall):
                    total += estimate_text_tokens(call.function.name + call.function.arguments)
    for tool in chat.tools or ():
        total += estimate_text_tokens(_encode(tool).decode())
    return max(1, total)
