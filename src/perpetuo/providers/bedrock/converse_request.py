"""OpenAI chat request -> Bedrock Converse request body (`/model/{id}/converse[-stream]`).

Converse is one format for every Bedrock chat model; the model is in the URL, not the body.
Choices worth knowing:
- system and developer messages become `system` text blocks; consecutive same-role turns
  are merged (Converse wants user/assistant alternation, starting with user); tool results
  become `toolResult` blocks that open the user turn answering the calls.
- Content blocks are keyed by kind (`{"text"}`, `{"image"}`, `{"toolUse"}`...). Images are
  sent as bytes (data: URLs) or S3 locations (`s3://` URLs); http(s) image URLs are refused,
  as Converse cannot fetch them. Inline files become `document` blocks (pdf, csv, doc(x),
  xls(x), html, txt, md). Audio input is refused.
- `max_tokens`, `temperature` (above 1 clamped to 1, every Bedrock chat model's maximum),
  `top_p` and `stop` go to `inferenceConfig`. Tools go to `toolConfig` with their JSON
  Schema as `inputSchema.json`; tool_choice auto/required/named map to auto/any/tool.
  tool_choice "none" leaves the tools out, unless earlier turns used them (Converse then
  requires `toolConfig`): the tools stay, without a choice.
- response_format (json_schema, json_object) is served as on Anthropic: a forced tool whose
  input schema is the client's schema (anthropic/request.py's JSON tool).
- Earlier turns' thinking blocks (Anthropic's, which Claude on Converse also makes) go back
  as `reasoningContent`, signatures intact.
- Refused (another deployment may serve): n > 1, logprobs, audio output, web search, the
  legacy functions API. Dropped: seed, penalties, logit_bias, user, metadata, store,
  service_tier, reasoning_effort (models that reason on Bedrock do so by themselves),
  parallel_tool_calls, prompt-cache hints and other bookkeeping.
- Alias-allowed extras: Converse's own top-level fields (guardrailConfig,
  additionalModelRequestFields, performanceConfig, requestMetadata, ...; snake_case
  accepted) go to the top level; anything else goes to `additionalModelRequestFields`, where
  the model's own parameters live (top_k, ...).
"""

from __future__ import annotations

import re
from typing import Any

from perpetuo.providers.anthropic.request import DROPPED as ANTHROPIC_DROPPED
from perpetuo.providers.anthropic.request import UNSUPPORTED, translate_tools
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
    ImagePart,
    Message,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
    is_set,
    text_of,
)

MAX_TEMPERATURE = 1.0
DROPPED = ANTHROPIC_DROPPED | {"user", "reasoning_effort", "parallel_tool_calls"}

# Converse's own request fields, for alias extras (snake_case accepted).
TOP_LEVEL_FIELDS = frozenset(
    {
        "guardrailConfig",
        "additionalModelRequestFields",
        "additionalModelResponseFieldPaths",
        "performanceConfig",
        "requestMetadata",
        "promptVariables",
        "serviceTier",
        "outputConfig",
    }
)

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
IMAGE_EXTENSIONS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "webp": "webp"}
DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
# Converse document names: letters, digits, single spaces, hyphens, parentheses, brackets.
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9\-()\[\] ]+")


def build_body(request: ChatCompletionRequest, extras: Json) -> Json:
    """The Converse body for `request`; an UNSUPPORTED UpstreamError for what it cannot say."""
    for name, refuses in UNSUPPORTED.items():
        value = getattr(request, name)
        if is_set(value) and refuses(value):
            raise unsupported(f"`{name}` is not supported by Bedrock deployments", name)
    system, messages = translate_messages(request.messages)
    body: Json = {"messages": messages}
    if system:
        body["system"] = system
    inference = _inference(request)
    if inference:
        body["inferenceConfig"] = inference
    tools = _tools(request, extras, body["messages"])
    if tools:
        body["toolConfig"] = tools
    _merge_extras(body, extras)
    return body


