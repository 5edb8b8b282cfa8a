"""A mock of OpenAI's API (and Azure OpenAI's deployment routes), per the public reference:
chat completions (JSON and SSE chunks, tool-call deltas, include_usage), embeddings (float
and base64), models, the Responses API (responses_api.py), images and audio
(openai_media.py), text completions, moderations and vLLM's rerank (openai_text.py), and
the documented error objects.

Triggers in the last user message: "trigger context overflow" -> 400
context_length_exceeded; "trigger content filter" -> Azure's 400 content_filter.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from typing import Any

from aiohttp import web

from tests.mocks.brain import Conversation, Reply, Tool, reply
from tests.mocks.openai_media import MediaAPI
from tests.mocks.openai_text import TextAPI
from tests.mocks.responses_api import ResponsesAPI
from tests.mocks.server import MockUpstream, sse


def openai_error(
    status: int,
    message: str,
    type_: str,
    code: str | None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": type_, "param": param, "code": code}},
        status=status,
        headers=headers,
    )


def conversation(body: dict[str, Any]) -> Conversation:
    conv = Conversation()
    for message in body.get("messages", []):
        role = message.get("role")
        content = message.get("content")
        texts: list[str] = []
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    texts.append(part["text"])
                elif part.get("type") == "image_url":
                    conv.images += 1
        conv.all_text.extend(texts)
        if role == "user":
            conv.last_user_text = " ".join(texts)
            conv.last_tool_result = None
        elif role == "tool":
            conv.last_tool_result = " ".join(texts)
        elif role in ("system", "developer"):
            conv.system = " ".join(texts)
        else:
            conv.last_tool_result = None
    for tool in body.get("tools") or []:
        fn = tool.get("function", {})
        conv.tools.append(Tool(fn.get("name", ""), fn.get("parameters") or {}))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        conv.tool_choice = choice.get("function", {}).get("name")
    elif isinstance(choice, str):
        conv.tool_choice = choice
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        conv.json_schema = fmt.get("json_schema", {}).get("schema", {})
    elif fmt.get("type") == "json_object":
        conv.json_object = True
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    conv.max_tokens = limit if isinstance(limit, int) else None
    stop = body.get("stop")
    conv.stop = [stop] if isinstance(stop, str) else list(stop or [])
    return conv


def usage_object(out: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": out.prompt_tokens,
        "completion_tokens": out.completion_tokens,
        "total_tokens": out.prompt_tokens + out.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def fake_vector(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % len(digest)] - 128) / 128, 6) for i in range(dims)]


def bow_vector(text: str, dims: int) -> list[float]:
    """A bag-of-words embedding: texts with the same words point the same way, so similarity
    tracks word overlap (for semantic-cache tests). Served for models named `bow-*`."""
    counts = [0.0] * dims
    for word in "".join(c if c.isalnum() else " " for c in text.lower()).split():
        counts[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dims] += 1.0
    norm = sum(v * v for v in counts) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in counts]


class OpenAIMock(MediaAPI, TextAPI, ResponsesAPI, MockUpstream):
    def __init__(self, api_key: str = "sk-test-openai", azure_key: str = "azure-test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.azure_key = azure_key

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.azure_chat)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self.azure_embeddings)
        app.router.add_post("/openai/v1/chat/completions", self.azure_v1_chat)
        self.responses_routes(app)
        self.media_routes(app)
        self.text_routes(app)

    # -- auth ------------------------------------------------------------------------------

    def _check_bearer(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
                None,
            )
        key = auth[len("Bearer ") :]
        if key != self.api_key:
            masked = key[:3] + "*" * 10 + key[-4:]
            return openai_error(
                401,
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
        return None

    def _check_azure(self, request: web.Request, versioned: bool = True) -> web.Response | None:
        if request.headers.get("api-key") != self.azure_key:
            return web.json_response(
                {
                    "error": {
                        "code": "401",
                        "message": "Access denied due to invalid subscription "
                        "key or wrong API endpoint. Make sure to provide a valid key for an "
                        "active subscription and use a correct regional API endpoint for "
                        "your resource.",
                    }
                },
                status=401,
            )
        if versioned and not request.query.get("api-version"):
            return web.json_response(
                {"error": {"code": "404", "message": "Resource not found"}}, status=404
            )
        return None

    # -- chat ------------------------------------------------------------------------------

    async def chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if (denied := self._check_bearer(request)) is not None:
            return denied
        return await self._chat(
            request,
            recorded.body,
            recorded.body.get("model") if isinstance(recorded.body, dict) else None,
        )

    async def azure_chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if (denied := self._check_azure(request)) is not None:
            return denied
        return await self._chat(
            request, recorded.body, request.match_info["deployment"], azure=True
        )

    async def azure_v1_chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if (denied := self._check_azure(request, versioned=False)) is not None:
            return denied
        body = recorded.body if isinstance(recorded.body, dict) else {}
        return await self._chat(request, body, body.get("model"), azure=True)

    async def _chat(
        self, request: web.Request, body: Any, model: str | None, azure: bool = False
    ) -> web.StreamResponse:
        fault = self.take_fault()
        if (answer := await self.apply_fault(request, fault)) is not None:
            return answer
        if not isinstance(body, dict):
            return openai_error(
                400,
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
                None,
            )
        if not model:
            return openai_error(
                400, "you must provide a model parameter", "invalid_request_error", None
            )
        if model == "does-not-exist":
            return openai_error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return openai_error(
                400, "[] is too short - 'messages'", "invalid_request_error", None, "messages"
            )
        conv = conversation(body)
        if "trigger context overflow" in conv.last_user_text:
            return openai_error(
                400,
                "This model's maximum context length is 128000 tokens. However, your "
                "messages resulted in 130000 tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            )
        if azure and "trigger content filter" in conv.last_user_text:
            return web.json_response(
                {
                    "error": {
                        "message": "The response was filtered due to the prompt triggering Azure "
                        "OpenAI's content management policy.",
                        "type": None,
                        "param": "prompt",
                        "code": "content_filter",
                        "status": 400,
                        "innererror": {"code": "ResponsibleAIPolicyViolation"},
                    }
                },
                status=400,
            )
        n = body.get("n") or 1
        outs = [reply(conv) for _ in range(n)]
        completion_id = f"chatcmpl-mock{len(self.requests)}"
        created = int(time.time())
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = self._stream(completion_id, created, model, outs, include_usage, body)
            return await self.stream_events(request, events, fault)
        choices = []
        for index, out in enumerate(outs):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": out.text or None,
                "refusal": None,
                "annotations": [],
            }
            if out.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments_json},
                    }
                    for c in out.tool_calls
                ]
            choice: dict[str, Any] = {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": out.finish,
            }
            if body.get("logprobs"):
                choice["logprobs"] = {
                    "content": [
                        {"token": w, "logprob": -0.1, "bytes": list(w.encode()), "top_logprobs": []}
                        for w in out.text.split()
                    ],
                    "refusal": None,
                }
            choices.append(choice)
        usage = usage_object(outs[0])
        usage["completion_tokens"] = sum(o.completion_tokens for o in outs)
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return web.json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": choices,
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": "fp_mock",
            }
        )

    def _stream(
        self,
        completion_id: str,
        created: int,
        model: str | None,
        outs: list[Reply],
        include_usage: bool,
        body: dict[str, Any],
    ) -> list[bytes]:
        def chunk(choices: list[dict[str, Any]]) -> bytes:
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_mock",
                "choices": choices,
            }
            if include_usage:
                data["usage"] = None
            return sse(data)

        events: list[bytes] = []
        for index, out in enumerate(outs):
            events.append(
                chunk(
                    [
                        {
                            "index": index,
                            "delta": {"role": "assistant", "content": "", "refusal": None},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ]
                )
            )
            for piece in out.text_pieces():
                events.append(
                    chunk(
                        [
                            {
                                "index": index,
                                "delta": {"content": piece},
                                "logprobs": None,
                                "finish_reason": None,
                            }
                        ]
                    )
                )
            for call_index, call in enumerate(out.tool_calls):
                events.append(
                    chunk(
                        [
                            {
                                "index": index,
                                "delta": {
                                    "tool_calls": [
                                        {
                                            "index": call_index,
                                            "id": call.id,
                                            "type": "function",
                                            "function": {"name": call.name, "arguments": ""},
                                        }
                                    ]
                                },
                                "logprobs": None,
                                "finish_reason": None,
                            }
                        ]
                    )
                )
                arguments = call.arguments_json
                half = len(arguments) // 2
                for piece in (arguments[:half], arguments[half:]):
                    events.append(
                        chunk(
                            [
                                {
                                    "index": index,
                                    "delta": {
                                        "tool_calls": [
                                            {"index": call_index, "function": {"arguments": piece}}
                                        ]
                                    },
                                    "logprobs": None,
                                    "finish_reason": None,
                                }
                            ]
                        )
                    )
            events.append(
                chunk(
                    [{"index": index, "delta": {}, "logprobs": None, "finish_reason": out.finish}]
                )
            )
        if include_usage:
            usage = usage_object(outs[0])
            usage["completion_tokens"] = sum(o.completion_tokens for o in outs)
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            events.append(
                sse(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "service_tier": "default",
                        "system_fingerprint": "fp_mock",
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        events.append(b"data: [DONE]\n\n")
        return events

    # -- embeddings ------------------------------------------------------------------------

    async def embeddings(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        if (denied := self._check_bearer(request)) is not None:
            return denied
        return await self._embeddings(request, recorded.body, recorded.body.get("model"))

    async def azure_embeddings(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        if (denied := self._check_azure(request)) is not None:
            return denied
        return await self._embeddings(request, recorded.body, request.match_info["deployment"])

    async def _embeddings(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> web.Response:
        fault = self.take_fault()
        if (answer := await self.apply_fault(request, fault)) is not None:
            return answer  # type: ignore[return-value]
        inputs = body.get("input")
        if isinstance(inputs, str) or (
            isinstance(inputs, list) and inputs and isinstance(inputs[0], int)
        ):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return openai_error(400, "'$.input' is invalid.", "invalid_request_error", None)
        dims = body.get("dimensions") or 8
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += len(text.split())
            vector = bow_vector(text, dims) if model.startswith("bow-") else fake_vector(text, dims)
            if body.get("encoding_format") == "base64":
                embedding: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            else:
                embedding = vector
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        await self.record(request)
        if (denied := self._check_bearer(request)) is not None:
            return denied
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": "gpt-4o-mini",
                        "object": "model",
                        "created": 1721172741,
                        "owned_by": "system",
                    }
                ],
            }
        )


# -- wiring for tests/conftest.py ---------------------------------------------------------------

MOCK_NAME = "openai"
MOCK_CLASS = OpenAIMock
ENV = {"TEST_OPENAI_KEY": "sk-test-openai", "TEST_AZURE_KEY": "azure-test-key"}


def config_fragment(mock: OpenAIMock) -> dict[str, Any]:
    return {
        "providers": {
            "openai-main": {
                "type": "openai",
                "api_base": f"{mock.url}/v1",
                "api_key": "${TEST_OPENAI_KEY}",
            },
            "openai-badkey": {
                "type": "openai",
                "api_base": f"{mock.url}/v1",
                "api_key": "sk-wrong-key-123456",
            },
            "azure-main": {
                "type": "azure",
                "api_base": mock.url,
                "api_key": "${TEST_AZURE_KEY}",
                "api_version": "2024-10-21",
            },
            "azure-v1": {
                "type": "azure",
                "api_base": mock.url,
                "api_key": "${TEST_AZURE_KEY}",
                "api_version": "v1",
            },
            "unreachable": {
                "type": "openai",
                "api_base": "http://127.0.0.1:9/v1",
                "api_key": "sk-x",
                "timeouts": {"connect": 2},
            },
        },
        "models": {
            "gpt-4o-mini": {"deployments": [{"provider": "openai-main", "model": "gpt-4o-mini"}]},
            "text-embedding-3-small": {
                "deployments": [{"provider": "openai-main", "model": "text-embedding-3-small"}]
            },
            "azure-gpt": {
                "deployments": [{"provider": "azure-main", "model": "my-gpt4o-deployment"}]
            },
            "azure-v1-gpt": {"deployments": [{"provider": "azure-v1", "model": "gpt-4o"}]},
            "azure-embed": {
                "deployments": [{"provider": "azure-main", "model": "embed-deployment"}]
            },
            "failover": {
                "deployments": [
                    {"provider": "unreachable", "model": "gpt-4o-mini"},
                    {"provider": "openai-badkey", "model": "gpt-4o-mini"},
                    {"provider": "openai-main", "model": "gpt-4o-mini"},
                ]
            },
            "only-bad-key": {
                "deployments": [{"provider": "openai-badkey", "model": "gpt-4o-mini"}]
            },
            "missing-upstream-model": {
                "deployments": [{"provider": "openai-main", "model": "does-not-exist"}]
            },
            "with-extras": {
                "deployments": [{"provider": "openai-main", "model": "gpt-4o-mini"}],
                "extra_params": ["top_k", "repetition_penalty"],
            },
        },
    }
