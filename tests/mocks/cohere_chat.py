"""Cohere's chat (v2), embed (v2) and model list (v1), for the Cohere mock, per the public
reference and the `cohere` SDK's types: requests are validated as Cohere does (unknown
fields, roles, ranges, tool_choice, response_format beside tools or documents, tool results
that answer no call, empty assistant turns, input_type and embedding_types for embeddings),
answers carry text and thinking content, tool plans and calls, citations of `documents`,
`finish_reason` and usage in billed units and tokens; streams send Cohere's event types.

Triggers in the last user text: "trigger context overflow" -> 400 too many tokens; "trigger
stream error" -> a stream that ends with finish_reason ERROR; "think hard" -> thinking
content (unless `thinking.type` is disabled).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from tests.mocks.brain import Conversation, Reply, Tool, count_tokens, reply
from tests.mocks.openai_mock import fake_vector
from tests.mocks.server import sse

CHAT_FIELDS = frozenset(
    {"model", "messages", "tools", "strict_tools", "documents", "citation_options"}
    | {"response_format", "safety_mode", "max_tokens", "stop_sequences", "temperature", "seed"}
    | {"frequency_penalty", "presence_penalty", "k", "p", "logprobs", "tool_choice"}
    | {"thinking", "priority", "stream"}
)
EMBED_FIELDS = frozenset(
    {"model", "input_type", "texts", "images", "inputs", "max_tokens", "output_dimension"}
    | {"embedding_types", "truncate", "priority"}
)
TEMPLATE_TOKENS = 11  # Cohere's own prompt template: counted in tokens, not billed
THINKING = "The user wants an answer; I think it through first."
MODELS = [
    {"name": "command-a-03-2025", "endpoints": ["chat"], "context_length": 256000},
    {"name": "command-r7b-12-2024", "endpoints": ["chat"], "context_length": 128000},
    {"name": "embed-v4.0", "endpoints": ["embed"], "context_length": 128000},
    {"name": "rerank-v3.5", "endpoints": ["rerank"], "context_length": 4096},
]


def cohere_error(status: int, message: str) -> web.Response:
    return web.json_response({"id": str(uuid.uuid4()), "message": message}, status=status)


def invalid(message: str) -> web.Response:
    return cohere_error(400, f"invalid request: {message}")


def check_chat(body: dict[str, Any]) -> str | None:
    """What Cohere would refuse in this body, or None."""
    for name in body:
        if name not in CHAT_FIELDS:
            return f"unknown field: parameter {name} is not a valid field"
    if not body.get("model"):
        return "model must be specified"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must not be empty"
    called: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "user", "assistant", "tool"):
            return f"messages[{index}]: invalid role {role!r}"
        if role == "assistant":
            if not (message.get("content") or message.get("tool_calls")):
                return f"messages[{index}]: assistant message must have content or tool calls"
            for call in message.get("tool_calls") or []:
                called.add(call["id"])
                json.loads(call["function"]["arguments"])
        if role == "tool" and message.get("tool_call_id") not in called:
            return f"messages[{index}]: tool_call_id does not match any tool call"
    p = body.get("p")
    if p is not None and not 0.01 <= p <= 0.99:
        return "p must be between 0.01 and 0.99"
    for name in ("frequency_penalty", "presence_penalty"):
        if body.get(name) is not None and not 0 <= body[name] <= 1:
            return f"{name} must be between 0 and 1"
    if len(body.get("stop_sequences") or []) > 5:
        return "stop_sequences can contain at most 5 items"
    if body.get("tool_choice") not in (None, "REQUIRED", "NONE"):
        return "tool_choice must be one of REQUIRED, NONE"
    if body.get("tool_choice") and not body.get("tools"):
        return "tool_choice requires tools"
    fmt = body.get("response_format")
    if fmt and fmt.get("type") != "text" and (body.get("tools") or body.get("documents")):
        return "response_format is not supported with tools or documents"
    for tool in body.get("tools") or []:
        if "parameters" not in (tool.get("function") or {}):
            return "tools: function.parameters is required"
    return None


def conversation(body: dict[str, Any]) -> Conversation:
    conv = Conversation()
    for message in body["messages"]:
        content = message.get("content")
        texts = [content] if isinstance(content, str) else []
        for part in content if isinstance(content, list) else []:
            if part.get("type") == "text":
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                conv.images += 1
        conv.all_text.extend(texts)
        role = message["role"]
        if role == "user":
            conv.last_user_text, conv.last_tool_result = " ".join(texts), None
        elif role == "tool":
            conv.last_tool_result = " ".join(texts)
        elif role == "system":
            conv.system = " ".join(texts)
        else:
            conv.last_tool_result = None
    for tool in body.get("tools") or []:
        conv.tools.append(Tool(tool["function"]["name"], tool["function"]["parameters"]))
    conv.tool_choice = {"REQUIRED": "required", "NONE": "none"}.get(body.get("tool_choice"))
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_object":
        conv.json_schema = fmt.get("json_schema")
        conv.json_object = conv.json_schema is None
    conv.max_tokens = body.get("max_tokens")
    conv.stop = list(body.get("stop_sequences") or [])
    return conv


class CohereChatAPI:
    """Mixed into CohereMock (which provides the key, record and faults)."""

    def chat_routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/chat", self.chat)
        app.router.add_post("/v2/embed", self.embed)
        app.router.add_get("/v1/models", self.models)

    def _denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":  # type: ignore[attr-defined]
            return cohere_error(401, "invalid api token")
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)  # type: ignore[attr-defined]
        if (denied := self._denied(request)) is not None:
            return denied
        fault = self.take_fault()  # type: ignore[attr-defined]
        if (answer := await self.apply_fault(request, fault)) is not None:  # type: ignore[attr-defined]
            return answer
        body = recorded.body
        if not isinstance(body, dict):
            return invalid("body must be a JSON object")
        if (problem := check_chat(body)) is not None:
            return invalid(problem)
        if body["model"] == "does-not-exist":
            return cohere_error(
                404,
                f"model '{body['model']}' not found, make sure the correct model ID was used and that you have access to the model.",
            )
        conv = conversation(body)
        if "trigger context overflow" in conv.last_user_text:
            return invalid(
                "too many tokens: total number of tokens in the prompt cannot exceed 256000 "
                "- received 300012. Try using a shorter prompt or enabling prompt truncating."
            )
        out = reply(conv)
        thinking = "think hard" in conv.last_user_text and (
            (body.get("thinking") or {}).get("type") != "disabled"
        )
        answer_id = str(uuid.uuid4())
        if body.get("stream"):
            events = stream_events(answer_id, out, body, thinking, conv)
            return await self.stream_events(request, events, fault)  # type: ignore[attr-defined]
        return web.json_response(message_answer(answer_id, out, body, thinking))

    async def embed(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)  # type: ignore[attr-defined]
        if (denied := self._denied(request)) is not None:
            return denied
        fault = self.take_fault()  # type: ignore[attr-defined]
        if (answer := await self.apply_fault(request, fault)) is not None:  # type: ignore[attr-defined]
            return answer
        body = recorded.body
        for name in body:
            if name not in EMBED_FIELDS:
                return invalid(f"unknown field: parameter {name} is not a valid field")
        if not body.get("input_type"):
            return invalid("input_type is required for embed-v4.0 and newer models")
        if not body.get("embedding_types"):
            return invalid("embedding_types must be specified")
        texts = body.get("texts") or []
        if not texts or len(texts) > 96:
            return invalid("texts must contain between 1 and 96 items")
        dims = body.get("output_dimension") or 8
        vectors = {kind: [fake_vector(t, dims) for t in texts] for kind in body["embedding_types"]}
        return web.json_response(
            {
                "id": str(uuid.uuid4()),
                "embeddings": vectors,
                "texts": texts,
                "meta": {
                    "api_version": {"version": "2"},
                    "billed_units": {"input_tokens": float(sum(count_tokens(t) for t in texts))},
                },
                "response_type": "embeddings_by_type",
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        await self.record(request)  # type: ignore[attr-defined]
        if (denied := self._denied(request)) is not None:
            return denied
        size = int(request.query.get("page_size") or 1000)
        start = int(request.query.get("page_token") or 0)
        endpoint = request.query.get("endpoint")
        listed = [m for m in MODELS if endpoint is None or endpoint in m["endpoints"]]
        page = [
            {**m, "finetuned": False, "default_endpoints": [], "features": ["tools"]}
            for m in listed[start : start + size]
        ]
        following = start + size
        answer: dict[str, Any] = {"models": page}
        if following < len(listed):
            answer["next_page_token"] = str(following)
        return web.json_response(answer)


def usage(out: Reply) -> dict[str, Any]:
    billed = {
        "input_tokens": float(out.prompt_tokens),
        "output_tokens": float(out.completion_tokens),
    }
    return {
        "billed_units": billed,
        "tokens": {
            "input_tokens": float(out.prompt_tokens + TEMPLATE_TOKENS),
            "output_tokens": float(out.completion_tokens),
        },
        "cached_tokens": 0.0,
    }


FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"}


def _calls(out: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{c.name}_{uuid.uuid5(uuid.NAMESPACE_URL, c.id).hex[:12]}",
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments_json},
        }
        for c in out.tool_calls
    ]


def _citations(out: Reply, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer's first word cites each document given."""
    documents = body.get("documents") or []
    if not documents or not out.text:
        return []
    first = out.text.split(" ")[0]
    sources = []
    for index, document in enumerate(documents):
        if isinstance(document, str):
            document = {"data": {"text": document}}
        doc_id = document.get("id") or f"doc:{index}"
        sources.append(
            {"type": "document", "id": doc_id, "document": {"id": doc_id, **document["data"]}}
        )
    return [
        {
            "start": 0,
            "end": len(first),
            "text": first,
            "sources": sources,
            "content_index": 0,
            "type": "TEXT_CONTENT",
        }
    ]


