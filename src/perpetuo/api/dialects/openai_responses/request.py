"""`POST /v1/responses` bodies -> DialectRequest (the client's body, its chat form, and what
only an OpenAI Responses deployment can serve).

Everything a client may send is accepted and kept in `raw`. What has a meaning for chat is
mapped: input items (items.py), instructions, function and custom tools, tool_choice,
text.format (flat json_schema) and verbosity, reasoning.effort, max_output_tokens, sampling,
user, prompt caching, service tier. State kept at OpenAI (conversation, stored prompts,
background runs) and built-in tools are named in `native_only`. `previous_response_id` is
left to the caller, which rebuilds the earlier turns with `items_to_messages`.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from perpetuo.api.dialects.base import DialectRequest
from perpetuo.api.dialects.openai_responses.items import invalid as _invalid
from perpetuo.api.dialects.openai_responses.items import items_to_messages
from perpetuo.api.dialects.openai_responses.items import missing as _missing
from perpetuo.api.ingress import decode_json_error
from perpetuo.schema.chat import (
    ChatCompletionRequest,
    CustomTool,
    FunctionDefinition,
    FunctionTool,
    JsonObjectFormat,
    JsonSchemaFormat,
    JsonSchemaResponseFormat,
    ResponseFormat,
    StreamOptions,
    TextFormat,
    Tool,
)
from perpetuo.schema.errors import ErrorCode, bad_request

__all__ = ["decode", "items_to_messages"]

Json = dict[str, Any]

_decoder = msgspec.json.Decoder()
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_CHOICES = ("auto", "none", "required")
# Parameters chat takes under the same name and meaning.
_SAME_NAMES = (
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "service_tier",
    "prompt_cache_retention",
)
_MAX_TOKENS = 100_000_000  # as the chat schema: no model answers with more


def decode(body: bytes) -> DialectRequest:
    try:
        data = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise decode_json_error(exc) from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code=ErrorCode.INVALID_JSON)
    notes: list[str] = []
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise _missing("model") if model is None else _invalid("model", "expected a string")
    messages = items_to_messages(_input(data), _instructions(data), native_only=notes)
    chat = ChatCompletionRequest(model=model, messages=messages)
    _sampling(data, chat)
    _identity(data, chat)
    _tools(data, chat, notes)
    _text_config(data, chat)
    _reasoning(data, chat)
    for name in ("conversation", "prompt"):  # server-side state only OpenAI holds
        if data.get(name) is not None:
            notes.append(name)
    if data.get("background") is True:
        notes.append("background")
    return DialectRequest(raw=data, chat=chat, native_only=notes)


def _instructions(data: Json) -> str | None:
    value = data.get("instructions")
    if value is not None and not isinstance(value, str):
        raise _invalid("instructions", "expected a string")
    return value


def _input(data: Json) -> list[Any]:
    value = data.get("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if isinstance(value, list):
        return value
    if value is not None:
        raise _invalid("input", "expected a string or an array of input items")
    if any(data.get(name) is not None for name in ("previous_response_id", "conversation")):
        return []  # the turns live in stored state the caller resolves
    if data.get("prompt") is not None or data.get("instructions"):
        return []
    raise _missing("input")


def _sampling(data: Json, chat: ChatCompletionRequest) -> None:
    stream = _typed(data, "stream", bool)
    if stream:
        chat.stream = True
        chat.stream_options = StreamOptions(include_usage=True)  # metering needs usage
    elif stream is False:
        chat.stream = False
    for name, high in (("temperature", 2.0), ("top_p", 1.0)):
        value = data.get(name)
        if value is None:
            continue
        if type(value) not in (int, float) or not 0 <= value <= high:
            raise _invalid(name, f"expected a number between 0 and {high:g}")
        setattr(chat, name, value)
    limit = data.get("max_output_tokens")
    if limit is not None:
        if type(limit) is not int or not 1 <= limit <= _MAX_TOKENS:
            raise _invalid("max_output_tokens", "expected a positive integer")
        chat.max_completion_tokens = limit
    parallel = _typed(data, "parallel_tool_calls", bool)
    if parallel is not None:
        chat.parallel_tool_calls = parallel
    include = _typed(data, "include", list) or []
    top = data.get("top_logprobs")
    if "message.output_text.logprobs" in include:
        chat.logprobs = True
        if top is not None:
            if type(top) is not int or not 0 <= top <= 20:
                raise _invalid("top_logprobs", "expected an integer between 0 and 20")
            chat.top_logprobs = top


def _identity(data: Json, chat: ChatCompletionRequest) -> None:
    for name in _SAME_NAMES:
        if (value := _typed(data, name, str)) is not None:
            setattr(chat, name, value)
    _typed(data, "metadata", dict)  # echoed in the answer; chat takes it only with store
    _typed(data, "previous_response_id", str)
    _typed(data, "store", bool)


def _tools(data: Json, chat: ChatCompletionRequest, notes: list[str]) -> None:
    tools = _typed(data, "tools", list)
    if tools:
        chat.tools = [tool for i, raw in enumerate(tools) if (tool := _tool(raw, i, notes))]
    choice = data.get("tool_choice")
    if choice is None:
        return
    if isinstance(choice, str):
        if choice not in _CHOICES:
            raise _invalid("tool_choice", "expected 'auto', 'none', 'required' or an object")
        chat.tool_choice = choice
    elif isinstance(choice, dict):
        if (mapped := _tool_choice(choice, notes)) is not None:
            chat.tool_choice = mapped
    else:
        raise _invalid("tool_choice", "expected a string or an object")


def _tool(raw: Any, i: int, notes: list[str]) -> Tool | None:
    at = f"tools[{i}]"
    if not isinstance(raw, dict):
        raise _invalid(at, "expected an object")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise _missing(f"{at}.type")
    if kind == "function":
        definition = FunctionDefinition(name=_tool_name(raw, at))
        if (description := raw.get("description")) is not None:
            definition.description = _string(description, f"{at}.description")
        parameters = raw.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise _invalid(f"{at}.parameters", "expected a JSON schema object")
            definition.parameters = parameters
        if (strict := raw.get("strict")) is not None:
            if not isinstance(strict, bool):
                raise _invalid(f"{at}.strict", "expected a boolean")
            definition.strict = strict
        return FunctionTool(function=definition)
    fmt = raw.get("format")
    if kind == "custom" and not (isinstance(fmt, dict) and fmt.get("type") == "grammar"):
        custom: Json = {"name": _tool_name(raw, at)}
        custom.update({k: raw[k] for k in ("description", "format") if raw.get(k) is not None})
        return CustomTool(custom=custom)
    notes.append(f"{at} (custom grammar)" if kind == "custom" else f"{at} ({kind})")
    return None


def _tool_choice(choice: Json, notes: list[str]) -> Any:
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise _missing("tool_choice.name") if name is None else _invalid("tool_choice.name")
        return {"type": kind, kind: {"name": name}}
    if kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise _invalid("tool_choice.mode", "expected 'auto' or 'required'")
        allowed = []
        for k, tool in enumerate(_typed(choice, "tools", list, "tool_choice.tools") or []):
            tool_kind = tool.get("type") if isinstance(tool, dict) else None
            if tool_kind in ("function", "custom") and isinstance(tool.get("name"), str):
                allowed.append({"type": tool_kind, tool_kind: {"name": tool["name"]}})
            else:
                notes.append(f"tool_choice.tools[{k}] ({tool_kind})")
        return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": allowed}}
    if not isinstance(kind, str):
        raise _missing("tool_choice.type")
    notes.append(f"tool_choice ({kind})")
    return None


def _text_config(data: Json, chat: ChatCompletionRequest) -> None:
    text = _typed(data, "text", dict)
    if not text:
        return
    if (verbosity := text.get("verbosity")) is not None:
        if verbosity not in ("low", "medium", "high"):
            raise _invalid("text.verbosity", "expected 'low', 'medium' or 'high'")
        chat.verbosity = verbosity
    fmt = text.get("format")
    if fmt is not None:
        if not isinstance(fmt, dict):
            raise _invalid("text.format", "expected an object")
        chat.response_format = _response_format(fmt)


def _response_format(fmt: Json) -> ResponseFormat:
    kind = fmt.get("type")
    if kind == "text":
        return TextFormat()
    if kind == "json_object":
        return JsonObjectFormat()
    if kind != "json_schema":
        raise _invalid("text.format.type", "expected 'text', 'json_object' or 'json_schema'")
    name = fmt.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 64:
        raise _missing("text.format.name") if name is None else _invalid("text.format.name")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise _missing("text.format.schema") if schema is None else _invalid("text.format.schema")
    spec = JsonSchemaFormat(name=name, schema=schema)
    if (strict := fmt.get("strict")) is not None:
        if not isinstance(strict, bool):
            raise _invalid("text.format.strict", "expected a boolean")
        spec.strict = strict
    if (description := fmt.get("description")) is not None:
        spec.description = _string(description, "text.format.description")
    return JsonSchemaResponseFormat(json_schema=spec)


def _reasoning(data: Json, chat: ChatCompletionRequest) -> None:
    reasoning = _typed(data, "reasoning", dict)
    if reasoning and (effort := reasoning.get("effort")) is not None:
        chat.reasoning_effort = _string(effort, "reasoning.effort")
    # reasoning.summary stays in raw: the answer's encoder reads it from there.


def _tool_name(raw: Json, at: str) -> str:
    name = raw.get("name")
    if name is None:
        raise _missing(f"{at}.name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise _invalid(f"{at}.name", "expected 1 to 64 letters, digits, '_' or '-'")
    return name


def _typed(data: Json, name: str, kind: type, param: str | None = None) -> Any:
    """data[name] when it is of `kind` (None when absent or null); 400 otherwise."""
    value = data.get(name)
    if value is None or isinstance(value, kind):
        return value
    raise _invalid(param or name, f"expected {_KIND_NAMES[kind]}")


_KIND_NAMES = {bool: "a boolean", str: "a string", list: "an array", dict: "an object"}


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _invalid(param, "expected a string")
    return value