def _inference(request: ChatCompletionRequest) -> Json:
    config: Json = {}
    if (limit := request.output_token_limit) is not None:
        config["maxTokens"] = limit
    if is_set(request.temperature):
        config["temperature"] = min(request.temperature, MAX_TEMPERATURE)  # type: ignore[type-var]
    if is_set(request.top_p):
        config["topP"] = request.top_p
    if is_set(request.stop):
        stop = request.stop
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)  # type: ignore[arg-type]
    return config


# --- messages ------------------------------------------------------------------------------


def translate_messages(messages: list[Message]) -> tuple[list[Json], list[Json]]:
    """(system blocks, alternating user/assistant messages)."""
    system: list[Json] = []
    turns: list[Json] = []
    for i, message in enumerate(messages):
        if isinstance(message, SystemMessage | DeveloperMessage):
            if text := text_of(message.content).strip():
                system.append({"text": text})
        elif isinstance(message, UserMessage):
            _add_turn(turns, "user", _user_blocks(message, i))
        elif isinstance(message, AssistantMessage):
            _add_turn(turns, "assistant", _assistant_blocks(message, i))
        elif isinstance(message, ToolMessage):
            result = {"toolUseId": message.tool_call_id, "content": [{"text": _result(message)}]}
            _add_turn(turns, "user", [{"toolResult": result}])
        else:
            raise unsupported("legacy `function` messages are not supported; use tools", "messages")
    if not turns or turns[0]["role"] != "user":
        raise unsupported("Bedrock needs a user message before any assistant turn", "messages")
    for turn in turns:
        if turn["role"] == "user":  # the results of a turn's tool calls open the next turn
            turn["content"].sort(key=lambda block: "toolResult" not in block)
    last = turns[-1]["content"][-1]
    if turns[-1]["role"] == "assistant" and "text" in last:
        last["text"] = last["text"].rstrip()  # a prefill may not end in whitespace
    return system, turns


def _add_turn(turns: list[Json], role: str, blocks: list[Json]) -> None:
    if not blocks:
        return  # Converse rejects empty content
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _text(text: str) -> list[Json]:
    return [{"text": text}] if text.strip() else []


def _result(message: ToolMessage) -> str:
    return text_of(message.content) or "(no output)"


def _user_blocks(message: UserMessage, index: int) -> list[Json]:
    if isinstance(message.content, str):
        return _text(message.content)
    blocks: list[Json] = []
    for j, part in enumerate(message.content):
        where = f"messages[{index}].content[{j}]"
        if isinstance(part, TextPart):
            blocks.extend(_text(part.text))
        elif isinstance(part, ImagePart):
            blocks.append(image_from_url(part.image_url.url, where))
        elif isinstance(part, FilePart):
            blocks.append(_document(part, where, j))
        else:
            raise unsupported(f"`{where}`: audio input is not supported by Bedrock", where)
    return blocks


def image_from_url(url: str, where: str) -> Json:
    """A Converse image block from an OpenAI image URL (data: or s3://)."""
    if parts := data_url_parts(url):
        image_format = IMAGE_FORMATS.get(parts[0])
        if image_format is None:
            raise unsupported(
                f"`{where}`: image type {parts[0]!r} is not supported by Bedrock "
                "(png, jpeg, gif or webp)",
                where,
            )
        return {"image": {"format": image_format, "source": {"bytes": parts[1]}}}
    if url.startswith("s3://"):
        image_format = IMAGE_EXTENSIONS.get(url.rsplit(".", 1)[-1].lower())
        if image_format is None:
            raise unsupported(f"`{where}`: cannot tell the image format of {url[:80]}", where)
        return {"image": {"format": image_format, "source": {"s3Location": {"uri": url}}}}
    raise unsupported(
        f"`{where}`: Bedrock cannot fetch image URLs; send the image as a data: URL or an "
        "s3:// location",
        where,
    )


