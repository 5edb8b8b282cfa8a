"""A mock of Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`,
`GET /v1/models`), per the public reference.

It authenticates with `x-api-key` (or a bearer token), requires `anthropic-version` (and accepts any
`anthropic-beta`), and validates what a translating gateway could get wrong: unknown
top-level fields, a missing max_tokens, a "system" role inside messages, turns that do not
alternate user/assistant starting with user (the API once rejected these; today it merges
them, and we must not rely on that), tool_result blocks without the matching tool_use just
before them, empty text blocks, and extended thinking as the API checks it: the budget, a
thinking block sent back without its signature or with a signature the mock did not make,
and a tool-use turn replayed without the thinking block that opened it.
Structured outputs (`output_config.format` json_schema) answer with the JSON in a text block.
Answers are JSON messages or SSE streams with the documented event sequence, ping included;
with `thinking` on, they open with a signed thinking block (streamed as thinking_delta then
signature_delta).

Triggers in the last user text: "trigger context overflow" -> 400 prompt is too long;
"trigger overloaded" -> 529 overloaded_error; "trigger stream error" -> an `error` event
after the first delta; "trigger cache hit" -> non-zero prompt-cache usage; "trigger redacted
thinking" (with thinking on) -> a redacted_thinking block after the thinking block.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from typing import Any

from aiohttp import web

from perpetuo.providers.anthropic.request import JSON_TOOL
from tests.mocks.brain import Conversation, Reply, Tool, count_tokens, reply
from tests.mocks.server import MockUpstream, sse

API_KEY = "sk-ant-test"
TOP_LEVEL_FIELDS = frozenset(
    {"model", "messages", "max_tokens", "metadata", "stop_sequences", "stream", "system"}
    | {"temperature", "top_k", "top_p", "tools", "tool_choice", "thinking", "service_tier"}
    | {"container", "mcp_servers", "output_config", "cache_control", "inference_geo"}
    | {"context_management", "speed"}
)
# count_tokens takes the prompt only: max_tokens, stream and sampling are extra inputs there.
COUNT_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"}
    | {"output_config", "cache_control", "context_management", "speed"}
)
BLOCK_TYPES = {
    "user": {"text", "image", "document", "tool_result", "search_result"},
    "assistant": {"text", "tool_use", "thinking", "redacted_thinking"},
}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
SIGNATURE_PREFIX = b"anthropic-mock-signature:"
MIN_THINKING_BUDGET = 1024
MODELS = [  # newest first, as the API lists them
    ("claude-3-5-sonnet-latest", "Claude Sonnet 3.5", "2024-10-22T00:00:00Z"),
    ("claude-3-5-haiku-latest", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
]


class Invalid(Exception):
    """A request the real API would refuse with 400 invalid_request_error."""


def anthropic_error(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"type": "error", "error": {"type": type_, "message": message}}
    body["request_id"] = "req_mock_0123456789"
    return web.json_response(body, status=status, headers=headers)


# --- validation ----------------------------------------------------------------------------


def validate(body: Any, counting: bool = False) -> None:
    """A /v1/messages body, or with `counting` a /v1/messages/count_tokens one."""
    if not isinstance(body, dict):
        raise Invalid("The request body is not valid JSON.")
    for name in body:
        if name not in (COUNT_FIELDS if counting else TOP_LEVEL_FIELDS):
            raise Invalid(f"{name}: Extra inputs are not permitted")
    for name in ("model", "messages") if counting else ("model", "messages", "max_tokens"):
        if name not in body:
            raise Invalid(f"{name}: Field required")
    if not counting and (not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1):
        raise Invalid("max_tokens: Input should be greater than or equal to 1")
    temperature = body.get("temperature", 1)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
        raise Invalid("temperature: Input should be less than or equal to 1")
    if set(body.get("metadata") or {}) - {"user_id"}:
        raise Invalid("metadata: only user_id is permitted")
    validate_messages(body["messages"])
    validate_tools(body.get("tools"), body.get("tool_choice"))
    validate_thinking(body)


def blocks_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def validate_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: at least one message is required")
    pending: set[str] = set()  # tool_use ids the next user turn must answer
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "system":
            raise Invalid(
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        if role not in BLOCK_TYPES:
            raise Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise Invalid('messages: first message must use the "user" role')
        if i > 0 and messages[i - 1].get("role") == role:
            raise Invalid(
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            )
        blocks = blocks_of(message)
        if not isinstance(blocks, list) or not blocks:
            raise Invalid(f"messages.{i}: all messages must have non-empty content")
        for j, block in enumerate(blocks):
            validate_block(block, role, f"messages.{i}.content.{j}")
        answered = {b["tool_use_id"] for b in blocks if b["type"] == "tool_result"}
        if answered - pending:
            raise Invalid(
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` "
                f"blocks: {', '.join(sorted(answered - pending))}. Each `tool_result` block "
                "must have a corresponding `tool_use` block in the previous message."
            )
        if pending - answered:
            raise Invalid(
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(sorted(pending - answered))}"
            )
        kinds = [b["type"] for b in blocks]
        first_other = next((k for k, kind in enumerate(kinds) if kind != "tool_result"), len(kinds))
        if "tool_result" in kinds[first_other:]:
            raise Invalid(f"messages.{i}.content: tool_result blocks must come first")
        pending = {b["id"] for b in blocks if b["type"] == "tool_use"}


def validate_block(block: Any, role: str, where: str) -> None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in BLOCK_TYPES[role]:
        raise Invalid(f"{where}.type: '{kind}' is not a valid {role} content block type")
    if kind == "text" and not str(block.get("text", "")).strip():
        raise Invalid(f"{where}.text: text content blocks must contain non-whitespace text")
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") == "base64":
            if source.get("media_type") not in IMAGE_TYPES or not source.get("data"):
                raise Invalid(f"{where}.source: invalid base64 image source")
        elif source.get("type") != "url" or not str(source.get("url", "")).startswith("http"):
            raise Invalid(f"{where}.source: Input tag does not match 'base64', 'url'")
    if kind == "tool_use" and not isinstance(block.get("input"), dict):
        raise Invalid(f"{where}.input: Input should be a valid dictionary")
    if kind == "thinking":
        signature = block.get("signature")
        if not isinstance(signature, str) or not signature:
            raise Invalid(f"{where}.signature: Field required")
        if signature != thinking_signature(str(block.get("thinking", ""))):
            raise Invalid(f"{where}: Invalid `signature` in `thinking` block")
    if kind == "redacted_thinking" and not is_mock_signed(block.get("data")):
        raise Invalid(f"{where}: Invalid `data` in `redacted_thinking` block")


def validate_tools(tools: Any, choice: Any) -> None:
    names = set()
    for i, tool in enumerate(tools or []):
        names.add(tool.get("name"))
        if not custom(tool):
            continue  # a server tool (web_search_20250305, ...): no input schema
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise Invalid(f"tools.{i}.custom.input_schema: Field required (type 'object')")
    if choice is None:
        return
    if choice.get("type") not in ("auto", "any", "tool", "none"):
        raise Invalid("tool_choice: Input tag does not match 'auto', 'any', 'tool', 'none'")
    if choice["type"] == "tool" and choice.get("name") not in names:
        raise Invalid(f"tool_choice: Tool '{choice.get('name')}' not found in tools")


def custom(tool: dict[str, Any]) -> bool:
    """A tool the client runs (server tools carry a versioned type instead)."""
    return tool.get("type") in (None, "custom")


def thinking_on(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def validate_thinking(body: dict[str, Any]) -> None:
    thinking = body.get("thinking")
    if thinking is None:
        return
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "disabled", "adaptive"):
        raise Invalid("thinking: Input tag does not match 'enabled', 'disabled', 'adaptive'")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
            raise Invalid(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        if "max_tokens" in body and body["max_tokens"] <= budget:
            raise Invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
    if not thinking_on(body):
        return
    if body.get("temperature", 1) != 1:
        raise Invalid("`temperature` may only be set to 1 when thinking is enabled")
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        raise Invalid("Thinking may not be enabled when tool_choice forces tool use.")
    # A tool round trip continues the turn that called the tool: it must keep its thinking.
    messages = body["messages"]
    last, previous = messages[-1], messages[-2] if len(messages) > 1 else None
    answers_tools = any(b["type"] == "tool_result" for b in blocks_of(last))
    if previous is not None and previous.get("role") == "assistant" and answers_tools:
        first = blocks_of(previous)[0]["type"]
        if first not in ("thinking", "redacted_thinking"):
            raise Invalid(
                f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or "
                f"`redacted_thinking`, but found `{first}`. When `thinking` is enabled, a "
                "final `assistant` message must start with a thinking block (preceeding the "
                "lastmost set of `tool_use` and `tool_result` blocks). We recommend you "
                "include thinking blocks from previous turns. To avoid this requirement, "
                "disable `thinking`."
            )


def thinking_signature(thought: str) -> str:
    """Like Anthropic's: proves the text is the model's, unchanged (the mock checks it)."""
    digest = hashlib.sha256(thought.encode()).hexdigest()[:32].encode()
    return base64.b64encode(SIGNATURE_PREFIX + digest).decode()


def is_mock_signed(data: Any) -> bool:
    try:
        return isinstance(data, str) and base64.b64decode(data).startswith(SIGNATURE_PREFIX)
    except ValueError:
        return False


# --- the conversation ----------------------------------------------------------------------


def conversation(body: dict[str, Any]) -> Conversation:
    conv = Conversation(
        max_tokens=body.get("max_tokens"), stop=list(body.get("stop_sequences", []))
    )
    system = body.get("system") or ""
    conv.system = system if isinstance(system, str) else " ".join(b["text"] for b in system)
    for message in body["messages"]:
        texts, results = [], []
        for block in blocks_of(message):
            if block["type"] == "text":
                texts.append(block["text"])
            elif block["type"] == "image":
                conv.images += 1
            elif block["type"] == "tool_result":
                results.append(tool_result_text(block.get("content")))
        conv.all_text.extend(texts + results)
        if message["role"] == "user" and texts:
            conv.last_user_text, conv.last_tool_result = " ".join(texts), None
        elif message["role"] == "user" and results:
            conv.last_tool_result = " ".join(results)
        else:
            conv.last_tool_result = None
    choice = body.get("tool_choice") or {"type": "auto"}
    conv.tool_choice = {"any": "required", "tool": choice.get("name")}.get(
        choice["type"], choice["type"]
    )
    if (fmt := output_format(body)) is not None:
        conv.json_schema = fmt.get("schema") or {}
    for tool in filter(custom, body.get("tools") or []):
        if tool["name"] == JSON_TOOL:
            json_mode(conv, tool["input_schema"], forced=conv.tool_choice == JSON_TOOL)
        else:
            conv.tools.append(Tool(tool["name"], tool["input_schema"]))
    return conv


def output_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """Structured outputs' json_schema format, when the request sets one."""
    fmt = (body.get("output_config") or {}).get("format")
    return fmt if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None


