"""What the real Gemini API rejects, for the mock: the mistakes an adapter could make.

Each check returns the API's error message (all are 400 INVALID_ARGUMENT), or None. Field
lists follow the public v1beta reference (GenerateContentRequest, Content, Part,
GenerationConfig, Tool, ToolConfig, SafetySetting, Schema).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
}
PART_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
PART_EXTRA = {"thought", "thoughtSignature", "videoMetadata"}
GENERATION_FIELDS = {
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
}
# Google's OpenAPI-subset Schema, accepted by `parameters` and `responseSchema`.
SCHEMA_FIELDS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
}
FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
SIGNATURE_PREFIX = b"gemini-mock-signature:"
HARM_CATEGORIES = {
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
}


def unknown(name: str, where: str) -> str:
    return (
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
    )


def check_request(body: Any, model: str) -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON payload received. Expected an object."
    for name in body:
        if name not in REQUEST_FIELDS:
            return unknown(name, "")
    return (
        check_contents(body.get("contents"), model)
        or check_system(body.get("systemInstruction"))
        or check_generation(body.get("generationConfig"))
        or check_tools(body.get("tools"), body.get("toolConfig"))
        or check_safety(body.get("safetySettings"))
    )


def check_contents(contents: Any, model: str) -> str | None:
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified\n"
    called: set[str] = set()
    for i, content in enumerate(contents):
        role = content.get("role", "user") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{i}].role = {role!r})"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return (
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            )
        for j, part in enumerate(parts):
            if problem := check_part(part, f"contents[{i}].parts[{j}]", role, called):
                return problem
        if "gemini-3" in model and (problem := check_signature(parts, i)):
            return problem
    return None


def check_part(part: Any, where: str, role: str, called: set[str]) -> str | None:
    if not isinstance(part, dict):
        return f"Invalid value at '{where}': expected an object"
    for name in part:
        if name not in PART_DATA | PART_EXTRA:
            return unknown(name, where)
    data = [name for name in part if name in PART_DATA]
    if len(data) != 1:
        return (
            f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have "
            "one initialized field"
        )
    kind = data[0]
    value = part[kind]
    if kind == "text" and not value:
        return (
            "Unable to submit request because it has an empty text parameter. Add a value to "
            "the parameter and try again."
        )
    if kind == "inlineData":
        if not value.get("mimeType") or not _is_base64(value.get("data")):
            return f"Invalid value at '{where}.inline_data' (TYPE_BYTES), Base64 decoding failed"
    elif kind == "fileData" and (not value.get("fileUri") or not value.get("mimeType")):
        return f"* GenerateContentRequest.{where}.file_data: fileUri and mimeType are required"
    elif kind == "functionCall":
        if role != "model" or not value.get("name") or not isinstance(value.get("args", {}), dict):
            return f"* GenerateContentRequest.{where}.function_call: invalid function call"
        called.add(value["name"])
    elif kind == "functionResponse":
        if role != "user" or not isinstance(value.get("response"), dict):
            return f"* GenerateContentRequest.{where}.function_response.response: must be an object"
        if value.get("name") not in called:
            return (
                f"* GenerateContentRequest.{where}.function_response.name: function response "
                f"name {value.get('name')!r} does not match any function call"
            )
    if "thoughtSignature" in part and not _is_base64(part["thoughtSignature"]):
        return f"Invalid value at '{where}.thought_signature' (TYPE_BYTES), Base64 decoding failed"
    return None


def check_signature(parts: list[Any], index: int) -> str | None:
    """Gemini 3 rejects a replayed model turn whose first function call lost its signature."""
    calls = [p for p in parts if isinstance(p, dict) and "functionCall" in p]
    if not calls:
        return None
    signature = calls[0].get("thoughtSignature")
    if isinstance(signature, str) and base64.b64decode(signature).startswith(SIGNATURE_PREFIX):
        return None
    name = calls[0]["functionCall"].get("name")
    return (
        "Function call is missing a thought_signature in functionCall parts. This is required "
        "for tools to work correctly, and missing thought_signature may lead to degraded model "
        f"performance. Additional data, function call `default_api:{name}` , position {index + 1}."
        " Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more "
        "details."
    )


def check_system(system: Any) -> str | None:
    if system is None:
        return None
    parts = system.get("parts") if isinstance(system, dict) else None
    if not isinstance(parts, list) or not all(
        isinstance(p, dict) and set(p) == {"text"} for p in parts
    ):
        return "* GenerateContentRequest.system_instruction: only text parts are supported"
    return None


def check_generation(config: Any) -> str | None:
    if config is None:
        return None
    for name in config:
        if name not in GENERATION_FIELDS:
            return unknown(name, "generation_config")
    if "responseSchema" in config and "responseJsonSchema" in config:
        return "responseSchema and responseJsonSchema cannot both be set"
    if "responseJsonSchema" in config and config.get("responseMimeType") != "application/json":
        return "responseMimeType must be application/json when a response schema is set"
    if "responseSchema" in config and (problem := check_schema(config["responseSchema"], "")):
        return problem
    if "logprobs" in config and not config.get("responseLogprobs"):
        return "logprobs is only valid when responseLogprobs is true"
    stops = config.get("stopSequences", [])
    if not isinstance(stops, list) or len(stops) > 5:
        return "* GenerationConfig.stop_sequences: at most 5 stop sequences are allowed"
    for name in ("candidateCount", "maxOutputTokens", "topK", "seed", "logprobs"):
        if name in config and not isinstance(config[name], int):
            return f"Invalid value at 'generation_config.{name}' (TYPE_INT32)"
    return None


def check_tools(tools: Any, tool_config: Any) -> str | None:
    declared: set[str] = set()
    for i, tool in enumerate(tools or []):
        for j, decl in enumerate(tool.get("functionDeclarations", [])):
            where = f"tools[{i}].function_declarations[{j}]"
            if not FUNCTION_NAME.match(str(decl.get("name", ""))):
                return f"* GenerateContentRequest.{where}.name: Invalid function name."
            if "parameters" in decl and "parametersJsonSchema" in decl:
                return (
                    f"* GenerateContentRequest.{where}: parameters and parameters_json_schema "
                    "are mutually exclusive"
                )
            if problem := check_schema(decl.get("parameters", {}), f"{where}.parameters"):
                return problem
            declared.add(decl["name"])
    calling = (tool_config or {}).get("functionCallingConfig", {})
    if calling.get("mode", "AUTO") not in ("AUTO", "ANY", "NONE", "VALIDATED"):
        return f"Invalid value at 'tool_config.function_calling_config.mode': {calling['mode']}"
    names = calling.get("allowedFunctionNames")
    if names is not None and (calling.get("mode") != "ANY" or not set(names) <= declared):
        return "allowed_function_names must name declared functions and needs mode ANY"
    return None


def check_schema(schema: Any, where: str) -> str | None:
    """Google's Schema type rejects JSON Schema keys it does not know, at any depth."""
    if not isinstance(schema, dict):
        return None
    for name, value in schema.items():
        if name not in SCHEMA_FIELDS:
            return unknown(name, where)
        nested = value.values() if name == "properties" else [value] if name == "items" else []
        for sub in nested:
            if problem := check_schema(sub, f"{where}.{name}"):
                return problem
    return None


def check_safety(settings: Any) -> str | None:
    for setting in settings or []:
        if setting.get("category") not in HARM_CATEGORIES or not setting.get("threshold"):
            return "Invalid value at 'safety_settings[0].category'"
    return None


def _is_base64(value: Any) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        return False
    return isinstance(value, str)
