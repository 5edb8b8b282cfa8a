"""A mock of the Google AI Gemini API (v1beta), per the public reference: generateContent,
streamGenerateContent (SSE with `alt=sse`, a JSON array otherwise), batchEmbedContents,
image generation (gemini_images.py),
the `x-goog-api-key` header, and Google's error objects. Requests are validated as the real
API does (see gemini_checks); Gemini 3 models demand their thought signatures back.

Triggers in the last user text: "trigger context overflow" -> 400 INVALID_ARGUMENT token
limit; "trigger safety" -> finishReason SAFETY without content; "trigger blocked prompt" ->
promptFeedback.blockReason without candidates; "trigger quota" -> 429 RESOURCE_EXHAUSTED
with RetryInfo; "think hard" -> a thought part and thoughtsTokenCount.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from aiohttp import web

from tests.mocks import gemini_images
from tests.mocks.brain import Conversation, Reply, Tool, count_tokens, reply
from tests.mocks.gemini_checks import SIGNATURE_PREFIX, check_request
from tests.mocks.openai_mock import fake_vector
from tests.mocks.server import MockUpstream, sse

FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
MODEL_VERSIONS = {"gemini-2.0-flash": "gemini-2.0-flash-001"}
SIGNING_MODELS = ("gemini-2.5", "gemini-3")  # thinking models sign their function calls
THOUGHTS_TOKENS = 7
SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
]


def google_error(
    code: int, status: str, message: str, details: list[Any] | None = None
) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=code)


def conversation(body: dict[str, Any]) -> Conversation:
    conv = Conversation()
    for content in body["contents"]:
        user_texts: list[str] = []
        for part in content["parts"]:
            if isinstance(part.get("text"), str) and not part.get("thought"):
                conv.all_text.append(part["text"])
                if content.get("role", "user") == "user":
                    user_texts.append(part["text"])
                    conv.last_tool_result = None
            mime = (part.get("inlineData") or part.get("fileData") or {}).get("mimeType", "")
            conv.images += mime.startswith("image/")
            if response := (part.get("functionResponse") or {}).get("response"):
                only = list(response) == ["result"]
                conv.last_tool_result = str(response["result"]) if only else json.dumps(response)
        if user_texts:
            conv.last_user_text = " ".join(user_texts)
        if content.get("role") == "model":
            conv.last_tool_result = None
    system = body.get("systemInstruction") or {}
    conv.system = " ".join(p["text"] for p in system.get("parts", []))
    for tool in body.get("tools") or []:
        for decl in tool.get("functionDeclarations", []):
            schema = decl.get("parametersJsonSchema") or decl.get("parameters") or {}
            conv.tools.append(Tool(decl["name"], schema))
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig", {})
    names = calling.get("allowedFunctionNames") or []
    conv.tool_choice = {"NONE": "none", "AUTO": "auto"}.get(calling.get("mode", "AUTO"))
    if calling.get("mode") == "ANY":
        conv.tool_choice = names[0] if len(names) == 1 else "required"
    config = body.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        conv.json_schema, conv.json_object = schema, schema is None
    conv.max_tokens = config.get("maxOutputTokens")
    conv.stop = list(config.get("stopSequences") or [])
    return conv


def signature(name: str) -> str:
    return base64.b64encode(SIGNATURE_PREFIX + name.encode()).decode()


class GeminiMock(MockUpstream):
    def __init__(self, api_key: str = "AIza-test-gemini-key-000000000") -> None:
        super().__init__()
        self.api_key = api_key

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{version:v1|v1beta|v1alpha}/models/{model_action}", self.dispatch)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if (denied := self._check_key(request)) is not None:
            return denied
        fault = self.take_fault()
        if (answer := await self.apply_fault(request, fault)) is not None:
            return answer
        model, _, action = request.match_info["model_action"].partition(":")
        if model == "does-not-exist" or action not in (
            "generateContent",
            "streamGenerateContent",
            "batchEmbedContents",
            "predict",
        ):
            return google_error(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for "
                f"{action}. Call ListModels to see the list of available models and their "
                "supported methods.",
            )
        if action == "batchEmbedContents":
            return self.embed(recorded.body, model)
        if action == "predict":
            return gemini_images.predict(recorded.body, model)
        if action == "generateContent" and "-image" in model:
            return gemini_images.generate_image(recorded.body, model)
        return await self.generate(request, recorded.body, model, action, fault)

    def _check_key(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return google_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if key != self.api_key:
            message = "API key not valid. Please pass a valid API key."
            return google_error(
                400,
                "INVALID_ARGUMENT",
                message,
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                        "locale": "en-US",
                        "message": message,
                    },
                ],
            )
        return None

    # -- generateContent -------------------------------------------------------------------

    async def generate(
        self, request: web.Request, body: Any, model: str, action: str, fault: Any
    ) -> web.StreamResponse:
        if (problem := check_request(body, model)) is not None:
            return google_error(400, "INVALID_ARGUMENT", problem)
        conv = conversation(body)
        if (refusal := self._trigger(conv)) is not None:
            return refusal
        responses = self._responses(body, conv, model, streamed=action != "generateContent")
        if action == "generateContent":
            return web.json_response(responses[0])
        if request.query.get("alt") == "sse":
            return await self.stream_events(request, [sse(r) for r in responses], fault)
        return web.json_response(responses)  # without alt=sse: one JSON array

    @staticmethod
    def _trigger(conv: Conversation) -> web.Response | None:
        text = conv.last_user_text
        if "trigger context overflow" in text:
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed "
                "(1048576).",
            )
        if "trigger quota" in text:
            return google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [
                            {
                                "quotaMetric": "generativelanguage.googleapis.com/"
                                "generate_content_free_tier_requests",
                                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                                "quotaValue": "10",
                            }
                        ],
                    },
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"},
                ],
            )
        return None

    def _responses(
        self, body: dict[str, Any], conv: Conversation, model: str, streamed: bool
    ) -> list[dict[str, Any]]:
        """The GenerateContentResponse objects to send: one, or a stream of them."""
        envelope = {"modelVersion": MODEL_VERSIONS.get(model, model), "responseId": _rid()}
        thinking = "think hard" in conv.last_user_text
        if "trigger blocked prompt" in conv.last_user_text:
            prompt = sum(count_tokens(t) for t in conv.all_text)
            return [
                {
                    "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": SAFETY_RATINGS},
                    "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt},
                    **envelope,
                }
            ]
        count = (body.get("generationConfig") or {}).get("candidateCount") or 1
        outs = [reply(conv) for _ in range(count)]
        usage = _usage(outs, thinking)
        if "trigger safety" in conv.last_user_text:
            blocked = {"finishReason": "SAFETY", "index": 0, "safetyRatings": SAFETY_RATINGS}
            return [{"candidates": [blocked], "usageMetadata": usage, **envelope}]
        signs = model.startswith(SIGNING_MODELS)
        if not streamed:
            candidates = [
                {
                    "content": {"parts": _parts(out, thinking, signs), "role": "model"},
                    "finishReason": FINISH[out.finish],
                    "index": index,
                    "safetyRatings": SAFETY_RATINGS[:1],
                }
                for index, out in enumerate(outs)
            ]
            return [{"candidates": candidates, "usageMetadata": usage, **envelope}]
        partial = {"promptTokenCount": usage["promptTokenCount"]}
        partial["totalTokenCount"] = partial["promptTokenCount"]
        events: list[dict[str, Any]] = []
        for index, out in enumerate(outs):
            pieces = [[{"text": "Let me think about it.", "thought": True}]] if thinking else []
            pieces += [[{"text": piece}] for piece in out.text_pieces()]
            if out.tool_calls:
                pieces.append(_parts(Reply(tool_calls=out.tool_calls), False, signs))
            candidates = [
                {"content": {"parts": parts, "role": "model"}, "index": index} for parts in pieces
            ] or [{"index": index}]
            candidates[-1]["finishReason"] = FINISH[out.finish]
            events += [
                {"candidates": [c], "usageMetadata": partial, **envelope} for c in candidates
            ]
        events[-1]["usageMetadata"] = usage
        return events

    # -- embeddings ------------------------------------------------------------------------

    def embed(self, body: Any, model: str) -> web.Response:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests or len(requests) > 100:
            return google_error(
                400, "INVALID_ARGUMENT", "* BatchEmbedContentsRequest.requests: 1 to 100 requests"
            )
        embeddings = []
        for index, item in enumerate(requests):
            if item.get("model") != f"models/{model}":
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    f"* BatchEmbedContentsRequest.requests[{index}].model: the model must match "
                    f"the request URL (models/{model})",
                )
            parts = (item.get("content") or {}).get("parts") or []
            text = " ".join(p.get("text", "") for p in parts)
            dims = item.get("outputDimensionality") or 8
            embeddings.append({"values": fake_vector(text, dims)})
        return web.json_response({"embeddings": embeddings})


def _parts(out: Reply, thinking: bool, signs: bool) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if thinking:
        parts.append({"text": "Let me think about it.", "thought": True})
    if out.text:
        parts.append({"text": out.text})
    for position, call in enumerate(out.tool_calls):
        part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.arguments}}
        if signs and position == 0:  # Gemini signs the first call of each step
            part["thoughtSignature"] = signature(call.name)
        parts.append(part)
    return parts


def _usage(outs: list[Reply], thinking: bool) -> dict[str, Any]:
    prompt = outs[0].prompt_tokens
    candidates = sum(o.completion_tokens for o in outs)
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": candidates}
    if thinking:
        usage["thoughtsTokenCount"] = THOUGHTS_TOKENS
    usage["totalTokenCount"] = prompt + candidates + usage.get("thoughtsTokenCount", 0)
    return usage


def _rid() -> str:
    return uuid.uuid4().hex[:22]


# -- wiring for tests/conftest.py ---------------------------------------------------------------

MOCK_NAME = "gemini"
MOCK_CLASS = GeminiMock
ENV = {"TEST_GEMINI_KEY": "AIza-test-gemini-key-000000000"}


def config_fragment(mock: GeminiMock) -> dict[str, Any]:
    def alias(provider: str, model: str, **extra: Any) -> dict[str, Any]:
        return {"deployments": [{"provider": provider, "model": model}], **extra}

    return {
        "providers": {
            "gemini-main": {
                "type": "gemini",
                "api_base": mock.url,
                "api_key": "${TEST_GEMINI_KEY}",
            },
            "gemini-badkey": {
                "type": "gemini",
                "api_base": mock.url,
                "api_key": "AIza-wrong-key-0000000000000000000",
            },
        },
        "models": {
            "gemini-flash": alias("gemini-main", "gemini-2.0-flash"),
            "gemini-3": alias("gemini-main", "gemini-3-pro-preview"),
            "gemini-embed": alias("gemini-main", "text-embedding-004"),
            "gemini-extras": alias(
                "gemini-main", "gemini-2.0-flash", extra_params=["top_k", "safety_settings"]
            ),
            "gemini-failover": {
                "deployments": [
                    {"provider": "gemini-badkey", "model": "gemini-2.0-flash"},
                    {"provider": "gemini-main", "model": "gemini-2.0-flash"},
                ]
            },
        },
    }
