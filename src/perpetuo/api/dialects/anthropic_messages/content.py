"""Messages-API turns and content blocks -> internal chat messages (plain dicts, validated later).

A Messages turn can hold several kinds of block, where chat messages hold one kind each, so a
user turn may become several chat messages: each `tool_result` a `tool` message (in place), the
other blocks of the turn a `user` message. Every chat message remembers the Messages-API
location it came from, so a failed validation names what the client sent.

What chat form cannot say is listed in `native_only` (server-tool blocks, files by id, PDFs by
URL, documents with citations, images inside tool results) and left out of the chat messages;
a deployment that speaks Messages still gets the client's body as sent.

Two choices worth knowing: a `tool_result` with `is_error: true` becomes a tool message whose
text starts with "Error: " (chat form has no error flag); thinking blocks are kept verbatim in
`thinking_blocks` (only Anthropic can check their signatures) and their text, joined, in
`reasoning_content`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from perpetuo.schema.errors import GatewayError, bad_request

Json = dict[str, Any]

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
ROLES = ("user", "assistant", "system")
# Blocks that are well-formed in one role only: the other role is a client mistake.
USER_ONLY = frozenset({"tool_result"})
ASSISTANT_ONLY = frozenset({"tool_use", "thinking", "redacted_thinking"})
DEFAULT_PDF_NAME = "document.pdf"  # chat form's file parts carry a name; Messages' do not


@dataclass(slots=True)
class Decoded:
    """The chat messages decoded so far, each with the Messages-API location it came from."""

    messages: list[Json] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    native_only: list[str] = field(default_factory=list)

    def add(self, message: Json, where: str) -> None:
        self.messages.append(message)
        self.where.append(where)


def invalid(param: str, detail: str) -> GatewayError:
    """A 400 worded as Anthropic words them: `<location>: <what is wrong>`."""
    return bad_request(f"{param}: {detail}", param=param)


def kind_of(block: Any, where: str) -> str:
    if not isinstance(block, dict):
        raise invalid(where, "Input should be a valid dictionary")
    kind = block.get("type")
    if not isinstance(kind, str):
        raise invalid(f"{where}.type", "Field required")
    return kind


def string(block: Json, name: str, where: str, *, empty: bool = True) -> str:
    value = block.get(name)
    if not isinstance(value, str):
        raise invalid(f"{where}.{name}", "Input should be a valid string")
    if not empty and not value:
        raise invalid(f"{where}.{name}", "String should have at least 1 character")
    return value


# --- system ----------------------------------------------------------------------------------


def decode_system(system: Any, out: Decoded) -> None:
    """The top-level `system`: a string or a list of text blocks."""
    if system is None:
        return
    content = system_content(system, "system")
    if content:
        out.add({"role": "system", "content": content}, "system")


def system_content(content: Any, where: str) -> str | list[Json]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid(where, "Input should be a valid string or a list of text blocks")
    parts = []
    for j, block in enumerate(content):
        at = f"{where}[{j}]"
        if kind_of(block, at) != "text":
            raise invalid(f"{at}.type", "Input should be 'text'")
        parts.append({"type": "text", "text": string(block, "text", at)})
    return parts


# --- messages --------------------------------------------------------------------------------


def decode_messages(messages: Any, out: Decoded) -> None:
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "at least one message is required")
    last = len(messages) - 1
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise invalid(where, "Input should be a valid dictionary")
        role = message.get("role")
        if role not in ROLES:
            raise invalid(f"{where}.role", "Input should be 'user' or 'assistant'")
        content = message.get("content")
        if role == "system":
            # Newer API versions (and many clients) put system turns among the messages.
            out.add(
                {"role": "system", "content": system_content(content, f"{where}.content")}, where
            )
            continue
        if isinstance(content, str):
            out.add({"role": role, "content": content}, where)  # the shorthand for one text
            continue
        if content is None:
            content = []  # some clients send null for an empty (prefill) turn
        if not isinstance(content, list):
            raise invalid(f"{where}.content", "Input should be a valid string or list")
        blocks: list[Any] = content
        if not blocks and not (role == "assistant" and i == last):
            raise invalid(where, "all messages must have non-empty content")
        if role == "user":
            _user_turn(blocks, where, out)
        else:
            _assistant_turn(blocks, where, out)


def _user_turn(blocks: list[Any], where: str, out: Decoded) -> None:
    parts: list[Json] = []
    first = where  # where the pending user message starts

    def flush() -> None:
        if parts:
            out.add({"role": "user", "content": list(parts)}, first)
            parts.clear()

    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = kind_of(block, at)
        if kind == "tool_result":
            flush()
            out.add(_tool_result(block, at, out), at)
            first = f"{where}.content[{j + 1}]"
        elif kind == "text":
            parts.append({"type": "text", "text": string(block, "text", at)})
        elif kind == "image":
            parts.extend(_image(block, at, out))
        elif kind == "document":
            parts.extend(_document(block, at, out))
        elif kind in ASSISTANT_ONLY:
            raise invalid(f"{at}.type", f"'{kind}' blocks are only valid in assistant messages")
        else:
            out.native_only.append(f"{at} ({kind})")
    flush()


def _image(block: Json, where: str, out: Decoded) -> list[Json]:
    source = block.get("source")
    at = f"{where}.source"
    kind = kind_of(source, at)
    if kind == "base64":
        media_type = source.get("media_type")
        if media_type not in IMAGE_TYPES:
            raise invalid(
                f"{at}.media_type",
                "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
            )
        data = string(source, "data", at, empty=False)
        return [{"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}]
    if kind == "url":
        return [{"type": "image_url", "image_url": {"url": string(source, "url", at, empty=False)}}]
    if kind == "file":
        out.native_only.append(f"{where} (image from a file id)")
        return []
    raise invalid(f"{at}.type", "Input tag does not match 'base64', 'url', 'file'")


def _document(block: Json, where: str, out: Decoded) -> list[Json]:
    citations = block.get("citations")
    if isinstance(citations, dict) and citations.get("enabled") is True:
        # The answer would carry citations into this document; chat form has no such thing.
        out.native_only.append(f"{where}.citations (document citations)")
        return []
    source = block.get("source")
    at = f"{where}.source"
    kind = kind_of(source, at)
    if kind == "base64":
        if source.get("media_type") != "application/pdf":
            raise invalid(f"{at}.media_type", "Input should be 'application/pdf'")
        data = string(source, "data", at, empty=False)
        title = block.get("title")
        name = title if isinstance(title, str) and title else DEFAULT_PDF_NAME
        file = {"file_data": f"data:application/pdf;base64,{data}", "filename": name}
        return [{"type": "file", "file": file}]
    if kind == "text":
        return [{"type": "text", "text": string(source, "data", at)}]
    if kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            return [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise invalid(f"{at}.content", "Input should be a valid string or list")
        parts: list[Json] = []
        for k, inner in enumerate(content):
            inner_at = f"{at}.content[{k}]"
            inner_kind = kind_of(inner, inner_at)
            if inner_kind == "text":
                parts.append({"type": "text", "text": string(inner, "text", inner_at)})
            elif inner_kind == "image":
                parts.extend(_image(inner, inner_at, out))
            else:
                raise invalid(f"{inner_at}.type", "Input should be 'text' or 'image'")
        return parts
    if kind in ("url", "file"):
        out.native_only.append(f"{where} (document from a {'URL' if kind == 'url' else 'file id'})")
        return []
    raise invalid(f"{at}.type", "Input tag does not match 'base64', 'text', 'content', 'url'")


def _tool_result(block: Json, where: str, out: Decoded) -> Json:
    call_id = string(block, "tool_use_id", where, empty=False)
    content = block.get("content")
    parts: list[Json] = []
    if isinstance(content, str):
        parts.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for k, inner in enumerate(content):
            at = f"{where}.content[{k}]"
            kind = kind_of(inner, at)
            if kind == "text":
                parts.append({"type": "text", "text": string(inner, "text", at)})
            else:
                # Tool messages carry text only in chat form.
                out.native_only.append(f"{at} ({kind} in a tool_result)")
    elif content is not None:
        raise invalid(f"{where}.content", "Input should be a valid string or list")
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        raise invalid(f"{where}.is_error", "Input should be a valid boolean")
    if is_error:
        if parts:
            parts[0] = {"type": "text", "text": "Error: " + parts[0]["text"]}
        else:
            parts.append({"type": "text", "text": "Error"})
    text: str | list[Json] = parts[0]["text"] if len(parts) == 1 else parts
    return {"role": "tool", "tool_call_id": call_id, "content": text if parts else ""}


def _assistant_turn(blocks: list[Any], where: str, out: Decoded) -> None:
    texts: list[str] = []
    calls: list[Json] = []
    thinking: list[Json] = []
    reasoning: list[str] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = kind_of(block, at)
        if kind == "text":
            texts.append(string(block, "text", at))
        elif kind == "tool_use":
            calls.append(_tool_use(block, at))
        elif kind == "thinking":
            # Anthropic refuses a thinking block without its signature, and so do we.
            reasoning.append(string(block, "thinking", at))
            string(block, "signature", at)
            thinking.append(block)
        elif kind == "redacted_thinking":
            string(block, "data", at)
            thinking.append(block)
        elif kind in USER_ONLY:
            raise invalid(f"{at}.type", f"'{kind}' blocks are only valid in user messages")
        else:
            out.native_only.append(f"{at} ({kind})")
    if not (texts or calls or thinking):
        return
    message: Json = {"role": "assistant"}
    if len(texts) == 1:
        message["content"] = texts[0]
    elif texts:
        message["content"] = [{"type": "text", "text": text} for text in texts]
    else:
        message["content"] = None
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["thinking_blocks"] = thinking
        if any(reasoning):
            message["reasoning_content"] = "".join(reasoning)
    out.add(message, where)


def _tool_use(block: Json, where: str) -> Json:
    call_id = string(block, "id", where, empty=False)
    name = string(block, "name", where, empty=False)
    arguments = block.get("input")
    if not isinstance(arguments, dict):
        raise invalid(f"{where}.input", "Input should be a valid dictionary")
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": encode_arguments(arguments)},
    }


def encode_arguments(arguments: Json) -> str:
    return msgspec.json.encode(arguments).decode()