def message_answer(
    answer_id: str, out: Reply, body: dict[str, Any], thinking: bool
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant"}
    content = [{"type": "thinking", "thinking": THINKING}] if thinking else []
    if out.text:
        content.append({"type": "text", "text": out.text})
    if content:
        message["content"] = content
    if out.tool_calls:
        message["tool_plan"] = "I will call the tools."
        message["tool_calls"] = _calls(out)
    if citations := _citations(out, body):
        for citation in citations:
            citation["content_index"] = len(content) - 1
        message["citations"] = citations
    return {
        "id": answer_id,
        "finish_reason": FINISH[out.finish],
        "message": message,
        "usage": usage(out),
    }


def stream_events(
    answer_id: str, out: Reply, body: dict[str, Any], thinking: bool, conv: Conversation
) -> list[bytes]:
    def event(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, **fields}, event=kind)

    events = [event("message-start", id=answer_id, delta={"message": {"role": "assistant"}})]
    index = 0
    if thinking:
        events.append(
            event(
                "content-start",
                index=0,
                delta={"message": {"content": {"type": "thinking", "thinking": ""}}},
            )
        )
        for piece in Reply(text=THINKING).text_pieces():
            delta = {"message": {"content": {"thinking": piece}}}
            events.append(event("content-delta", index=0, delta=delta))
        events.append(event("content-end", index=0))
        index = 1
    if out.tool_calls:
        for piece in ("I will ", "call the tools."):
            events.append(event("tool-plan-delta", delta={"message": {"tool_plan": piece}}))
        for i, call in enumerate(_calls(out)):
            start = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
            events.append(
                event("tool-call-start", index=i, delta={"message": {"tool_calls": start}})
            )
            arguments = call["function"]["arguments"]
            for j in range(0, len(arguments), 5):
                piece = arguments[j : j + 5]
                delta = {"message": {"tool_calls": {"function": {"arguments": piece}}}}
                events.append(event("tool-call-delta", index=i, delta=delta))
            events.append(event("tool-call-end", index=i))
    if out.text:
        start = {"message": {"content": {"type": "text", "text": ""}}}
        events.append(event("content-start", index=index, delta=start))
        for piece in out.text_pieces():
            delta = {"message": {"content": {"text": piece}}}
            events.append(event("content-delta", index=index, delta=delta))
        for citation in _citations(out, body):
            citation["content_index"] = index
            events.append(
                event("citation-start", index=0, delta={"message": {"citations": citation}})
            )
            events.append(event("citation-end", index=0))
        events.append(event("content-end", index=index))
    if "trigger stream error" in conv.last_user_text:
        end = {"finish_reason": "ERROR", "error": "internal error during generation"}
        events.append(event("message-end", id=answer_id, delta=end))
        return events
    end = {"finish_reason": FINISH[out.finish], "usage": usage(out)}
    events.append(event("message-end", id=answer_id, delta=end))
    return events