def json_mode(conv: Conversation, schema: dict[str, Any], forced: bool) -> None:
    """The gateway's JSON tool, forced: answer with an instance of its schema."""
    if not forced:
        return
    conv.tool_choice = None
    if schema.get("properties"):
        conv.json_schema = schema
    else:
        conv.json_object = True


def tool_result_text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if b.get("type") == "text")
    return str(content or "")


def answer(
    conv: Conversation, thinking: bool = False, structured: bool = False
) -> tuple[Reply, list[dict[str, Any]], str, str | None]:
    """(reply, content blocks, stop_reason, stop_sequence); `structured`: the JSON answer
    goes in a text block (structured outputs) rather than through the gateway's JSON tool."""
    out = reply(conv)
    blocks: list[dict[str, Any]] = []
    if thinking:
        thought = f"Let me think about: {conv.last_tool_result or conv.last_user_text}"
        blocks.append(
            {"type": "thinking", "thinking": thought, "signature": thinking_signature(thought)}
        )
        out.completion_tokens += count_tokens(thought)
        if "trigger redacted thinking" in conv.last_user_text:
            data = base64.b64encode(SIGNATURE_PREFIX + b"redacted").decode()
            blocks.append({"type": "redacted_thinking", "data": data})
    json_tool = conv.json_schema is not None or conv.json_object
    if json_tool and not structured and out.finish == "stop":
        blocks.append(tool_use("toolu_mock_json", JSON_TOOL, json.loads(out.text)))
        return out, blocks, "tool_use", None
    if out.text:
        blocks.append({"type": "text", "text": out.text})
    for call in out.tool_calls:
        blocks.append(tool_use(call.id.replace("call_", "toolu_"), call.name, call.arguments))
    stop_sequence = None
    if out.finish == "stop" and conv.stop:
        full = reply(replace(conv, stop=[])).text
        stop_sequence = next((s for s in conv.stop if s and s in full and out.text != full), None)
    reason = "stop_sequence" if stop_sequence else STOP_REASONS[out.finish]
    return out, blocks, reason, stop_sequence


