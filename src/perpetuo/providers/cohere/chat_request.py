"""OpenAI chat request -> Cohere v2 `/v2/chat` body.

Cohere's messages are OpenAI's roles with OpenAI-like content (text and image_url parts, tool
calls whose arguments are JSON strings, tool results by tool_call_id), so most of the work
is parameter names and ranges, kept as data below:
- mapped: max tokens, temperature, `top_p` -> `p` (Cohere takes 0.01..0.99), `stop` ->
  `stop_sequences`, seed, penalties (Cohere's range is 0..1: values are clamped into it),
  tools (`strict` on any function -> `strict_tools`), tool_choice (`required` -> REQUIRED,
  `none` -> NONE, a named function -> that one tool, REQUIRED), response_format (json_object,
  and json_schema as `json_object` with `json_schema`), reasoning_effort -> `thinking`;
- refused (another deployment may serve): n > 1, logprobs, audio, web search, file parts,
  the legacy functions API, and response_format with tools or documents (Cohere cannot);
- dropped: bookkeeping and hints with no Cohere counterpart (`user`, `store`, `logit_bias`,
  `parallel_tool_calls`, ...).
Alias-allowed extra parameters (`documents`, `citation_options`, `safety_mode`, `k`,
`priority`, `thinking`, ...) are sent verbatim. An earlier turn's reasoning_content goes
back as that turn's `tool_plan` when the turn called tools.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perpetuo.providers.assistant_turns import assistant_text, function_calls
from perpetuo.providers.base import Json, unsupported
from perpetuo.schema.chat import (
    AssistantMessage,
    ChatCompletionRequest,
    DeveloperMessage,
    FunctionTool,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaResponseFormat,
    Message,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
    is_set,
    text_of,
)

UNSUPPORTED: dict[str, Callable[[Any], bool]] = {
    "n": lambda n: n > 1,
    "logprobs": lambda on: on is True,
    "top_logprobs": lambda k: k > 0,
    "audio": lambda _: True,
    "modalities": lambda kinds: any(kind != "text" for kind in kinds),
    "web_search_options": lambda _: True,
    "functions": lambda _: True,
    "function_call": lambda _: True,
}


def _clamp(low: float, high: float) -> Callable[[float], float]:
    return lambda value: min(max(value, low), high)


# OpenAI name -> (Cohere name, conversion).
_SAMPLING: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "temperature": ("temperature", lambda t: t),
    "top_p": ("p", _clamp(0.01, 0.99)),
    "stop": ("stop_sequences", lambda s: [s] if isinstance(s, str) else list(s)),
    "seed": ("seed", lambda s: s),
    "frequency_penalty": ("frequency_penalty", _clamp(0.0, 1.0)),
    "presence_penalty": ("presence_penalty", _clamp(0.0, 1.0)),
}

_TOOL_CHOICES = {"required": "REQUIRED", "none": "NONE"}

# reasoning_effort -> Cohere's thinking token budget ("none" and "minimal": no thinking).
THINKING_BUDGETS = {"low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768}


def translate_request(request: ChatCompletionRequest, model: str, extras: Json) -> Json:
    for name, refuses in UNSUPPORTED.items():
        value = getattr(request, name)
        if is_set(value) and refuses(value):
            raise unsupported(f"`{name}` is not supported by Cohere deployments", name)
    body: Json = {"model": model, "messages": translate_messages(request.messages)}
    if (limit := request.output_token_limit) is not None:
        body["max_tokens"] = limit
    for name, (target, convert) in _SAMPLING.items():
        value = getattr(request, name)
        if is_set(value):
            body[target] = convert(value)
    body.update(_tools(request))
    if (fmt := _response_format(request)) is not None:
        if "tools" in body or "documents" in extras:
            raise unsupported(
                "`response_format` cannot be combined with tools or documents on Cohere",
                "response_format",
            )
        body["response_format"] = fmt
    effort = request.reasoning_effort
    if isinstance(effort, str) and "thinking" not in extras:
        budget = THINKING_BUDGETS.get(effort)
        body["thinking"] = (
            {"type": "enabled", "token_budget": budget} if budget else {"type": "disabled"}
        )
    if request.is_stream:
        body["stream"] = True
    body.update(extras)
    return body


def translate_messages(messages: list[Message]) -> list[Json]:
    out: list[Json] = []
    for index, message in enumerate(messages):
        if isinstance(message, SystemMessage | DeveloperMessage):
            out.append({"role": "system", "content": text_of(message.content)})
        elif isinstance(message, UserMessage):
            out.append({"role": "user", "content": _user_content(message, index)})
        elif isinstance(message, AssistantMessage):
            if (turn := _assistant(message, index)) is not None:
                out.append(turn)
        elif isinstance(message, ToolMessage):
            content = text_of(message.content)
            out.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": content})
        else:
            raise unsupported("legacy `function` messages are not supported; use tools", "messages")
    return out


def _user_content(message: UserMessage, index: int) -> str | list[Json]:
    if isinstance(message.content, str):
        return message.content
    parts: list[Json] = []
    for j, part in enumerate(message.content):
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            image: Json = {"url": part.image_url.url}
            if is_set(part.image_url.detail):
                image["detail"] = part.image_url.detail
            parts.append({"type": "image_url", "image_url": image})
        else:
            where = f"messages[{index}].content[{j}]"
            raise unsupported(f"`{where}`: Cohere takes text and images only", where)
    return parts


def _assistant(message: AssistantMessage, index: int) -> Json | None:
    text = assistant_text(message)
    turn: Json = {"role": "assistant"}
    calls = []
    for call, _ in function_calls(message, index):
        function = {"name": call.function.name, "arguments": call.function.arguments}
        calls.append({"id": call.id, "type": "function", "function": function})
    if calls:
        turn["tool_calls"] = calls
        if isinstance(message.reasoning_content, str) and message.reasoning_content:
            turn["tool_plan"] = message.reasoning_content
    if text:
        turn["content"] = text
    return turn if len(turn) > 1 else None  # Cohere refuses an empty assistant turn


def _tools(request: ChatCompletionRequest) -> Json:
    tools = [_tool(tool, i) for i, tool in enumerate(request.tools or ())]
    if not tools:
        return {}
    out: Json = {}
    choice = request.tool_choice
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        out["tool_choice"] = _TOOL_CHOICES[choice]
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        chosen = [t for t in tools if t["function"]["name"] == name]
        if choice.get("type") != "function" or not chosen:
            raise unsupported("this `tool_choice` form is not supported by Cohere", "tool_choice")
        tools, out["tool_choice"] = chosen, "REQUIRED"  # Cohere cannot name one tool
    out["tools"] = tools
    if any(isinstance(t, FunctionTool) and t.function.strict is True for t in request.tools or ()):
        out["strict_tools"] = True
    return out


def _tool(tool: Any, index: int) -> Json:
    if not isinstance(tool, FunctionTool):
        raise unsupported(f"`tools[{index}]`: only function tools are supported", "tools")
    fn = tool.function
    function: Json = {"name": fn.name}
    if is_set(fn.description):
        function["description"] = fn.description
    # Cohere requires a schema; OpenAI allows a tool without parameters.
    function["parameters"] = (
        fn.parameters if is_set(fn.parameters) else {"type": "object", "properties": {}}
    )
    return {"type": "function", "function": function}


def _response_format(request: ChatCompletionRequest) -> Json | None:
    fmt = request.response_format
    if isinstance(fmt, JsonSchemaResponseFormat):
        out: Json = {"type": "json_object"}
        if is_set(fmt.json_schema.schema):
            out["json_schema"] = fmt.json_schema.schema
        return out
    if isinstance(fmt, JsonObjectFormat):
        return {"type": "json_object"}
    return None
