"""An OpenAI chat request as a Gemini `GenerateContentRequest` body.

Choices worth knowing:
- System and developer messages, wherever they stand, become `systemInstruction` (one text
  part each, in order); Gemini has no system turn inside `contents`. Empty texts are left
  out: Gemini rejects empty text parts.
- Assistant turns are role `model`; consecutive turns of one role are merged, so the results
  of parallel tool calls land in one `user` content, as Gemini expects.
- A tool result needs its function's name: it is recovered from the assistant tool call with
  the same id. Its payload must be an object: JSON objects pass as they are, anything else is
  wrapped as `{"result": ...}`. Call ids themselves are not sent (this API matches by order).
- Tool parameters go out as `parametersJsonSchema` and `json_schema` response formats as
  `responseJsonSchema`: both take JSON Schema as OpenAI clients write it, whereas `parameters`
  and `responseSchema` take Google's OpenAPI subset and reject common keys such as
  `additionalProperties` or `$schema`. Nothing has to be stripped; `strict` has no
  counterpart (Gemini always follows a given schema).
- `parallel_tool_calls` is ignored: Gemini decides itself and has no switch. `user`, `store`,
  `metadata`, `service_tier`, `logit_bias`, `verbosity`, `prediction` and the prompt-cache
  hints are dropped; `audio` output, non-text `modalities` and `web_search_options` are
  unsupported (another deployment may serve them). Image `detail` is dropped.
- `reasoning_effort` becomes a `thinkingConfig.thinkingBudget` (see THINKING_BUDGETS); a
  model that cannot think rejects it, as a non-reasoning OpenAI model would.
- Alias-allowed extra parameters: known Gemini names in snake_case are camel-cased
  (`top_k` -> `topK`); `safety_settings`/`cached_content` go to the top level, everything
  else into `generationConfig` verbatim, where the API itself judges them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from perpetuo.providers.base import Json, data_url_parts, unsupported
from perpetuo.providers.gemini.toolids import signature_of
from perpetuo.schema.chat import (
    AssistantMessage,
    AudioPart,
    ChatCompletionRequest,
    DeveloperMessage,
    FilePart,
    FunctionCall,
    FunctionMessage,
    FunctionTool,
    FunctionToolCall,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaResponseFormat,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
    is_set,
    text_of,
)
from perpetuo.schema.errors import UpstreamError, UpstreamErrorKind

# OpenAI parameter -> generationConfig field, for values that pass unchanged.
GENERATION_FIELDS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "topP",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}

# Gemini's own generationConfig fields, for camel-casing extras.
KNOWN_GENERATION_FIELDS = frozenset(
    {
        "topK",
        "thinkingConfig",
        "mediaResolution",
        "responseModalities",
        "speechConfig",
        "imageConfig",
        "enableEnhancedCivicAnswers",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "candidateCount",
        "maxOutputTokens",
        "stopSequences",
        "temperature",
        "topP",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
    }
)
TOP_LEVEL_FIELDS = frozenset({"safetySettings", "cachedContent"})

# reasoning_effort -> thinkingConfig.thinkingBudget (tokens).
THINKING_BUDGETS: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
}

TOOL_MODES: dict[str, str] = {"none": "NONE", "auto": "AUTO", "required": "ANY"}

IMAGE_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".heif": "image/heif",
}

AUDIO_TYPES: dict[str, str] = {"wav": "audio/wav", "mp3": "audio/mp3"}

_json_decode = msgspec.json.decode


def build_body(request: ChatCompletionRequest, extras: Json) -> Json:
    """The generateContent (and streamGenerateContent) request body."""
    _reject_unsupported(request)
    system, contents = translate_messages(request.messages)
    body: Json = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    declarations = function_declarations(request)
    if declarations:
        body["tools"] = [{"functionDeclarations": declarations}]
        if (config := function_calling_config(request)) is not None:
            body["toolConfig"] = {"functionCallingConfig": config}
    generation = generation_config(request)
    for name, value in extras.items():
        field = _camel(name)
        if field in TOP_LEVEL_FIELDS:
            body[field] = value
        else:
            generation[field if field in KNOWN_GENERATION_FIELDS else name] = value
    if generation:
        body["generationConfig"] = generation
    return body


def _reject_unsupported(request: ChatCompletionRequest) -> None:
    if is_set(request.audio):
        raise unsupported("Gemini deployments do not produce audio output", "audio")
    modalities = request.modalities
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        raise unsupported("Gemini deployments only produce text here", "modalities")
    if request.web_search_options is not msgspec.UNSET:
        raise unsupported(
            "web_search_options is not supported by Gemini deployments", "web_search_options"
        )


# --- messages ------------------------------------------------------------------------------


def translate_messages(messages: list[Any]) -> tuple[list[Json], list[Json]]:
    """(systemInstruction parts, contents) for a conversation."""
    system: list[Json] = []
    contents: list[Json] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, for tool results
    for index, message in enumerate(messages):
        if isinstance(message, SystemMessage | DeveloperMessage):
            if text := text_of(message.content):
                system.append({"text": text})
        elif isinstance(message, UserMessage):
            _append(contents, "user", user_parts(message, index))
        elif isinstance(message, AssistantMessage):
            _append(contents, "model", assistant_parts(message, index, call_names))
        elif isinstance(message, ToolMessage):
            name = call_names.get(message.tool_call_id)
            if name is None:
                raise UpstreamError(
                    UpstreamErrorKind.INVALID_REQUEST,
                    f"messages[{index}]: tool_call_id {message.tool_call_id!r} does not match "
                    "a tool call of an earlier assistant message",
                    status=400,
                    param=f"messages[{index}].tool_call_id",
                )
            _append(contents, "user", [function_response(name, text_of(message.content))])
        elif isinstance(message, FunctionMessage):
            _append(contents, "user", [function_response(message.name, message.content or "")])
    return system, contents


def _append(contents: list[Json], role: str, parts: list[Json]) -> None:
    """Add parts as a turn of `role`, merged into the previous turn when it has that role."""
    if not parts:
        return  # Gemini rejects a content without parts
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def user_parts(message: UserMessage, index: int) -> list[Json]:
    if isinstance(message.content, str):
        return [{"text": message.content}] if message.content else []
    parts: list[Json] = []
    for part in message.content:
        if isinstance(part, TextPart):
            if part.text:  # Gemini rejects empty text parts
                parts.append({"text": part.text})
        elif isinstance(part, ImagePart):
            parts.append(image_part(part.image_url.url, index))
        elif isinstance(part, AudioPart):
            fmt = part.input_audio.format
            mime = AUDIO_TYPES.get(fmt, f"audio/{fmt}")
            parts.append({"inlineData": {"mimeType": mime, "data": part.input_audio.data}})
        elif isinstance(part, FilePart):
            parts.append(file_part(part, index))
    return parts


def image_part(url: str, index: int) -> Json:
    if inline := data_url_parts(url):
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    parsed = urlsplit(url)
    if parsed.scheme in ("http", "https"):
        suffix = parsed.path[parsed.path.rfind(".") :].lower() if "." in parsed.path else ""
        return {"fileData": {"mimeType": IMAGE_TYPES.get(suffix, "image/jpeg"), "fileUri": url}}
    raise unsupported(
        "image_url must be a data: URL or an http(s) URL", f"messages[{index}].content"
    )


def file_part(part: FilePart, index: int) -> Json:
    data = part.file.file_data
    inline = data_url_parts(data) if isinstance(data, str) else None
    if inline is None:
        raise unsupported(
            "Gemini deployments take files as base64 data URLs, not file ids",
            f"messages[{index}].content",
        )
    return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}


def assistant_parts(
    message: AssistantMessage, index: int, call_names: dict[str, str]
) -> list[Json]:
    parts: list[Json] = []
    text = text_of(message.content) if is_set(message.content) else ""
    if text:
        parts.append({"text": text})
    calls = message.tool_calls if isinstance(message.tool_calls, list) else []
    for position, call in enumerate(calls):
        param = f"messages[{index}].tool_calls[{position}]"
        if not isinstance(call, FunctionToolCall):
            raise unsupported("Gemini deployments only support function tools", param)
        name = call.function.name
        args = _arguments(call.function.arguments, f"{param}.function.arguments")
        part: Json = {"functionCall": {"name": name, "args": args}}
        if signature := signature_of(call.id):
            part["thoughtSignature"] = signature
        call_names[call.id] = name
        parts.append(part)
    legacy = message.function_call
    if isinstance(legacy, FunctionCall) and not calls:
        args = _arguments(legacy.arguments, f"messages[{index}].function_call.arguments")
        parts.append({"functionCall": {"name": legacy.name, "args": args}})
    return parts


def _arguments(arguments: str, param: str) -> Json:
    if not arguments.strip():
        return {}
    try:
        value = _json_decode(arguments)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise unsupported("tool call arguments are not valid JSON", param) from None
    if not isinstance(value, dict):
        raise unsupported("tool call arguments must be a JSON object", param)
    return value


def function_response(name: str, text: str) -> Json:
    """A functionResponse part; Gemini wants the response as an object."""
    try:
        value: Any = _json_decode(text)
    except (msgspec.DecodeError, UnicodeDecodeError):
        value = text
    response = value if isinstance(value, dict) else {"result": value}
    return {"functionResponse": {"name": name, "response": response}}


# --- tools ---------------------------------------------------------------------------------


def function_declarations(request: ChatCompletionRequest) -> list[Json]:
    definitions = []
    for position, tool in enumerate(request.tools if isinstance(request.tools, list) else []):
        if not isinstance(tool, FunctionTool):
            raise unsupported(
                "Gemini deployments only support function tools", f"tools[{position}]"
            )
        definitions.append(tool.function)
    if isinstance(request.functions, list):
        definitions.extend(request.functions)
    declarations = []
    for fn in definitions:
        declaration: Json = {"name": fn.name}
        if isinstance(fn.description, str):
            declaration["description"] = fn.description
        if isinstance(fn.parameters, dict):
            declaration["parametersJsonSchema"] = fn.parameters
        declarations.append(declaration)
    return declarations


def function_calling_config(request: ChatCompletionRequest) -> Json | None:
    choice = request.tool_choice if is_set(request.tool_choice) else request.function_call
    if not is_set(choice):
        return None
    if isinstance(choice, str):
        return {"mode": TOOL_MODES[choice]}
    name = _named_function(choice)
    if name is None:
        raise unsupported(
            "this tool_choice form is not supported by Gemini deployments", "tool_choice"
        )
    return {"mode": "ANY", "allowedFunctionNames": [name]}


def _named_function(choice: Any) -> str | None:
    """The function name of {"type": "function", "function": {"name"}} or legacy {"name"}."""
    if not isinstance(choice, dict):
        return None
    if choice.get("type") == "function" and isinstance(choice.get("function"), dict):
        choice = choice["function"]
    name = choice.get("name")
    return name if isinstance(name, str) and name else None


# --- generation config ---------------------------------------------------------------------


def generation_config(request: ChatCompletionRequest) -> Json:
    config: Json = {}
    for ours, theirs in GENERATION_FIELDS.items():
        value = getattr(request, ours)
        if is_set(value):
            config[theirs] = value
    if (limit := request.output_token_limit) is not None:
        config["maxOutputTokens"] = limit
    stop = request.stop
    if is_set(stop):
        config["stopSequences"] = [stop] if isinstance(stop, str) else stop
    if request.logprobs is True:
        config["responseLogprobs"] = True
        if isinstance(request.top_logprobs, int):
            config["logprobs"] = request.top_logprobs
    fmt = request.response_format
    if isinstance(fmt, JsonObjectFormat):
        config["responseMimeType"] = "application/json"
    elif isinstance(fmt, JsonSchemaResponseFormat):
        config["responseMimeType"] = "application/json"
        if isinstance(fmt.json_schema.schema, dict):
            config["responseJsonSchema"] = fmt.json_schema.schema
    effort = request.reasoning_effort
    if isinstance(effort, str):
        if effort not in THINKING_BUDGETS:
            raise unsupported(
                f"reasoning_effort {effort!r} has no Gemini equivalent", "reasoning_effort"
            )
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS[effort]}
    return config


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)
