"""One mock for the OpenAI-compatible hosts (OpenRouter, Groq, Together, Fireworks, DeepSeek,
Ollama, vLLM, Portkey, Featherless, Chutes, Mistral, xAI and a NIM-like generic host), each
under `/{host}/v1/` with its quirks (compat_hosts.py): the fields it refuses, its key header,
where it puts reasoning (`reasoning` or `reasoning_content`), where a stream's usage goes,
its usage details (DeepSeek's cache hits, xAI's reasoning tokens outside completion_tokens
and its charge in ticks, OpenRouter's cost), Mistral's tool-call ids, thinking chunks and
error shape, and its model list.

Triggers in the last user text: "think hard" -> reasoning text and reasoning tokens.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from tests.mocks.brain import Reply, reply
from tests.mocks.compat_hosts import (
    HOSTS,
    OPENAI_FIELDS,
    REASONING,
    REASONING_TOKENS,
    Host,
    host_check,
)
from tests.mocks.openai_mock import conversation, fake_vector, usage_object
from tests.mocks.server import MockUpstream, sse


def error(host: Host, status: int, message: str) -> web.Response:
    if host.error_shape == "mistral":
        body: dict[str, Any] = {
            "object": "error",
            "message": message,
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
        return web.json_response(body, status=status)
    return web.json_response(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
        status=status,
    )


def mistral_validation(name: str) -> web.Response:
    detail = [
        {
            "type": "extra_forbidden",
            "loc": ["body", name],
            "msg": "Extra inputs are not permitted",
            "input": None,
        }
    ]
    body = {
        "object": "error",
        "message": {"detail": detail},
        "type": "invalid_request_message_error",
        "param": None,
        "code": None,
    }
    return web.json_response(body, status=422)


class CompatMock(MockUpstream):
    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{host}/v1/chat/completions", self.chat)
        app.router.add_post("/{host}/v1/embeddings", self.embeddings)
        app.router.add_get("/{host}/v1/models", self.models)

    def base(self, host: str) -> str:
        return f"{self.url}/{host}/v1"

    def _host(self, request: web.Request) -> tuple[str, Host] | web.Response:
        name = request.match_info["host"]
        host = HOSTS.get(name)
        if host is None:
            return web.json_response({"error": {"message": "no such host"}}, status=404)
        if host.key is not None:
            given = request.headers.get(host.key_header, "")
            expected = host.key if host.key_header != "authorization" else f"Bearer {host.key}"
            if given != expected:
                return error(host, 401, "Invalid API key")
        return name, host

    async def chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        found = self._host(request)
        if isinstance(found, web.Response):
            return found
        name, host = found
        fault = self.take_fault()
        if (answer := await self.apply_fault(request, fault)) is not None:
            return answer
        body = recorded.body
        allowed = (OPENAI_FIELDS - host.rejects) | host.extra
        for field_name in body:
            if field_name not in allowed:
                if host.error_shape == "mistral":
                    return mistral_validation(field_name)
                return error(host, 400, f"property '{field_name}' is unsupported")
        headers = {k.lower(): v for k, v in request.headers.items()}
        if (problem := host_check(name, body, headers)) is not None:
            return error(host, 400, problem)
        conv = conversation(body)
        out = reply(conv)
        thinking = "think hard" in conv.last_user_text
        usage = host_usage(name, out, thinking)
        model = body["model"]
        if body.get("stream"):
            return await self.stream_events(
                request, stream(name, host, model, out, thinking, usage, body), fault
            )
        message: dict[str, Any] = {"role": "assistant", "content": out.text or None}
        if thinking and name == "mistral" and "magistral" in model:
            message["content"] = [
                {"type": "thinking", "thinking": [{"type": "text", "text": REASONING}]},
                {"type": "text", "text": out.text},
            ]
        elif thinking:
            message[host.reasoning_field] = REASONING
        if out.tool_calls:
            message["tool_calls"] = calls(name, out)
        return web.json_response(
            {
                "id": f"cmpl-{name}-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {"index": 0, "message": message, "finish_reason": out.finish, "logprobs": None}
                ],
                "usage": usage,
            }
        )

    async def embeddings(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        found = self._host(request)
        if isinstance(found, web.Response):
            return found
        name, host = found
        body = recorded.body
        allowed = {"model", "input", "encoding_format", "dimensions", "user"} | host.extra
        for field_name in body:
            if field_name not in allowed:
                return error(host, 400, f"property '{field_name}' is unsupported")
        if body.get("encoding_format") == "base64" and not host.embeddings_base64:
            return error(host, 400, "encoding_format base64 is not supported")
        if name == "nim" and "input_type" not in body:
            return error(host, 400, "input_type is required for asymmetric models")
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(text, 8)}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(len(text.split()) for text in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        await self.record(request)
        found = self._host(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response(found[1].models)


def calls(name: str, out: Reply) -> list[dict[str, Any]]:
    made = []
    for index, call in enumerate(out.tool_calls):
        # Mistral's ids are nine letters and digits; the others keep OpenAI's form.
        call_id = f"T00l{index}Cal"[:9] if name == "mistral" else call.id
        function = {"name": call.name, "arguments": call.arguments_json}
        made.append({"id": call_id, "type": "function", "function": function})
    return made


def host_usage(name: str, out: Reply, thinking: bool) -> dict[str, Any]:
    usage = usage_object(out)
    reasoning = REASONING_TOKENS if thinking else 0
    usage["completion_tokens_details"]["reasoning_tokens"] = reasoning
    if name == "xai":  # reasoning outside completion_tokens; the charge in 1e-10 USD
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"] + reasoning
        usage["cost_in_usd_ticks"] = 1_500_000 * (usage["total_tokens"])
        usage["num_sources_used"] = 0
        return usage
    usage["completion_tokens"] += reasoning
    usage["total_tokens"] += reasoning
    if name == "deepseek":
        del usage["prompt_tokens_details"]
        usage["prompt_cache_hit_tokens"] = 2
        usage["prompt_cache_miss_tokens"] = usage["prompt_tokens"] - 2
    if name == "openrouter":
        usage["cost"] = 0.00042
        usage["cost_details"] = {"upstream_inference_cost": None}
    if name == "groq":
        usage.update(queue_time=0.02, prompt_time=0.001, completion_time=0.004, total_time=0.005)
    return usage


def stream(
    name: str,
    host: Host,
    model: str,
    out: Reply,
    thinking: bool,
    usage: dict[str, Any],
    body: dict[str, Any],
) -> list[bytes]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        data = {
            "id": f"cmpl-{name}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [choice],
        }
        return sse({**data, **extra})

    events = [chunk({"role": "assistant", "content": ""})]
    if thinking and name == "mistral" and "magistral" in model:
        for piece in Reply(text=REASONING).text_pieces():
            parts = [{"type": "thinking", "thinking": [{"type": "text", "text": piece}]}]
            events.append(chunk({"content": parts}))
    elif thinking:
        for piece in Reply(text=REASONING).text_pieces():
            events.append(chunk({host.reasoning_field: piece}))
    for piece in out.text_pieces():
        events.append(chunk({"content": piece}))
    for index, call in enumerate(calls(name, out)):
        start = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        events.append(chunk({"tool_calls": [{"index": index, **start}]}))
        arguments = call["function"]["arguments"]
        events.append(
            chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})
        )
    if host.stream_usage == "x_groq":
        events.append(chunk({}, out.finish, x_groq={"id": "req_01", "usage": usage}))
    elif host.stream_usage == "last":
        events.append(chunk({}, out.finish, usage=usage))
    else:
        events.append(chunk({}, out.finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            data = {
                "id": f"cmpl-{name}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            events.append(sse(data))
    events.append(b"data: [DONE]\n\n")
    return events
