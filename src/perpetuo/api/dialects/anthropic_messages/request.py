"""A Messages-API request body (`POST /v1/messages`) -> DialectRequest.

Validated as Anthropic validates it (400 invalid_request_error naming the field); unknown
top-level fields (`context_management`, `container`, `speed`, ...) are accepted and stay in
`raw` for Anthropic deployments. The chat form (IR) gets what has a meaning there:

  system, messages      -> system/user/assistant/tool messages (content.py)
  tools (custom)        -> function tools, input_schema as parameters; server tools
                           (web_search_*, bash_*, text_editor_*, code_execution_*, ...) and
                           `mcp_servers` -> native_only
  tool_choice           -> auto / "required" (any) / a named function (tool) / "none";
                           disable_parallel_tool_use -> parallel_tool_calls false
  thinking              -> reasoning_effort from budget_tokens: low below 4096, medium below
                           16384, high from there; disabled, adaptive or other types: unset
  stop_sequences        -> stop (at most 4 there: more -> native_only)
  temperature, top_p    -> as is; top_k has no chat counterpart and only reaches Anthropic
  metadata.user_id      -> user
  max_tokens, stream    -> max_tokens, stream (+ stream_options.include_usage)
  output_config.format  -> response_format json_schema
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from perpetuo.api.dialects.anthropic_messages.content import (
    Decoded,
    decode_messages,
    decode_system,
    invalid,
)
from perpetuo.api.dialects.base import DialectRequest
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.errors import ErrorCode, GatewayError, bad_request

Json = dict[str, Any]

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what chat form's function names allow
MAX_STOP_SEQUENCES = 4  # chat form's limit on `stop`
MIN_THINKING_BUDGET = 1024
# budget_tokens -> reasoning_effort: the first row whose floor the budget reaches.
EFFORT_BY_BUDGET = ((16384, "high"), (4096, "medium"), (0, "low"))
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
JSON_FORMAT_NAME = "output"  # chat form names a json_schema format; Messages does not

# Chat-form fields a validation error may name -> the Messages-API field they came from.
_PARAMS = {
    "model": "model",
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop": "stop_sequences",
    "user": "metadata.user_id",
    "tool_choice": "tool_choice",
    "reasoning_effort": "thinking",
    "response_format": "output_config.format",
}
_LOCATION = re.compile(r" - at `\$\.(?P<field>\w+)(?:\[(?P<index>\d+)\])?[^`]*`$")
_decoder = msgspec.json.Decoder()


def decode(body: bytes) -> DialectRequest:
    """Validate a Messages request and give its chat form; GatewayError 400 when invalid."""
    return _decode(_object(body), counting=False)


def decode_count_tokens(body: bytes) -> DialectRequest:
    """A `POST /v1/messages/count_tokens` body: a Messages request without max_tokens."""
    return _decode(_object(body), counting=True)


def _object(body: bytes) -> Json:
    try:
        data = _decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):  # invalid UTF-8 is the latter
        raise bad_request(
            "The request body is not valid JSON.", code=ErrorCode.INVALID_JSON
        ) from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code=ErrorCode.INVALID_JSON)
    return data


def _decode(raw: Json, *, counting: bool) -> DialectRequest:
    for name in ("model", "messages") if counting else ("model", "messages", "max_tokens"):
        if name not in raw:
            raise bad_request(
                f"{name}: Field required", param=name, code=ErrorCode.MISSING_PARAMETER
            )
    native: list[str] = []
    ir: Json = {"model": _model(raw["model"])}
    max_tokens = None if counting else _max_tokens(raw["max_tokens"])
    if max_tokens is not None:
        ir["max_tokens"] = max_tokens
    out = Decoded(native_only=native)
    decode_system(raw.get("system"), out)
    decode_messages(raw["messages"], out)
    tools, names, tool_where = _tools(raw.get("tools"), native)
    if tools:
        ir["tools"] = tools
    ir.update(_tool_choice(raw.get("tool_choice"), names))
    if effort := _reasoning_effort(raw.get("thinking"), max_tokens):
        ir["reasoning_effort"] = effort
    ir.update(_sampling(raw, native))
    if (user := _user(raw.get("metadata"))) is not None:
        ir["user"] = user
    if not counting and (stream := raw.get("stream")) is not None:
        if not isinstance(stream, bool):
            raise invalid("stream", "Input should be a valid boolean")
        if stream:
            ir["stream"] = True
            ir["stream_options"] = {"include_usage": True}
    if (fmt := _response_format(raw.get("output_config"))) is not None:
        ir["response_format"] = fmt
    if raw.get("mcp_servers"):
        native.append("mcp_servers (MCP connector)")
    # A turn made only of blocks chat form cannot hold leaves nothing to put in the chat
    # form; such a request is served natively, and the empty turn only keeps the form valid.
    ir["messages"] = out.messages or [{"role": "user", "content": ""}]
    where = {"messages": out.where, "tools": tool_where}
    return DialectRequest(raw=raw, chat=_chat_form(ir, where), native_only=native)


def _model(model: Any) -> str:
    if not isinstance(model, str) or not model:
        raise invalid("model", "Input should be a non-empty string")
    return model


def _max_tokens(value: Any) -> int:
    if type(value) is not int:  # bool is an int subclass and is not a count
        raise invalid("max_tokens", "Input should be a valid integer")
    if value < 1:
        raise invalid("max_tokens", "Input should be greater than or equal to 1")
    return value


# --- tools -----------------------------------------------------------------------------------


def _tools(tools: Any, native: list[str]) -> tuple[list[Json], set[str], list[str]]:
    """(function tools for the chat form, the name of every tool, custom or server, and the
    location of each function tool in `tools`)."""
    if tools is None:
        return [], set(), []
    if not isinstance(tools, list):
        raise invalid("tools", "Input should be a valid list")
    out: list[Json] = []
    names: set[str] = set()
    where_of: list[str] = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid(where, "Input should be a valid dictionary")
        name = tool.get("name")
        if isinstance(name, str):
            names.add(name)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            native.append(f"{where} ({kind})")  # a server or client tool Anthropic runs
            continue
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise invalid(f"{where}.name", "String should match pattern '^[a-zA-Z0-9_-]{1,64}$'")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise invalid(f"{where}.input_schema", "Input should be a valid dictionary")
        function: Json = {"name": name, "parameters": schema}
        description = tool.get("description")
        if description is not None:
            if not isinstance(description, str):
                raise invalid(f"{where}.description", "Input should be a valid string")
            function["description"] = description
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
        where_of.append(where)
    return out, names, where_of


def _tool_choice(choice: Any, names: set[str]) -> Json:
    if choice is None:
        return {}
    if not isinstance(choice, dict):
        raise invalid("tool_choice", "Input should be a valid dictionary")
    kind = choice.get("type")
    ir: Json = {}
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid("tool_choice.name", "Field required")
        if name not in names:
            raise invalid("tool_choice.name", f"Tool '{name}' not found in tools")
        ir["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif kind in TOOL_CHOICES:
        ir["tool_choice"] = TOOL_CHOICES[kind]
    else:
        raise invalid("tool_choice.type", "Input tag does not match 'auto', 'any', 'tool', 'none'")
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None and not isinstance(disable, bool):
        raise invalid("tool_choice.disable_parallel_tool_use", "Input should be a valid boolean")
    if disable and kind != "none":
        ir["parallel_tool_calls"] = False
    return ir


# --- thinking, sampling, metadata, output format ---------------------------------------------


def _reasoning_effort(thinking: Any, max_tokens: int | None) -> str | None:
    if thinking is None:
        return None
    if not isinstance(thinking, dict) or not isinstance(thinking.get("type"), str):
        raise invalid("thinking.type", "Field required")
    if thinking["type"] != "enabled":
        return None  # disabled, adaptive, or a kind newer than this gateway: nothing to map
    budget = thinking.get("budget_tokens")
    if type(budget) is not int:
        raise invalid("thinking.budget_tokens", "Input should be a valid integer")
    if budget < MIN_THINKING_BUDGET:
        raise invalid(
            "thinking.budget_tokens",
            f"Input should be greater than or equal to {MIN_THINKING_BUDGET}",
        )
    if max_tokens is not None and max_tokens <= budget:
        raise invalid("max_tokens", "max_tokens must be greater than thinking.budget_tokens")
    return next(effort for floor, effort in EFFORT_BY_BUDGET if budget >= floor)


def _sampling(raw: Json, native: list[str]) -> Json:
    ir: Json = {}
    for name in ("temperature", "top_p"):
        value = raw.get(name)
        if value is None:
            continue
        if type(value) not in (int, float) or not 0 <= value <= 1:
            raise invalid(name, "Input should be a number from 0 to 1")
        ir[name] = value
    top_k = raw.get("top_k")
    if top_k is not None and (type(top_k) is not int or top_k < 0):
        raise invalid("top_k", "Input should be a non-negative integer")
    stops = raw.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise invalid("stop_sequences", "Input should be a valid list of strings")
        if len(stops) > MAX_STOP_SEQUENCES:
            native.append(f"stop_sequences (more than {MAX_STOP_SEQUENCES})")
        elif stops:
            ir["stop"] = stops
    return ir


def _user(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise invalid("metadata", "Input should be a valid dictionary")
    for name in metadata:
        if name != "user_id":
            raise invalid(f"metadata.{name}", "Extra inputs are not permitted")
    user = metadata.get("user_id")
    if user is not None and not isinstance(user, str):
        raise invalid("metadata.user_id", "Input should be a valid string")
    return user


def _response_format(config: Any) -> Json | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        raise invalid("output_config", "Input should be a valid dictionary")
    fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise invalid("output_config.format.type", "Input should be 'json_schema'")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise invalid("output_config.format.schema", "Input should be a valid dictionary")
    return {"type": "json_schema", "json_schema": {"name": JSON_FORMAT_NAME, "schema": schema}}


# --- the chat form ---------------------------------------------------------------------------


def _chat_form(ir: Json, where: dict[str, list[str]]) -> ChatCompletionRequest:
    """Validate the built chat form; a failure names the Messages-API location it came from."""
    try:
        return msgspec.convert(ir, ChatCompletionRequest)
    except msgspec.ValidationError as exc:
        raise _located(str(exc), where) from None


def _located(text: str, where: dict[str, list[str]]) -> GatewayError:
    match = _LOCATION.search(text)
    detail = _LOCATION.sub("", text)
    param = None
    if match and match["index"] is not None and match["field"] in where:
        locations = where[match["field"]]
        index = int(match["index"])
        param = locations[index] if index < len(locations) else match["field"]
    elif match:
        param = _PARAMS.get(match["field"], match["field"])
    if param is None:
        return bad_request(f"Invalid request: {detail}")
    return invalid(param, detail)