def _document(part: FilePart, where: str, index: int) -> Json:
    file = part.file
    parts = data_url_parts(file.file_data) if isinstance(file.file_data, str) else None
    if parts is None:
        raise unsupported(f"`{where}`: only inline files (data: URLs) are supported", where)
    doc_format = DOCUMENT_FORMATS.get(parts[0])
    if doc_format is None:
        raise unsupported(f"`{where}`: file type {parts[0]!r} is not supported by Bedrock", where)
    filename = file.filename if isinstance(file.filename, str) else None
    name = document_name(filename, index)
    return {"document": {"format": doc_format, "name": name, "source": {"bytes": parts[1]}}}


def document_name(filename: str | None, index: int) -> str:
    """A file name as Converse accepts document names (no dots, single spaces)."""
    stem = (filename or "").rsplit(".", 1)[0]
    cleaned = " ".join(_NAME_UNSAFE.sub("-", stem).split()).strip("-")
    return cleaned[:200] or f"document {index + 1}"


def _assistant_blocks(message: AssistantMessage, index: int) -> list[Json]:
    blocks = [*_reasoning(message.thinking_blocks), *_text(assistant_text(message))]
    for call, where in function_calls(message, index):
        arguments = arguments_object(
            call.function.arguments, f"{where}.function.arguments", "Bedrock"
        )
        blocks.append(
            {"toolUse": {"toolUseId": call.id, "name": call.function.name, "input": arguments}}
        )
    return blocks


def _reasoning(given: Any) -> list[Json]:
    """Earlier turns' signed thinking, replayed first in Converse's reasoning blocks."""
    blocks: list[Json] = []
    for block in signed_thinking(given):
        if block["type"] == "thinking":
            text = {"text": block.get("thinking", ""), "signature": block.get("signature", "")}
            blocks.append({"reasoningContent": {"reasoningText": text}})
        else:
            blocks.append({"reasoningContent": {"redactedContent": block.get("data", "")}})
    return blocks


# --- tools ---------------------------------------------------------------------------------


def _tools(request: ChatCompletionRequest, extras: Json, messages: list[Json]) -> Json | None:
    translated = translate_tools(request, extras)  # validates, adds the JSON tool
    tools = translated.get("tools") or []
    choice = translated.get("tool_choice") or {}
    used = any(
        "toolUse" in block or "toolResult" in block
        for message in messages
        for block in message["content"]
    )
    if choice.get("type") == "none":
        if not used:
            return None  # no tool may be called: Converse has no "none", so none are offered
        choice = {}
    if not tools:
        if used:
            raise unsupported(
                "Bedrock needs the tool definitions of a conversation that used tools", "tools"
            )
        return None
    config: Json = {"tools": [_tool_spec(tool) for tool in tools]}
    kind = choice.get("type")
    if kind == "auto" and is_set(request.tool_choice):  # not when only parallel calls were off
        config["toolChoice"] = {"auto": {}}
    elif kind == "any":
        config["toolChoice"] = {"any": {}}
    elif kind == "tool":
        config["toolChoice"] = {"tool": {"name": choice["name"]}}
    return config


def _tool_spec(tool: Json) -> Json:
    spec: Json = {"name": tool["name"], "inputSchema": {"json": tool["input_schema"]}}
    if tool.get("description"):
        spec["description"] = tool["description"]
    return {"toolSpec": spec}


# --- extras --------------------------------------------------------------------------------


def _merge_extras(body: Json, extras: Json) -> None:
    for name, value in extras.items():
        field = _camel(name)
        if field in TOP_LEVEL_FIELDS:
            if field == "additionalModelRequestFields" and isinstance(value, dict):
                body.setdefault(field, {}).update(value)
            else:
                body[field] = value
        else:
            body.setdefault("additionalModelRequestFields", {})[name] = value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
