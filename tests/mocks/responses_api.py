"""OpenAI's Responses API for the OpenAI mock, per the public reference: `POST /responses`
(JSON, or SSE with the documented event sequence and sequence numbers), stored responses
(`GET` and `DELETE /responses/{id}`, `GET /responses/{id}/input_items`) and
`previous_response_id`, under OpenAI's paths and Azure's (`/openai/v1/...`, and
`/openai/responses?api-version=...`).

It refuses what the real API refuses and a translating gateway could get wrong: unknown
top-level parameters, chat-shaped tools (`{"type": "function", "function": {...}}`), a
function_call_output whose call_id no function_call in the conversation carries, reasoning
items whose encrypted_content the mock did not issue, an unknown previous_response_id.

Reasoning (when `reasoning.effort` is set and not "none") comes first in the output: a
summary when `reasoning.summary` is set, `encrypted_content` when `include` lists
"reasoning.encrypted_content". Triggers in the last user text: "trigger context overflow"
-> 400 context_length_exceeded; "trigger stream error" -> an `error` event then
response.failed after the first text delta; "trigger cache hit" -> cached input tokens.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import time
from typing import Any

from aiohttp import web

from tests.mocks.brain import Conversation, Reply, Tool, reply
from tests.mocks.server import sse

Json = dict[str, Any]
PARAMETERS = frozenset(
    {"background", "conversation", "include", "input", "instructions", "max_output_tokens"}
    | {"max_tool_calls", "metadata", "model", "parallel_tool_calls", "previous_response_id"}
    | {"prompt", "prompt_cache_key", "prompt_cache_retention", "reasoning", "safety_identifier"}
    | {"service_tier", "store", "stream", "stream_options", "temperature", "text"}
    | {"tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user"}
)
_SEAL = b"mock-reasoning-key"
REASONING_TOKENS = 8


class Invalid(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def error_body(status: int, message: str, param: str | None = None, code: str | None = None):
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return web.json_response({"error": error}, status=status)


def seal(item_id: str, summary: str) -> str:
    payload = base64.b64encode(json.dumps([item_id, summary]).encode()).decode()
    return f"gAAAA{payload}.{hashlib.sha256(_SEAL + payload.encode()).hexdigest()[:16]}"


def unsealed(token: Any) -> bool:
    if not isinstance(token, str) or not token.startswith("gAAAA") or "." not in token:
        return False
    payload, _, mac = token[5:].rpartition(".")
    return hashlib.sha256(_SEAL + payload.encode()).hexdigest()[:16] == mac


def normalized(items: Any) -> list[Json]:
    """Input as a list of items, every message typed, with the ids the API gives them."""
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    out = []
    for item in copy.deepcopy(items or []):
        if "role" in item and "type" not in item:
            item["type"] = "message"
        if item["type"] == "message" and isinstance(item.get("content"), str):
            kind = "output_text" if item.get("role") == "assistant" else "input_text"
            item["content"] = [{"type": kind, "text": item["content"]}]
        out.append(item)
    return out


def validate(body: Any, history: list[Json]) -> list[Json]:
    """The conversation's items (history then input); Invalid when the API would refuse."""
    if not isinstance(body, dict):
        raise Invalid("We could not parse the JSON body of your request.")
    for name in body:
        if name not in PARAMETERS:
            raise Invalid(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    if not isinstance(body.get("model"), str):
        raise Invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    for i, tool in enumerate(body.get("tools") or []):
        if tool.get("type") == "function" and not isinstance(tool.get("name"), str):
            raise Invalid(
                f"Missing required parameter: 'tools[{i}].name'.",
                f"tools[{i}].name",
                "missing_required_parameter",
            )
    items = normalized(body.get("input"))
    calls = {i.get("call_id") for i in history + items if i.get("type") == "function_call"}
    for i, item in enumerate(items):
        if item.get("type") == "function_call_output" and item.get("call_id") not in calls:
            raise Invalid(
                f"No tool call found for function call output with call_id {item.get('call_id')}.",
                "input",
            )
        sealed = item.get("encrypted_content")
        if item.get("type") == "reasoning" and sealed is not None and not unsealed(sealed):
            raise Invalid(
                f"The encrypted content for item {item.get('id')} could not be verified.",
                f"input[{i}].encrypted_content",
                "invalid_encrypted_content",
            )
    return history + items


def conversation(body: Json, items: list[Json]) -> Conversation:
    conv = Conversation(system=body.get("instructions") or "")
    for item in items:
        kind, texts = item.get("type"), []
        for part in item.get("content") or []:
            if part.get("type") in ("input_text", "output_text"):
                texts.append(part["text"])
            elif part.get("type") == "input_image":
                conv.images += 1
        conv.all_text.extend(texts)
        if kind == "message" and item.get("role") == "user":
            conv.last_user_text, conv.last_tool_result = " ".join(texts), None
        elif kind == "message" and item.get("role") in ("system", "developer"):
            conv.system = " ".join(texts)
        elif kind == "function_call_output":
            output = item.get("output")
            if isinstance(output, list):
                output = " ".join(p.get("text", "") for p in output)
            conv.last_tool_result = output
            conv.all_text.append(output)
        elif kind in ("message", "function_call"):
            conv.last_tool_result = None
    for tool in body.get("tools") or []:
        if tool.get("type") == "function":
            conv.tools.append(Tool(tool["name"], tool.get("parameters") or {}))
    choice = body.get("tool_choice")
    conv.tool_choice = choice.get("name") if isinstance(choice, dict) else choice
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        conv.json_schema = fmt.get("schema", {})
    conv.json_object = fmt.get("type") == "json_object"
    limit = body.get("max_output_tokens")
    conv.max_tokens = limit if isinstance(limit, int) else None
    return conv


class ResponsesAPI:
    """Mixed into OpenAIMock, whose auth checks and fault handling it uses."""

    def __init__(self) -> None:
        super().__init__()
        self.stored_responses: dict[str, Json] = {}
        self._ids = itertools.count(1)

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]
        self.stored_responses.clear()

    def responses_routes(self, app: web.Application) -> None:
        for prefix in ("/v1", "/openai/v1", "/openai"):
            app.router.add_post(f"{prefix}/responses", self.create_response)
            app.router.add_post(f"{prefix}/responses/input_tokens", self.count_input_tokens)
            app.router.add_get(f"{prefix}/responses/{{id}}", self.get_response)
            app.router.add_delete(f"{prefix}/responses/{{id}}", self.delete_response)
            app.router.add_get(f"{prefix}/responses/{{id}}/input_items", self.input_items)

    def _guard(self, request: web.Request) -> web.Response | None:
        path = request.path
        if path.startswith("/openai/"):
            return self._check_azure(request, versioned=not path.startswith("/openai/v1/"))  # type: ignore[attr-defined]
        return self._check_bearer(request)  # type: ignore[attr-defined]

    def _stored(self, request: web.Request) -> Json | None:
        return self.stored_responses.get(request.match_info["id"])

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_mock{next(self._ids):012d}"

    # -- stored responses --------------------------------------------------------------------

    async def get_response(self, request: web.Request) -> web.Response:
        await self.record(request)  # type: ignore[attr-defined]
        if (denied := self._guard(request)) is not None:
            return denied
        if (stored := self._stored(request)) is None:
            return _not_found(request.match_info["id"])
        return web.json_response(stored["response"])

    async def delete_response(self, request: web.Request) -> web.Response:
        await self.record(request)  # type: ignore[attr-defined]
        if (denied := self._guard(request)) is not None:
            return denied
        if self.stored_responses.pop(request.match_info["id"], None) is None:
            return _not_found(request.match_info["id"])
        return web.json_response(
            {"id": request.match_info["id"], "object": "response", "deleted": True}
        )

    async def input_items(self, request: web.Request) -> web.Response:
        await self.record(request)  # type: ignore[attr-defined]
        if (denied := self._guard(request)) is not None:
            return denied
        if (stored := self._stored(request)) is None:
            return _not_found(request.match_info["id"])
        items = stored["input_items"]
        items = items if request.query.get("order") == "asc" else items[::-1]
        limit = int(request.query.get("limit", 20))
        page = items[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > limit,
            }
        )

    # -- create ----------------------------------------------------------------------------

    async def count_input_tokens(self, request: web.Request) -> web.Response:
        """POST /v1/responses/input_tokens: the input count a response would report."""
        recorded = await self.record(request)  # type: ignore[attr-defined]
        if (denied := self._guard(request)) is not None:
            return denied
        body = recorded.body
        try:
            items = validate({**body, "stream": False}, [])
        except Invalid as exc:
            return error_body(400, exc.message, exc.param, exc.code)
        counted = reply(conversation(body, items)).prompt_tokens
        return web.json_response({"object": "response.input_tokens", "input_tokens": counted})

    async def create_response(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)  # type: ignore[attr-defined]
        if (denied := self._guard(request)) is not None:
            return denied
        fault = self.take_fault()  # type: ignore[attr-defined]
        if (answer := await self.apply_fault(request, fault)) is not None:  # type: ignore[attr-defined]
            return answer
        body = recorded.body
        previous = body.get("previous_response_id") if isinstance(body, dict) else None
        history: list[Json] = []
        if previous is not None:
            if previous not in self.stored_responses:
                return error_body(
                    400,
                    f"Previous response with id '{previous}' not found.",
                    "previous_response_id",
                    "previous_response_not_found",
                )
            history = self.stored_responses[previous]["items"]
        try:
            items = validate(body, history)
        except Invalid as exc:
            return error_body(400, exc.message, exc.param, exc.code)
        if body["model"] == "does-not-exist":
            return error_body(
                404,
                "The model `does-not-exist` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        conv = conversation(body, items)
        if "trigger context overflow" in conv.last_user_text:
            return error_body(
                400,
                "Your input exceeds the context window of this model. Please adjust your input "
                "and try again.",
                "input",
                "context_length_exceeded",
            )
        out = reply(conv)
        response = self._response(body, conv, out)
        if body.get("store") is not False:
            input_items = [
                {"id": i.get("id") or self._new_id("msg"), **i} for i in items[len(history) :]
            ]
            self.stored_responses[response["id"]] = {
                "response": response,
                "input_items": input_items,
                "items": items + response["output"],
            }
        if body.get("stream"):
            events = stream_events(response, out, "trigger stream error" in conv.last_user_text)
            return await self.stream_events(request, events, fault)  # type: ignore[attr-defined]
        return web.json_response(response)

    def _response(self, body: Json, conv: Conversation, out: Reply) -> Json:
        output: list[Json] = []
        reasoning = body.get("reasoning") or {}
        thought = 0
        if reasoning.get("effort") not in (None, "none"):
            item_id = self._new_id("rs")
            text = f"Thinking about: {conv.last_tool_result or conv.last_user_text}"
            item: Json = {"id": item_id, "type": "reasoning", "summary": []}
            if reasoning.get("summary"):
                item["summary"] = [{"type": "summary_text", "text": text}]
            if "reasoning.encrypted_content" in (body.get("include") or []):
                item["encrypted_content"] = seal(item_id, text)
            output.append(item)
            thought = REASONING_TOKENS
        incomplete = out.finish == "length"
        if out.text or not out.tool_calls:
            text_part = {"type": "output_text", "text": out.text, "annotations": [], "logprobs": []}
            output.append(
                {
                    "id": self._new_id("msg"),
                    "type": "message",
                    "status": "incomplete" if incomplete else "completed",
                    "role": "assistant",
                    "content": [text_part],
                }
            )
        for call in out.tool_calls:
            output.append(
                {
                    "id": self._new_id("fc"),
                    "type": "function_call",
                    "status": "completed",
                    "arguments": call.arguments_json,
                    "call_id": call.id,
                    "name": call.name,
                }
            )
        cached = out.prompt_tokens // 2 if "trigger cache hit" in conv.last_user_text else 0
        output_tokens = out.completion_tokens + thought
        text = body.get("text") or {}
        return {
            "id": self._new_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "incomplete" if incomplete else "completed",
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body["model"],
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": text.get("format") or {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": [
                {"description": None, "parameters": None, "strict": True, **tool}
                for tool in body.get("tools") or []
            ],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": {
                "input_tokens": out.prompt_tokens,
                "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": thought},
                "total_tokens": out.prompt_tokens + output_tokens,
            },
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }


