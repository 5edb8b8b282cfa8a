"""Deterministic "model" behind every mock provider.

Each mock reduces its provider's request to a Conversation, asks `reply`, and encodes the
Reply in its own wire format. Behaviour, so tests can predict answers:
- the last message is a tool result -> text "The tool returned: <result>"
- tools offered and tool_choice is not "none" -> a call to the named tool, or the first;
  every tool when the user text contains "all tools" (parallel calls)
- a JSON schema response format -> a JSON instance of the schema; json_object -> {"echo": ...}
- otherwise "Echo: <last user text>", plus " [N image(s)]" when images were sent;
  the text "unicode please" answers with multi-byte characters
- max tokens cut the answer to that many words (finish "length"); stop strings cut it too
- "in small pieces" in the user text streams the answer 3 characters per chunk (a token or
  a card number then spans several events)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

UNICODE_REPLY = "Grüße aus Köln — naïve café, 日本語のテキスト, emoji 👋🏽🚀 done"


@dataclass
class Tool:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class Conversation:
    last_user_text: str = ""
    last_tool_result: str | None = None  # set when the final message is a tool result
    all_text: list[str] = field(default_factory=list)  # every text, for usage counts
    images: int = 0
    tools: list[Tool] = field(default_factory=list)
    tool_choice: str | None = None  # "auto", "none", "required" or a tool name
    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    system: str = ""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish: str = "stop"  # stop, length, tool_calls
    prompt_tokens: int = 0
    completion_tokens: int = 0
    piece_size: int | None = None  # stream this many characters per chunk instead of words

    def text_pieces(self) -> list[str]:
        """The text as stream deltas: word by word, spaces kept."""
        if self.piece_size and self.text:
            size = self.piece_size
            return [self.text[i : i + size] for i in range(0, len(self.text), size)]
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)] if self.text else []


def count_tokens(text: str) -> int:
    return len(text.split())


def reply(conv: Conversation) -> Reply:
    prompt_tokens = sum(count_tokens(t) for t in conv.all_text) + 3
    if conv.last_tool_result is not None:
        out = Reply(text=f"The tool returned: {conv.last_tool_result}")
    elif conv.tools and conv.tool_choice != "none":
        chosen = [t for t in conv.tools if t.name == conv.tool_choice] or conv.tools[:1]
        if "all tools" in conv.last_user_text.lower():
            chosen = conv.tools
        calls = [
            ToolCall(f"call_{i + 1}_{t.name}", t.name, sample(t.parameters, conv.last_user_text))
            for i, t in enumerate(chosen)
        ]
        out = Reply(tool_calls=calls, finish="tool_calls")
        out.completion_tokens = sum(count_tokens(c.arguments_json) + 2 for c in calls)
        out.prompt_tokens = prompt_tokens
        return out
    elif conv.json_schema is not None:
        out = Reply(text=json.dumps(sample(conv.json_schema, conv.last_user_text)))
    elif conv.json_object:
        out = Reply(text=json.dumps({"echo": conv.last_user_text}))
    elif "unicode please" in conv.last_user_text.lower():
        out = Reply(text=UNICODE_REPLY)
    else:
        text = f"Echo: {conv.last_user_text}"
        if conv.images:
            text += f" [{conv.images} image(s)]"
        out = Reply(text=text)
    for stop in conv.stop:
        if stop and stop in out.text:
            out.text = out.text[: out.text.index(stop)]
    if conv.max_tokens is not None and count_tokens(out.text) > conv.max_tokens:
        out.text = " ".join(out.text.split(" ")[: conv.max_tokens])
        out.finish = "length"
    out.prompt_tokens = prompt_tokens
    out.completion_tokens = count_tokens(out.text)
    if "in small pieces" in conv.last_user_text:
        out.piece_size = 3
    return out


def sample(schema: dict[str, Any], text: str) -> Any:
    """A small value that satisfies a JSON schema (the common subset)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: sample(sub, text) for name, sub in props.items()}
    if kind == "array":
        return [sample(schema.get("items", {}), text)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text or "value"