def tool_use(id_: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id_, "name": name, "input": arguments}


def usage(out: Reply, conv: Conversation) -> dict[str, Any]:
    cached = "trigger cache hit" in conv.last_user_text
    return {
        "input_tokens": out.prompt_tokens,
        "cache_creation_input_tokens": 2 if cached else 0,
        "cache_read_input_tokens": 10 if cached else 0,
        "output_tokens": out.completion_tokens,
        "service_tier": "standard",
    }


# --- the server ----------------------------------------------------------------------------


class AnthropicMock(MockUpstream):
    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get("/v1/models", self.models)

    def refused(self, request: web.Request) -> web.Response | None:
        """The API's answer to a request without a valid key or version header."""
        # Current SDKs send the key as a bearer token, older ones (and the gateway) x-api-key.
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key not in (request.headers.get("x-api-key"), bearer):
            return anthropic_error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return anthropic_error(
                400, "invalid_request_error", "anthropic-version: header is required"
            )
        return None

    async def count_tokens(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        if (refusal := self.refused(request)) is not None:
            return refusal
        try:
            validate(recorded.body, counting=True)
        except Invalid as exc:
            return anthropic_error(400, "invalid_request_error", str(exc))
        # The same count a /v1/messages call reports as its input tokens.
        return web.json_response({"input_tokens": reply(conversation(recorded.body)).prompt_tokens})

    async def models(self, request: web.Request) -> web.Response:
        await self.record(request)
        if (refusal := self.refused(request)) is not None:
            return refusal
        limit = int(request.query.get("limit", "20"))
        data = [
            {"type": "model", "id": id_, "display_name": name, "created_at": created}
            for id_, name, created in MODELS[:limit]
        ]
        return web.json_response(
            {
                "data": data,
                "has_more": len(MODELS) > limit,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def messages(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if (refusal := self.refused(request)) is not None:
            return refusal
        fault = self.take_fault()
        if (faulted := await self.apply_fault(request, fault)) is not None:
            return faulted
        body = recorded.body
        try:
            validate(body)
        except Invalid as exc:
            return anthropic_error(400, "invalid_request_error", str(exc))
        if body["model"] == "does-not-exist":
            return anthropic_error(404, "not_found_error", f"model: {body['model']}")
        conv = conversation(body)
        if "trigger context overflow" in conv.last_user_text:
            return anthropic_error(
                400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
            )
        if "trigger overloaded" in conv.last_user_text:
            return anthropic_error(529, "overloaded_error", "Overloaded")
        structured = output_format(body) is not None
        out, blocks, reason, stop_sequence = answer(conv, thinking_on(body), structured)
        message = {
            "id": f"msg_mock{len(self.requests)}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": blocks,
            "stop_reason": reason,
            "stop_sequence": stop_sequence,
            "usage": usage(out, conv),
        }
        if not body.get("stream"):
            return web.json_response(message)
        fail = "trigger stream error" in conv.last_user_text
        return await self.stream_events(request, stream(message, out, fail), fault)


def stream(message: dict[str, Any], out: Reply, fail: bool) -> list[bytes]:
    """The documented event sequence for `message`, text word by word."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    events = [sse({"type": "message_start", "message": start}, "message_start")]
    for index, block in enumerate(message["content"]):
        events.append(
            sse(
                {"type": "content_block_start", "index": index, "content_block": opened(block)},
                "content_block_start",
            )
        )
        if index == 0:
            events.append(sse({"type": "ping"}, "ping"))
        for delta in block_deltas(block, out):
            events.append(
                sse(
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    "content_block_delta",
                )
            )
            if fail:
                error = {"type": "overloaded_error", "message": "Overloaded"}
                events.append(sse({"type": "error", "error": error}, "error"))
                return events
        events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    final_usage = {"output_tokens": message["usage"]["output_tokens"]}
    events.append(
        sse({"type": "message_delta", "delta": delta, "usage": final_usage}, "message_delta")
    )
    events.append(sse({"type": "message_stop"}, "message_stop"))
    return events


def opened(block: dict[str, Any]) -> dict[str, Any]:
    """A block as content_block_start gives it: empty, filled by the deltas that follow."""
    if block["type"] == "tool_use":
        return {**block, "input": {}}
    if block["type"] == "thinking":
        return {**block, "thinking": "", "signature": ""}
    if block["type"] == "text":
        return {**block, "text": ""}
    return block  # redacted_thinking comes whole


def block_deltas(block: dict[str, Any], out: Reply) -> list[dict[str, Any]]:
    if block["type"] == "text":
        return [{"type": "text_delta", "text": piece} for piece in out.text_pieces()]
    if block["type"] == "thinking":
        words = block["thinking"].split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        signature = {"type": "signature_delta", "signature": block["signature"]}
        return [{"type": "thinking_delta", "thinking": piece} for piece in pieces] + [signature]
    if block["type"] == "redacted_thinking":
        return []
    arguments = json.dumps(block["input"], separators=(",", ":"), ensure_ascii=False)
    half = len(arguments) // 2
    pieces = ["", arguments[:half], arguments[half:]]  # the API opens with an empty piece
    return [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]


# -- wiring for tests/conftest.py ---------------------------------------------------------------

MOCK_NAME = "anthropic"
MOCK_CLASS = AnthropicMock
ENV = {"TEST_ANTHROPIC_KEY": API_KEY}


def config_fragment(mock: AnthropicMock) -> dict[str, Any]:
    main = {"type": "anthropic", "api_base": mock.url, "api_key": "${TEST_ANTHROPIC_KEY}"}
    return {
        "providers": {
            "anthropic-main": main,
            # api_base already ending in /v1 must not produce /v1/v1/messages.
            "anthropic-v1-base": {**main, "api_base": f"{mock.url}/v1"},
        },
        "models": {
            "claude": {
                "deployments": [{"provider": "anthropic-main", "model": "claude-3-5-haiku-latest"}]
            },
            "claude-extras": {
                "deployments": [{"provider": "anthropic-main", "model": "claude-3-5-haiku-latest"}],
                "extra_params": ["top_k", "thinking"],
            },
            "claude-v1-base": {
                "deployments": [
                    {"provider": "anthropic-v1-base", "model": "claude-3-5-haiku-latest"}
                ]
            },
            # Two deployments on one provider: an overloaded first one moves on to the second.
            "claude-fallback": {
                "deployments": [
                    {"provider": "anthropic-main", "model": "claude-3-5-haiku-latest"},
                    {"provider": "anthropic-main", "model": "claude-3-5-sonnet-latest"},
                ]
            },
        },
    }