def _not_found(response_id: str) -> web.Response:
    return error_body(404, f"Response with id '{response_id}' not found.", None, None)


def stream_events(response: Json, out: Reply, fail: bool) -> list[bytes]:
    """The documented sequence for `response`; `fail` ends it after the first text delta."""
    numbers = itertools.count()
    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append(sse({"type": kind, "sequence_number": next(numbers), **fields}, kind))

    shell = {**response, "status": "in_progress", "output": [], "usage": None}
    shell["incomplete_details"] = None
    emit("response.created", response=shell)
    emit("response.in_progress", response=shell)
    for index, item in enumerate(response["output"]):
        at = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
            for k, part in enumerate(item["summary"]):
                on = {**at, "summary_index": k}
                emit("response.reasoning_summary_part.added", **on, part={**part, "text": ""})
                for piece in words(part["text"]):
                    emit("response.reasoning_summary_text.delta", **on, delta=piece)
                emit("response.reasoning_summary_text.done", **on, text=part["text"])
                emit("response.reasoning_summary_part.done", **on, part=part)
        elif item["type"] == "message":
            started = {**item, "status": "in_progress", "content": []}
            emit("response.output_item.added", output_index=index, item=started)
            part, on = item["content"][0], {**at, "content_index": 0}
            emit("response.content_part.added", **on, part={**part, "text": ""})
            for piece in out.text_pieces():
                emit("response.output_text.delta", **on, delta=piece, logprobs=[])
                if fail:
                    error = {"code": "server_error", "message": "The server had an error."}
                    emit("error", **error, param=None)
                    emit("response.failed", response={**shell, "status": "failed", "error": error})
                    return events
            emit("response.output_text.done", **on, text=part["text"], logprobs=[])
            emit("response.content_part.done", **on, part=part)
        else:
            started = {**item, "status": "in_progress", "arguments": ""}
            emit("response.output_item.added", output_index=index, item=started)
            half = len(item["arguments"]) // 2
            for piece in (item["arguments"][:half], item["arguments"][half:]):
                emit("response.function_call_arguments.delta", **at, delta=piece)
            emit("response.function_call_arguments.done", **at, arguments=item["arguments"])
        emit("response.output_item.done", output_index=index, item=item)
    terminal = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
    emit(terminal, response=response)
    return events


def words(text: str) -> list[str]:
    return [w if i == 0 else " " + w for i, w in enumerate(text.split(" "))]
