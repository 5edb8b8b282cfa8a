"""What of a chat session's history goes into a request: pure functions, no I/O.

A session's history is cut into turns, each starting at a user message (messages before
the first user message are a turn of their own). The turns sent with a request are the
newest ones whose messages fit the session's `max_history_tokens`, whole: a turn is never
cut in half, so an assistant's tool call always travels with its results. When the posted
messages continue the last turn (tool results, not a new user message), that turn is sent
even if it alone is over the budget: the model cannot read a tool result without its call.

Sizes are estimates made when a message is stored (the provider's own count for answers,
about four bytes a token for the rest), so the budget is approximate by design.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from perpetuo.metering.tokens import estimate_text_tokens
from perpetuo.store.timeutil import utcnow

Json = dict[str, Any]
MESSAGE_OVERHEAD = 4  # role and separators, as estimate_prompt_tokens counts them
SUMMARY_HEADING = "Summary of the earlier conversation:"


@dataclass(slots=True)
class StoredMessage:
    id: str
    message: Json  # a chat message, validated (schema.chat) and in its wire form
    tokens: int
    created_at: dt.datetime = field(default_factory=utcnow)
    request_id: str | None = None
    seq: int | None = None  # its place in the session; None while it waits to be written

    @property
    def role(self) -> str:
        return str(self.message.get("role", ""))


def message_tokens(message: Json) -> int:
    """An estimate of the tokens `message` takes in a prompt."""
    total = MESSAGE_OVERHEAD + estimate_text_tokens(text_of(message.get("content")))
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict):
            function = call.get("function") or call.get("custom") or {}
            total += estimate_text_tokens(str(function.get("name") or ""))
            total += estimate_text_tokens(
                str(function.get("arguments") or function.get("input") or "")
            )
    return total


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return ""


def turns(messages: list[StoredMessage]) -> list[list[StoredMessage]]:
    """`messages` (oldest first) in turns, each starting at a user message."""
    out: list[list[StoredMessage]] = []
    for message in messages:
        if not out or message.role == "user":
            out.append([message])
        else:
            out[-1].append(message)
    return out


def window(messages: list[StoredMessage], budget: int, continuing: bool) -> list[StoredMessage]:
    """The newest whole turns within `budget` tokens, oldest first. `continuing`: the posted
    messages continue the last turn, which is then always kept."""
    kept: list[list[StoredMessage]] = []
    total = 0
    for position, turn in enumerate(reversed(turns(messages))):
        size = sum(m.tokens for m in turn)
        if total + size > budget and not (continuing and position == 0):
            break
        kept.append(turn)
        total += size
    return [message for turn in reversed(kept) for message in turn]


def overflow(messages: list[StoredMessage], budget: int) -> list[StoredMessage]:
    """The oldest turns to fold into the summary once the history is over `budget`: enough
    that what stays is within half the budget (so that summaries are not made on every
    request), always leaving the newest turn. [] while the history fits."""
    if sum(m.tokens for m in messages) <= budget:
        return []
    stays = window(messages, budget // 2, continuing=True)
    return messages[: len(messages) - len(stays)]


def transcript(summary: str | None, messages: list[StoredMessage]) -> str:
    """The earlier summary and the turns to fold into it, as text for the summarizing model."""
    lines = [f"{SUMMARY_HEADING}\n{summary}\n"] if summary else []
    for stored in messages:
        message = stored.message
        text = text_of(message.get("content"))
        for call in message.get("tool_calls") or ():
            function = (call.get("function") or {}) if isinstance(call, dict) else {}
            text += f"\n[calls {function.get('name')}({function.get('arguments') or ''})]"
        if text:
            lines.append(f"{stored.role}: {text}")
    return "\n".join(lines)


def prelude(system_prompt: str | None, summary: str | None) -> list[Json]:
    """The system messages a session puts before its history."""
    out: list[Json] = []
    if system_prompt:
        out.append({"role": "system", "content": system_prompt})
    if summary:
        out.append({"role": "system", "content": f"{SUMMARY_HEADING}\n{summary}"})
    return out
