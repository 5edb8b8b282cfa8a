"""OpenAI chat request -> Anthropic Messages request body.

Parameters fall in three groups, kept as data below: mapped (`_SAMPLING`, `_TOOL_CHOICES`,
max tokens, `user`), refused with `unsupported` because dropping them would change what the
client gets back (`UNSUPPORTED`), and dropped because they only tune an answer Anthropic
gives anyway (`DROPPED`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perpetuo.providers.assistant_turns import (
    arguments_object,
    assistant_text,
    function_calls,
    signed_thinking,
)
from perpetuo.providers.base import Json, data_url_parts, unsupported
from perpetuo.schema.chat import (
    AssistantMessage,
    ChatCompletionRequest,
    DeveloperMessage,
    FilePart,
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
from perpetuo.schema.reasoning import FOREIGN_KINDS

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI clients often omit it
MAX_TEMPERATURE = 1.0  # Anthropic's range is 0..1 where OpenAI's is 0..2
# The forced tool that carries response_format answers. Namespaced and reserved, because the
# response side recognises it by name alone.
JSON_TOOL = "perpetuo_json_response"
JSON_TOOL_DESCRIPTION = "Give the final answer as JSON matching this input schema."

# OpenAI parameters Anthropic has no counterpart for; they do not change the answer's shape.
DROPPED = frozenset(
    {
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "store",
        "metadata",  # OpenAI's stored-completion tags, not Anthropic's metadata.user_id
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "verbosity",
        "prediction",
        "stream_options",  # usage is always reported on Anthropic streams
    }
)

# Asked for, but not something Anthropic can give: another deployment may.
UNSUPPORTED: dict[str, Callable[[Any], bool]] = {
    "n": lambda n: n > 1,
    "logprobs": lambda on: on is True,
    "top_logprobs": lambda k: k > 0,
    "audio": lambda _: True,
    "modalities": lambda kinds: any(kind != "text" for kind in kinds),
    "web_search_options": lambda _: True,
    "functions": lambda _: True,  # the legacy API: clients would expect `function_call` back
    "function_call": lambda _: True,
}

# Sampling parameters: OpenAI name -> (Anthropic name, conversion).
_SAMPLING: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "temperature": ("temperature", lambda t: min(t, MAX_TEMPERATURE)),
    "top_p": ("top_p", lambda p: p),
    "stop": ("stop_sequences", lambda s: [s] if isinstance(s, str) else list(s)),
}

_TOOL_CHOICES: dict[str, Json] = {
    "auto": {"type": "auto"},
    "required": {"type": "any"},
    "none": {"type": "none"},
}

MAPPED = frozenset(
    {"model", "messages", "stream", "max_tokens", "max_completion_tokens", "user"}
    | {"reasoning_effort"}
    | {"tools", "tool_choice", "parallel_tool_calls", "response_format"}
    | set(_SAMPLING)
)


def translate_request(request: ChatCompletionRequest, model: str, extras: Json) -> Json:
    """The Messages API body for `request`; an UNSUPPORTED UpstreamError for what it cannot say."""
    for name, refuses in UNSUPPORTED.items():
        value = getattr(request, name)
        if is_set(value) and refuses(value):
            raise unsupported(f"`{name}` is not supported by Anthropic deployments", name)
    system, turns = translate_messages(request.messages)
    body: Json = {
        "model": model,
        "max_tokens": request.output_token_limit or DEFAULT_MAX_TOKENS,
        "messages": turns,
    }
    if system:
        body["system"] = system
    for name, (target, convert) in _SAMPLING.items():
        value = getattr(request, name)
        if is_set(value):
            body[target] = convert(value)
    if is_set(request.user):
        body["metadata"] = {"user_id": request.user}
    body.update(translate_tools(request, extras))
    if request.is_stream:
        body["stream"] = True
    if "thinking" not in extras:
        _thinking_for_effort(body, request)
    body.update(extras)  # alias-allowed Anthropic parameters (top_k, thinking, ...) verbatim
    return body


# reasoning_effort -> extended thinking's budget_tokens ("minimal" and "none": no thinking).
THINKING_BUDGETS = {"low": 2048, "medium": 8192, "high": 24576}
MIN_THINKING_BUDGET = 1024  # Anthropic's minimum


def _thinking_for_effort(body: Json, request: ChatCompletionRequest) -> None:
    """Extended thinking for a reasoning_effort, within Anthropic's rules: the budget stays
    below max_tokens (raised by the budget when the client set no limit), temperature and
    top_k are left out, and forced tool use (which thinking forbids) wins over thinking."""
    budget = THINKING_BUDGETS.get(request.reasoning_effort)  # type: ignore[arg-type]
    choice = body.get("tool_choice") or {}
    if budget is None or choice.get("type") in ("any", "tool") or _continues_unthought(body):
        return
    if request.output_token_limit is None:
        body["max_tokens"] = DEFAULT_MAX_TOKENS + budget
    budget = min(budget, body["max_tokens"] - 1)
    if budget < MIN_THINKING_BUDGET:
        return
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    body.pop("temperature", None)
    body.pop("top_k", None)
    if body.get("top_p", 1.0) < 0.95:
        body.pop("top_p")


def _continues_unthought(body: Json) -> bool:
    """Does this request answer tool calls of a turn that opened without thinking (one
    another provider served)? A tool-use loop is one assistant turn with one thinking
    setting, and Anthropic refuses thinking that starts in the middle of it."""
    turns = body["messages"]
    if len(turns) < 2 or turns[-2]["role"] != "assistant":
        return False
    if not any(block["type"] == "tool_result" for block in turns[-1]["content"]):
        return False
    return turns[-2]["content"][0]["type"] not in FOREIGN_KINDS


# --- messages ------------------------------------------------------------------------------


def translate_messages(messages: list[Message]) -> tuple[str, list[Json]]:
    """(system prompt, alternating user/assistant turns)."""
    system: list[str] = []
    turns: list[Json] = []
    for i, message in enumerate(messages):
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.append(text_of(message.content))
        elif isinstance(message, UserMessage):
            _add_turn(turns, "user", _user_blocks(message, i))
        elif isinstance(message, AssistantMessage):
            _add_turn(turns, "assistant", _assistant_blocks(message, i))
        elif isinstance(message, ToolMessage):
            _add_turn(turns, "user", [_tool_result(message)])
        else:
            raise unsupported("legacy `function` messages are not supported; use tools", "messages")
    if not turns or turns[0]["role"] != "user":
        raise unsupported("Anthropic needs a user message before any assistant turn", "messages")
    _finish_turns(turns)
    return "\n\n".join(s for s in system if s), turns


def _add_turn(turns: list[Json], role: str, blocks: list[Json]) -> None:
    """Anthropic wants strict alternation: consecutive same-role messages become one turn."""
    if not blocks:
        return  # an empty message says nothing, and Anthropic rejects empty content
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _finish_turns(turns: list[Json]) -> None:
    for turn in turns:
        if turn["role"] == "user":
            # tool_result blocks must open the turn that answers the tool calls.
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    last = turns[-1]
    if last["role"] == "assistant" and last["content"][-1]["type"] == "text":
        # A trailing assistant turn is a prefill, which may not end in whitespace.
        last["content"][-1]["text"] = last["content"][-1]["text"].rstrip()


def _text_block(text: str) -> list[Json]:
    return [{"type": "text", "text": text}] if text.strip() else []


def _user_blocks(message: UserMessage, index: int) -> list[Json]:
    if isinstance(message.content, str):
        return _text_block(message.content)
    blocks: list[Json] = []
    for j, part in enumerate(message.content):
        where = f"messages[{index}].content[{j}]"
        if isinstance(part, TextPart):
            blocks.extend(_text_block(part.text))
        elif isinstance(part, ImagePart):
            blocks.append(_image_block(part.image_url.url, where))
        elif isinstance(part, FilePart):
            blocks.append(_document_block(part, where))
        else:
            raise unsupported(f"`{where}`: audio input is not supported by Anthropic", where)
    return blocks


def _image_block(url: str, where: str) -> Json:
    if parts := data_url_parts(url):
        media_type, data = parts
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise unsupported(f"`{where}`: images must be data: or http(s) URLs", where)


def _document_block(part: FilePart, where: str) -> Json:
    file = part.file
    parts = data_url_parts(file.file_data) if isinstance(file.file_data, str) else None
    if parts is None or parts[0] != "application/pdf":
        raise unsupported(f"`{where}`: only inline PDF files (data: URLs) are supported", where)
    source = {"type": "base64", "media_type": parts[0], "data": parts[1]}
    return {"type": "document", "source": source}


def _assistant_blocks(message: AssistantMessage, index: int) -> list[Json]:
    blocks = [*signed_thinking(message.thinking_blocks), *_text_block(assistant_text(message))]
    for call, where in function_calls(message, index):
        arguments = arguments_object(
            call.function.arguments, f"{where}.function.arguments", "Anthropic"
        )
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments}
        )
    return blocks


def _tool_result(message: ToolMessage) -> Json:
    block: Json = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    if text := text_of(message.content):
        block["content"] = text
    return block


# --- tools and response formats ------------------------------------------------------------


def translate_tools(request: ChatCompletionRequest, extras: Json) -> Json:
    """`tools` and `tool_choice`, including the forced JSON tool for response_format."""
    tools = [_tool(tool, i) for i, tool in enumerate(request.tools or ())]
    choice = _tool_choice(request.tool_choice)
    if any(tool["name"] == JSON_TOOL for tool in tools):
        raise unsupported(f"the tool name `{JSON_TOOL}` is reserved by the gateway", "tools")
    json_tool = _json_tool(request, extras)
    if json_tool is not None:
        if not tools or (choice and choice["type"] == "none"):
            tools, choice = [], {"type": "tool", "name": JSON_TOOL}
        elif choice is None or choice["type"] == "auto":
            choice = {"type": "any"}  # call a client tool, or answer through the JSON tool
        tools.append(json_tool)
    if not tools:
        return {}
    if request.parallel_tool_calls is False and (choice or {}).get("type") != "none":
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    return {"tools": tools, "tool_choice": choice} if choice else {"tools": tools}


def _tool(tool: Any, index: int) -> Json:
    if not isinstance(tool, FunctionTool):
        raise unsupported(f"`tools[{index}]`: only function tools are supported", "tools")
    fn = tool.function
    out: Json = {"name": fn.name}
    if is_set(fn.description):
        out["description"] = fn.description
    # Anthropic requires a schema; OpenAI allows a tool without parameters.
    out["input_schema"] = fn.parameters if is_set(fn.parameters) else _empty_schema()
    return out


def _empty_schema() -> Json:
    return {"type": "object", "properties": {}}


def _tool_choice(choice: Any) -> Json | None:
    if not is_set(choice):
        return None
    if isinstance(choice, str):
        return dict(_TOOL_CHOICES[choice])
    name = (choice.get("function") or {}).get("name")
    if choice.get("type") == "function" and isinstance(name, str):
        return {"type": "tool", "name": name}
    raise unsupported("this `tool_choice` form is not supported by Anthropic", "tool_choice")


def _json_tool(request: ChatCompletionRequest, extras: Json) -> Json | None:
    fmt = request.response_format
    if isinstance(fmt, JsonSchemaResponseFormat):
        spec = fmt.json_schema
        schema = spec.schema if is_set(spec.schema) else {"type": "object"}
        description = spec.description if is_set(spec.description) else JSON_TOOL_DESCRIPTION
    elif isinstance(fmt, JsonObjectFormat):
        schema, description = {"type": "object"}, JSON_TOOL_DESCRIPTION
    else:
        return None
    thinking = extras.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        # Anthropic refuses forced tool use while extended thinking is on.
        raise unsupported(
            "`response_format` cannot be combined with extended thinking on Anthropic",
            "response_format",
        )
    return {"name": JSON_TOOL, "description": description, "input_schema": schema}
