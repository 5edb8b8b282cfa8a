"""Responses input items -> internal chat messages.

`items_to_messages` reads a request's `input` and also rebuilds a conversation from stored
responses (previous_response_id). Consecutive assistant output items (reasoning, message,
function and custom tool calls) become ONE assistant message, as chat expresses parallel
calls; reasoning items ride along verbatim in `thinking_blocks` for the provider that made
them. Items whose meaning lives on OpenAI's side (server tools' calls, stored item
references, unknown kinds) are named in `native_only` and left out of the messages.
"""

from __future__ import annotations

from typing import Any

from perpetuo.schema.chat import (
    AssistantMessage,
    AudioPart,
    CustomCall,
    CustomToolCall,
    DeveloperMessage,
    FilePart,
    FileRef,
    FunctionCall,
    FunctionToolCall,
    ImagePart,
    ImageURL,
    InputAudio,
    Message,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from perpetuo.schema.errors import ErrorCode, GatewayError, bad_request

Json = dict[str, Any]

ASSISTANT_ITEMS = frozenset({"function_call", "custom_tool_call", "reasoning"})
TOOL_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output"})
TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
IMAGE_DETAILS = {"auto": "auto", "low": "low", "high": "high", "original": "high"}


def items_to_messages(
    items: list[Any],
    instructions: str | None = None,
    *,
    native_only: list[str] | None = None,
    where: str = "input",
) -> list[Message]:
    """The chat messages of a list of Responses items, `instructions` first as a system
    message. Raises GatewayError (400, param naming `where[i]...`) for malformed items;
    appends to `native_only` what only an OpenAI Responses deployment could act on."""
    notes = native_only if native_only is not None else []
    messages: list[Message] = []
    if instructions:
        messages.append(SystemMessage(content=instructions))
    turn: _AssistantTurn | None = None
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise invalid(at, "expected an object")
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"  # the "easy" message form leaves the type out
        role = item.get("role")
        if (kind == "message" and role == "assistant") or kind in ASSISTANT_ITEMS:
            turn = turn or _AssistantTurn()
            turn.add(item, kind, at, notes)
            continue
        if turn is not None:
            messages.append(turn.message())
            turn = None
        if kind == "message":
            messages.append(_message(item, role, at, notes))
        elif kind in TOOL_OUTPUTS:
            messages.append(_tool_output(item, at, notes))
        elif not isinstance(kind, str):
            raise missing(f"{at}.type")
        else:
            notes.append(f"{at} ({kind})")
    if turn is not None:
        messages.append(turn.message())
    return messages


class _AssistantTurn:
    """One assistant message assembled from consecutive output items."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.refusals: list[str] = []
        self.calls: list[ToolCall] = []
        self.blocks: list[Json] = []
        self.thoughts: list[str] = []

    def add(self, item: Json, kind: str, at: str, notes: list[str]) -> None:
        if kind == "message":
            self._content(item.get("content"), at, notes)
        elif kind == "function_call":
            function = FunctionCall(
                name=_text(item, "name", at), arguments=_text(item, "arguments", at, empty=True)
            )
            self.calls.append(FunctionToolCall(id=_text(item, "call_id", at), function=function))
        elif kind == "custom_tool_call":
            custom = CustomCall(name=_text(item, "name", at), input=_text(item, "input", at, True))
            self.calls.append(CustomToolCall(id=_text(item, "call_id", at), custom=custom))
        else:
            self._reasoning(item, at)

    def _content(self, content: Any, at: str, notes: list[str]) -> None:
        if isinstance(content, str):
            self.texts.append(content)
            return
        for j, part in enumerate(_part_list(content, at)):
            kind = part.get("type")
            if kind in TEXT_PARTS:
                self.texts.append(_text(part, "text", f"{at}.content[{j}]", empty=True))
            elif kind == "refusal":
                self.refusals.append(_text(part, "refusal", f"{at}.content[{j}]", empty=True))
            else:
                notes.append(f"{at}.content[{j}] ({kind})")

    def _reasoning(self, item: Json, at: str) -> None:
        summary = item.get("summary")
        if summary is None:
            summary = []
        if not isinstance(summary, list):
            raise invalid(f"{at}.summary", "expected an array")
        texts = []
        for k, entry in enumerate(summary):
            if not isinstance(entry, dict):
                raise invalid(f"{at}.summary[{k}]", "expected an object")
            texts.append(_text(entry, "text", f"{at}.summary[{k}]", empty=True))
        encrypted = item.get("encrypted_content")
        if encrypted is not None and not isinstance(encrypted, str):
            raise invalid(f"{at}.encrypted_content", "expected a string")
        self.blocks.append(dict(item))  # verbatim: id and encrypted_content prove it upstream
        if texts:
            self.thoughts.append("\n\n".join(texts))

    def message(self) -> AssistantMessage:
        message = AssistantMessage(content=None)
        if len(self.texts) == 1:
            message.content = self.texts[0]
        elif self.texts:
            message.content = [TextPart(text=t) for t in self.texts]
        if self.refusals:
            message.refusal = "".join(self.refusals)
        if self.calls:
            message.tool_calls = self.calls
        if self.blocks:
            message.thinking_blocks = self.blocks
        if self.thoughts:
            message.reasoning_content = "\n\n".join(self.thoughts)
        return message


def _message(item: Json, role: Any, at: str, notes: list[str]) -> Message:
    content = item.get("content")
    if role == "user":
        if isinstance(content, str):
            return UserMessage(content=content)
        parts = [
            part
            for j, raw in enumerate(_part_list(content, at))
            if (part := _user_part(raw, f"{at}.content[{j}]", notes)) is not None
        ]
        return UserMessage(content=parts)
    if role in ("system", "developer"):
        text: str | list[TextPart] = content if isinstance(content, str) else []
        if isinstance(text, list):
            for j, part in enumerate(_part_list(content, at)):
                if part.get("type") in TEXT_PARTS:
                    text.append(TextPart(text=_text(part, "text", f"{at}.content[{j}]", True)))
                else:
                    notes.append(f"{at}.content[{j}] ({part.get('type')})")
        cls = SystemMessage if role == "system" else DeveloperMessage
        return cls(content=text)
    if role is None:
        raise missing(f"{at}.role")
    raise bad_request(
        f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and "
        "'developer'.",
        param=f"{at}.role",
    )


def _user_part(part: Json, at: str, notes: list[str]) -> Any:
    kind = part.get("type")
    if kind in TEXT_PARTS:
        return TextPart(text=_text(part, "text", at, empty=True))
    if kind == "input_image":
        url = part.get("image_url")
        if url is None and isinstance(part.get("file_id"), str):
            notes.append(f"{at} (input_image file_id)")
            return None
        if not isinstance(url, str) or not url:
            raise missing(f"{at}.image_url") if url is None else invalid(f"{at}.image_url")
        image = ImageURL(url=url)
        detail = part.get("detail")
        if detail is not None:
            if detail not in IMAGE_DETAILS:
                raise invalid(f"{at}.detail", "expected 'auto', 'low', 'high' or 'original'")
            image.detail = IMAGE_DETAILS[detail]
        return ImagePart(image_url=image)
    if kind == "input_file":
        return _file_part(part, at, notes)
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict):
            raise missing(f"{at}.input_audio")
        data = _text(audio, "data", f"{at}.input_audio")
        fmt = _text(audio, "format", f"{at}.input_audio")
        return AudioPart(input_audio=InputAudio(data=data, format=fmt))
    if not isinstance(kind, str):
        raise missing(f"{at}.type")
    notes.append(f"{at} ({kind})")
    return None


def _file_part(part: Json, at: str, notes: list[str]) -> FilePart | None:
    ref = FileRef()
    if isinstance(filename := part.get("filename"), str):
        ref.filename = filename
    if isinstance(data := part.get("file_data"), str) and data:
        ref.file_data = data
        return FilePart(file=ref)
    if isinstance(file_id := part.get("file_id"), str) and file_id:
        notes.append(f"{at} (input_file file_id)")  # an OpenAI upload: other providers lack it
        ref.file_id = file_id
        return FilePart(file=ref)
    if isinstance(part.get("file_url"), str):
        notes.append(f"{at} (input_file file_url)")
        return None
    raise missing(f"{at}.file_data")


def _tool_output(item: Json, at: str, notes: list[str]) -> ToolMessage:
    call_id = _text(item, "call_id", at)
    output = item.get("output")
    if isinstance(output, str):
        return ToolMessage(content=output, tool_call_id=call_id)
    if not isinstance(output, list):
        raise missing(f"{at}.output") if output is None else invalid(f"{at}.output")
    parts: list[TextPart] = []
    for k, part in enumerate(output):
        if not isinstance(part, dict):
            raise invalid(f"{at}.output[{k}]", "expected an object")
        if part.get("type") in TEXT_PARTS:
            parts.append(TextPart(text=_text(part, "text", f"{at}.output[{k}]", empty=True)))
        else:
            notes.append(f"{at}.output[{k}] ({part.get('type')})")
    return ToolMessage(content=parts if parts else "", tool_call_id=call_id)


def _part_list(content: Any, at: str) -> list[Json]:
    if content is None:
        raise missing(f"{at}.content")
    if not isinstance(content, list):
        raise invalid(f"{at}.content", "expected a string or an array of content parts")
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise invalid(f"{at}.content[{j}]", "expected an object")
    return content


def _text(obj: Json, name: str, at: str, empty: bool = False) -> str:
    value = obj.get(name)
    if isinstance(value, str) and (empty or value):
        return value
    if value is None:
        raise missing(f"{at}.{name}")
    raise invalid(f"{at}.{name}", "expected a string" if empty else "expected a non-empty string")


def listed_item(item: Any, item_id: str) -> Any:
    """An input item as the API lists it (`GET /v1/responses/{id}/input_items`): typed, with
    an id and a status, a message's plain-string content as one text part; the "easy" forms
    clients send would break SDKs that read the listed item's parts."""
    if not isinstance(item, dict):
        return item
    listed = {**item, "id": item.get("id") or item_id}
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "message":
        listed["type"] = "message"
        if isinstance(content := item.get("content"), str):
            assistant = item.get("role") == "assistant"
            part = _output_text(content) if assistant else {"type": "input_text", "text": content}
            listed["content"] = [part]
    if kind in _WITH_STATUS:
        listed.setdefault("status", "completed")
    return listed


_WITH_STATUS = frozenset({"message", "function_call", "function_call_output", "custom_tool_call"})


def _output_text(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": []}


def missing(param: str) -> GatewayError:
    return bad_request(
        f"Missing required parameter: '{param}'.", param=param, code=ErrorCode.MISSING_PARAMETER
    )


def invalid(param: str, why: str = "expected a non-empty string") -> GatewayError:
    return bad_request(f"Invalid value for '{param}': {why}.", param=param)
