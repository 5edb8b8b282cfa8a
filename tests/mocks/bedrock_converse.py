"""The Converse API as the Bedrock mock checks and answers it (per the public reference).

Validation catches what a translating gateway could get wrong, with Bedrock's own messages:
a conversation that does not start with a user turn or does not alternate, blank text, a
toolResult without the toolUse just before it, toolUse/toolResult blocks without
`toolConfig`, a toolChoice naming no offered tool, images that are not png/jpeg/gif/webp
base64 bytes, inference values out of range, unknown top-level fields, and replayed
reasoning whose signature the mock did not make.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from perpetuo.providers.anthropic.request import JSON_TOOL
from tests.mocks.brain import Conversation, Reply, Tool, count_tokens, reply

TOP_LEVEL = frozenset(
    {"messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig"}
    | {"additionalModelRequestFields", "additionalModelResponseFieldPaths"}
    | {"performanceConfig", "requestMetadata", "promptVariables", "serviceTier"}
)
IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
SIGNATURE_PREFIX = b"bedrock-mock-reasoning:"
GUARDRAIL_TEXT = "Sorry, the model cannot answer this question."


class Invalid(Exception):
    """A request Bedrock refuses with 400 ValidationException."""


def reasoning_signature(text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()[:24].encode()
    return base64.b64encode(SIGNATURE_PREFIX + digest).decode()


def validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise Invalid("Malformed input request, please reformat your input and try again.")
    for name in body:
        if name not in TOP_LEVEL:
            raise Invalid(f"extraneous key [{name}] is not permitted")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Invalid("The messages field is required.")
    if messages[0].get("role") != "user":
        raise Invalid(
            "A conversation must start with a user message. Try again with a conversation "
            "that starts with a user message."
        )
    pending: set[str] = set()
    used_tools = False
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise Invalid(f"messages.{i}.role: must be user or assistant")
        if i and messages[i - 1]["role"] == role:
            raise Invalid(
                "A conversation must alternate between user and assistant roles. Make sure the "
                "conversation alternates between user and assistant roles and try again."
            )
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise Invalid(f"messages.{i}.content: at least one content block is required")
        answered = set()
        for j, block in enumerate(content):
            where = f"messages.{i}.content.{j}"
            kind = _block_kind(block, where)
            used_tools = used_tools or kind in ("toolUse", "toolResult")
            if kind == "toolResult":
                if role != "user":
                    raise Invalid(f"{where}: toolResult blocks belong to user turns")
                answered.add(block["toolResult"].get("toolUseId"))
            elif kind in ("toolUse", "reasoningContent") and role != "assistant":
                raise Invalid(f"{where}: {kind} blocks belong to assistant turns")
        if answered - pending:
            raise Invalid(
                f"The number of toolResult blocks at messages.{i}.content exceeds the number "
                "of toolUse blocks of previous turn."
            )
        if pending - answered:
            raise Invalid(
                f"Expected toolResult blocks at messages.{i}.content for the following Ids: "
                + ", ".join(sorted(pending - answered))
            )
        pending = {
            b["toolUse"]["toolUseId"] for b in content if "toolUse" in b and role == "assistant"
        }
    for j, block in enumerate(body.get("system") or []):
        if not isinstance(block, dict) or not str(block.get("text", "")).strip():
            raise Invalid(f"system.{j}: the text field is blank")
    _validate_inference(body.get("inferenceConfig") or {})
    names = _validate_tools(body.get("toolConfig"))
    if used_tools and names is None:
        raise Invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )


def _block_kind(block: Any, where: str) -> str:
    if not isinstance(block, dict) or len(block) != 1:
        raise Invalid(f"{where}: a ContentBlock has exactly one member")
    kind, value = next(iter(block.items()))
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise Invalid(
                f"The text field in the ContentBlock object at {where} is blank. Add text to "
                "the text field, and try again."
            )
    elif kind == "image":
        if value.get("format") not in IMAGE_FORMATS:
            raise Invalid(f"{where}.image.format: must be one of png, jpeg, gif, webp")
        source = value.get("source") or {}
        if "bytes" in source:
            _base64(source["bytes"], f"{where}.image.source.bytes")
        elif not str((source.get("s3Location") or {}).get("uri", "")).startswith("s3://"):
            raise Invalid(f"{where}.image.source: bytes or s3Location is required")
    elif kind == "document":
        if not value.get("name") or "." in value["name"]:
            raise Invalid(f"{where}.document.name: invalid document name")
        _base64((value.get("source") or {}).get("bytes"), f"{where}.document.source.bytes")
    elif kind == "toolUse":
        if not isinstance(value.get("input"), dict) or not value.get("toolUseId"):
            raise Invalid(f"{where}.toolUse: toolUseId, name and an object input are required")
    elif kind == "toolResult":
        if not value.get("toolUseId") or not value.get("content"):
            raise Invalid(f"{where}.toolResult: toolUseId and content are required")
    elif kind == "reasoningContent":
        text = value.get("reasoningText")
        if isinstance(text, dict):
            if text.get("signature") != reasoning_signature(str(text.get("text", ""))):
                raise Invalid(f"{where}: the reasoning signature is not valid")
        elif not _is_mock_redacted(value.get("redactedContent")):
            raise Invalid(f"{where}: reasoningContent needs reasoningText or redactedContent")
    else:
        raise Invalid(f"{where}: unknown ContentBlock member {kind}")
    return kind


def _base64(value: Any, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise Invalid(f"{where}: invalid base64 blob") from None


def _is_mock_redacted(value: Any) -> bool:
    try:
        return base64.b64decode(value).startswith(SIGNATURE_PREFIX)
    except (binascii.Error, TypeError, ValueError):
        return False


def _validate_inference(config: dict[str, Any]) -> None:
    if set(config) - {"maxTokens", "temperature", "topP", "stopSequences"}:
        raise Invalid(f"inferenceConfig: extraneous keys {sorted(config)}")
    if "maxTokens" in config and (
        not isinstance(config["maxTokens"], int) or config["maxTokens"] < 1
    ):
        raise Invalid("inferenceConfig.maxTokens: must be at least 1")
    for name in ("temperature", "topP"):
        if name in config and not 0 <= config[name] <= 1:
            raise Invalid(f"inferenceConfig.{name}: must be between 0 and 1")
    if len(config.get("stopSequences") or []) > 4:
        raise Invalid("inferenceConfig.stopSequences: at most 4")


def _validate_tools(config: Any) -> set[str] | None:
    if config is None:
        return None
    tools = config.get("tools")
    if not isinstance(tools, list) or not tools:
        raise Invalid("toolConfig.tools: at least one tool is required")
    names = set()
    for i, tool in enumerate(tools):
        spec = tool.get("toolSpec") or {}
        schema = (spec.get("inputSchema") or {}).get("json")
        if not spec.get("name") or not isinstance(schema, dict):
            raise Invalid(f"toolConfig.tools.{i}.toolSpec: name and inputSchema.json required")
        names.add(spec["name"])
    choice = config.get("toolChoice")
    if choice is not None:
        if len(choice) != 1 or next(iter(choice)) not in ("auto", "any", "tool"):
            raise Invalid("toolConfig.toolChoice: exactly one of auto, any, tool")
        if "tool" in choice and choice["tool"].get("name") not in names:
            raise Invalid("toolConfig.toolChoice.tool.name: no such tool in toolConfig.tools")
    return names


# --- the conversation and the answer -----------------------------------------------------------


def conversation(body: dict[str, Any]) -> Conversation:
    config = body.get("inferenceConfig") or {}
    conv = Conversation(max_tokens=config.get("maxTokens"), stop=config.get("stopSequences") or [])
    conv.system = " ".join(b["text"] for b in body.get("system") or [])
    for message in body["messages"]:
        texts, results = [], []
        for block in message["content"]:
            if "text" in block:
                texts.append(block["text"])
            elif "image" in block:
                conv.images += 1
            elif "toolResult" in block:
                results += [
                    c.get("text") or json.dumps(c.get("json"))
                    for c in block["toolResult"]["content"]
                ]
        conv.all_text.extend(texts + results)
        if message["role"] == "user" and texts and not results:
            conv.last_user_text, conv.last_tool_result = " ".join(texts), None
        elif message["role"] == "user" and results:
            conv.last_tool_result = " ".join(results)
        else:
            conv.last_tool_result = None
    tool_config = body.get("toolConfig") or {}
    choice = tool_config.get("toolChoice") or {"auto": {}}
    conv.tool_choice = "required" if "any" in choice else choice.get("tool", {}).get("name", "auto")
    for tool in tool_config.get("tools") or []:
        spec = tool["toolSpec"]
        if spec["name"] == JSON_TOOL:
            if conv.tool_choice == JSON_TOOL:
                schema = spec["inputSchema"]["json"]
                conv.tool_choice = None
                if schema.get("properties"):
                    conv.json_schema = schema
                else:
                    conv.json_object = True
        else:
            conv.tools.append(Tool(spec["name"], spec["inputSchema"]["json"]))
    return conv


def answer(conv: Conversation, thinking: bool) -> tuple[Reply, list[dict[str, Any]], str]:
    """(reply, content blocks, stopReason)."""
    out = reply(conv)
    blocks: list[dict[str, Any]] = []
    if "trigger guardrail" in conv.last_user_text:
        out = Reply(text=GUARDRAIL_TEXT, prompt_tokens=out.prompt_tokens)
        out.completion_tokens = count_tokens(GUARDRAIL_TEXT)
        return out, [{"text": GUARDRAIL_TEXT}], "guardrail_intervened"
    if thinking:
        thought = f"Let me reason about: {conv.last_tool_result or conv.last_user_text}"
        text = {"text": thought, "signature": reasoning_signature(thought)}
        blocks.append({"reasoningContent": {"reasoningText": text}})
        out.completion_tokens += count_tokens(thought)
    if (conv.json_schema is not None or conv.json_object) and out.finish == "stop":
        use = {"toolUseId": "tooluse_json", "name": JSON_TOOL, "input": json.loads(out.text)}
        return out, [*blocks, {"toolUse": use}], "tool_use"
    if out.text:
        blocks.append({"text": out.text})
    for call in out.tool_calls:
        use = {"toolUseId": call.id.replace("call_", "tooluse_"), "name": call.name}
        blocks.append({"toolUse": {**use, "input": call.arguments}})
    return out, blocks, STOP_REASONS[out.finish]


def usage(out: Reply, conv: Conversation) -> dict[str, int]:
    cached = "trigger cache hit" in conv.last_user_text
    read, written = (10, 2) if cached else (0, 0)
    return {
        "inputTokens": out.prompt_tokens,
        "outputTokens": out.completion_tokens,
        "totalTokens": out.prompt_tokens + out.completion_tokens + read + written,
        **({"cacheReadInputTokens": read, "cacheWriteInputTokens": written} if cached else {}),
    }


def stream_events(
    blocks: list[dict[str, Any]], out: Reply, stop: str, usage_: dict[str, int]
) -> list[tuple[str, dict[str, Any]]]:
    """The documented ConverseStream event sequence for an answer: (event type, payload)."""
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    for index, block in enumerate(blocks):
        if "toolUse" in block:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
            arguments = json.dumps(use["input"], separators=(",", ":"))
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                delta = {"toolUse": {"input": piece}}
                events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        elif "reasoningContent" in block:
            text = block["reasoningContent"]["reasoningText"]
            for piece in _pieces(text["text"]):
                delta = {"reasoningContent": {"text": piece}}
                events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
            delta = {"reasoningContent": {"signature": text["signature"]}}
            events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        else:
            pieces = out.text_pieces() if block["text"] == out.text else _pieces(block["text"])
            for piece in pieces:
                events.append(
                    ("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}})
                )
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": stop}))
    events.append(("metadata", {"usage": usage_, "metrics": {"latencyMs": 42}}))
    return events


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]
