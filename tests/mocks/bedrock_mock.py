"""A mock of Amazon Bedrock Runtime, per the public reference: Converse, ConverseStream,
InvokeModel and InvokeModelWithResponseStream (`/model/{modelId}/...`).

Every request must be signed with SigV4 for service `bedrock` in the mock's region, and the
signature is checked with botocore's own signer (an implementation independent of the
gateway's); the body must match `x-amz-content-sha256`, the date must be within five
minutes, temporary keys need their session token. A Bedrock API key is accepted as a bearer
token instead. Errors are Bedrock's: the `x-amzn-ErrorType` header and `{"message"}`.

Streams are AWS event streams, framed here by the mock's own encoder (not the gateway's):
Converse events, or Anthropic's events wrapped in `chunk` messages ({"bytes": base64}) for
InvokeModelWithResponseStream. Anthropic models (`anthropic.` in the id) are served through
InvokeModel with the Messages body (`anthropic_version: bedrock-2023-05-31`, no `model`),
checked like the Anthropic mock checks it. Titan and Cohere embedding models answer
InvokeModel with their own formats, Nova Canvas and Titan Image Generator with theirs
(bedrock_images).

Triggers in the last user text: "trigger throttling" (429 ThrottlingException), "trigger
context overflow" (400 ValidationException, input too long), "trigger model not ready",
"trigger unavailable", "trigger access denied", "trigger guardrail" (stopReason
guardrail_intervened), "trigger cache hit" (cache read/write usage), "think hard"
(signed reasoning on Converse), and for streams "trigger stream exception" (an exception
message after the first delta), "trigger crc corruption" (a message whose checksum is
wrong), "trigger truncated frame" (the body ends inside a message).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aiohttp import web

from tests.mocks import anthropic_mock, bedrock_converse, bedrock_images
from tests.mocks.bedrock_wire import (
    ACCESS_KEY,
    API_KEY,
    CONTAINER_TOKEN,
    IMDS_TOKEN,
    REGION,
    SECRET_KEY,
    SESSION_TOKEN,
    TEMP_ACCESS_KEY,
    TEMP_SECRET_KEY,
    bedrock_error,
    check_signature,
    chunk_frame,
    event_frame,
    exception_frame,
)
from tests.mocks.openai_mock import fake_vector
from tests.mocks.server import MockUpstream

ANTHROPIC_VERSION = "bedrock-2023-05-31"
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-lite-v1:0"
PLAIN_TRIGGERS = {
    "trigger throttling": (429, "ThrottlingException", "Too many requests, please wait."),
    "trigger context overflow": (
        400,
        "ValidationException",
        "Input is too long for requested model.",
    ),
    "trigger model not ready": (429, "ModelNotReadyException", "Model is not ready for inference."),
    "trigger unavailable": (503, "ServiceUnavailableException", "Service unavailable."),
    "trigger access denied": (
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
}


def accepted_version(value: object) -> bool:
    """The documented `bedrock-2023-05-31`, or a dated API version (Anthropic's SDK sends its
    own, e.g. `2026-10-21`)."""
    return value == ANTHROPIC_VERSION or bool(
        isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
    )


# --- the server ----------------------------------------------------------------------------------


class BedrockMock(MockUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.credential_fetches = 0  # container and instance-metadata credential answers

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/model/{model}/{action}", self.dispatch)
        app.router.add_get("/foundation-models", self.foundation_models)  # ListFoundationModels
        # Where AWS's SDKs get role credentials: the container endpoint and IMDSv2.
        app.router.add_get("/container-credentials", self.container_credentials)
        app.router.add_put("/latest/api/token", self.imds_token)
        app.router.add_get("/latest/meta-data/iam/security-credentials/", self.imds_roles)
        app.router.add_get(
            "/latest/meta-data/iam/security-credentials/{role}", self.imds_credentials
        )

    def reset(self) -> None:
        super().reset()
        self.credential_fetches = 0

    async def foundation_models(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        if (refusal := check_signature(request, recorded.raw)) is not None:
            return refusal
        summary = {"modelId": NOVA, "providerName": "Amazon", "outputModalities": ["TEXT"]}
        return web.json_response({"modelSummaries": [summary]})

    # -- role credentials --------------------------------------------------------------------

    def role_credentials(self, lifetime: float = 6 * 3600) -> web.Response:
        self.credential_fetches += 1
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + lifetime))
        return web.json_response(
            {
                "Code": "Success",
                "AccessKeyId": TEMP_ACCESS_KEY,
                "SecretAccessKey": TEMP_SECRET_KEY,
                "Token": SESSION_TOKEN,
                "Expiration": expiry,
            }
        )

    async def container_credentials(self, request: web.Request) -> web.Response:
        if request.headers.get("authorization") != CONTAINER_TOKEN:
            return web.json_response({"message": "unauthorized"}, status=401)
        return self.role_credentials()

    async def imds_token(self, request: web.Request) -> web.Response:
        if not request.headers.get("x-aws-ec2-metadata-token-ttl-seconds"):
            return web.Response(status=400)
        return web.Response(text=IMDS_TOKEN)

    async def imds_roles(self, request: web.Request) -> web.Response:
        if request.headers.get("x-aws-ec2-metadata-token") != IMDS_TOKEN:
            return web.Response(status=401)
        return web.Response(text="gateway-role")

    async def imds_credentials(self, request: web.Request) -> web.Response:
        if request.headers.get("x-aws-ec2-metadata-token") != IMDS_TOKEN:
            return web.Response(status=401)
        if request.match_info["role"] != "gateway-role":
            return web.Response(status=404)
        return self.role_credentials()

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if (refusal := check_signature(request, recorded.raw)) is not None:
            return refusal
        fault = self.take_fault()
        if (faulted := await self.apply_fault(request, fault)) is not None:
            return faulted
        model, action = request.match_info["model"], request.match_info["action"]
        if model == "does-not-exist":
            return bedrock_error(404, "ResourceNotFoundException", "Model not found.")
        if action in ("converse", "converse-stream"):
            return await self.converse(request, recorded.body, model, action == "converse-stream")
        if action in ("invoke", "invoke-with-response-stream"):
            if "embed" in model:
                return self.embed(recorded.body, model)
            if bedrock_images.is_image_model(model) and action == "invoke":
                return bedrock_images.generate(recorded.body, model, _trigger)
            return await self.invoke(request, recorded.body, model, action != "invoke")
        return bedrock_error(404, "UnknownOperationException", f"unknown operation {action}")

    # -- Converse --------------------------------------------------------------------------

    async def converse(
        self, request: web.Request, body: Any, model: str, stream: bool
    ) -> web.StreamResponse:
        try:
            bedrock_converse.validate(body)
        except bedrock_converse.Invalid as exc:
            return bedrock_error(400, "ValidationException", str(exc))
        conv = bedrock_converse.conversation(body)
        if (refusal := _trigger(conv.last_user_text)) is not None:
            return refusal
        thinking = "think hard" in conv.last_user_text
        out, blocks, stop = bedrock_converse.answer(conv, thinking)
        usage = bedrock_converse.usage(out, conv)
        if not stream:
            return web.json_response(
                {
                    "output": {"message": {"role": "assistant", "content": blocks}},
                    "stopReason": stop,
                    "usage": usage,
                    "metrics": {"latencyMs": 42},
                }
            )
        events = bedrock_converse.stream_events(blocks, out, stop, usage)
        frames = [event_frame(kind, payload) for kind, payload in events]
        return await self.send_frames(request, frames, conv.last_user_text)

    async def send_frames(
        self, request: web.Request, frames: list[bytes], text: str
    ) -> web.StreamResponse:
        if "trigger stream exception" in text:
            frames = [
                *frames[:2],
                exception_frame("modelStreamErrorException", "The model failed."),
            ]
        if "trigger crc corruption" in text:
            damaged = bytearray(frames[1])
            damaged[-1] ^= 0xFF
            frames = [frames[0], bytes(damaged), *frames[2:]]
        if "trigger truncated frame" in text:
            frames = [frames[0], frames[1][: len(frames[1]) // 2]]
        response = web.StreamResponse(
            status=200,
            headers={
                "content-type": "application/vnd.amazon.eventstream",
                "x-amzn-requestid": "mock-request-id",
            },
        )
        await response.prepare(request)
        self.answers.append(b"")
        slot = len(self.answers) - 1
        for piece in frames:
            await response.write(piece)
            self.answers[slot] += piece
        await response.write_eof()
        return response

    # -- InvokeModel for Anthropic models ----------------------------------------------------

    async def invoke(
        self, request: web.Request, body: Any, model: str, stream: bool
    ) -> web.StreamResponse:
        if "anthropic." not in model:
            return bedrock_error(400, "ValidationException", "Malformed input request.")
        if not isinstance(body, dict) or not accepted_version(body.get("anthropic_version")):
            return bedrock_error(
                400, "ValidationException", "anthropic_version: bedrock-2023-05-31 is required"
            )
        for name in ("model", "stream", "metadata"):
            if name in body:
                return bedrock_error(
                    400,
                    "ValidationException",
                    f"Malformed input request: extraneous key [{name}] is not permitted",
                )
        messages_body = {k: v for k, v in body.items() if k != "anthropic_version"}
        try:
            anthropic_mock.validate({**messages_body, "model": model})
        except anthropic_mock.Invalid as exc:
            return bedrock_error(400, "ValidationException", str(exc))
        conv = anthropic_mock.conversation(messages_body)
        if (refusal := _trigger(conv.last_user_text)) is not None:
            return refusal
        out, blocks, reason, stop_sequence = anthropic_mock.answer(
            conv, anthropic_mock.thinking_on(messages_body)
        )
        message = {
            "id": f"msg_bdrk_{len(self.requests)}",
            "type": "message",
            "role": "assistant",
            "model": "claude-3-5-haiku-20241022",
            "content": blocks,
            "stop_reason": reason,
            "stop_sequence": stop_sequence,
            "usage": anthropic_mock.usage(out, conv),
        }
        if not stream:
            return web.json_response(message)
        events = [
            json.loads(line[6:])
            for event in anthropic_mock.stream(message, out, False)
            for line in event.decode().splitlines()
            if line.startswith("data: ")
        ]
        events[-1]["amazon-bedrock-invocationMetrics"] = {
            "inputTokenCount": out.prompt_tokens,
            "outputTokenCount": out.completion_tokens,
            "invocationLatency": 42,
            "firstByteLatency": 21,
        }
        frames = [chunk_frame(event) for event in events]
        return await self.send_frames(request, frames, conv.last_user_text)

    # -- embeddings ------------------------------------------------------------------------

    def embed(self, body: Any, model: str) -> web.Response:
        if "titan-embed" in model:
            if set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"}:
                return bedrock_error(400, "ValidationException", "Malformed input request.")
            dims = body.get("dimensions", 1024)
            if dims not in (256, 512, 1024):
                return bedrock_error(400, "ValidationException", "dimensions: 256, 512 or 1024")
            text = body["inputText"]
            vector = fake_vector(text, dims)
            return web.json_response(
                {
                    "embedding": vector,
                    "inputTextTokenCount": len(text.split()),
                    "embeddingsByType": {"float": vector},
                }
            )
        texts = body.get("texts")
        if not isinstance(texts, list) or body.get("input_type") is None:
            return bedrock_error(400, "ValidationException", "texts and input_type are required")
        return web.json_response(
            {
                "id": "emb-mock",
                "embeddings": [fake_vector(t, 8) for t in texts],
                "texts": texts,
                "response_type": "embeddings_floats",
            }
        )


def _trigger(text: str) -> web.Response | None:
    for trigger, (status, name, message) in PLAIN_TRIGGERS.items():
        if trigger in text:
            return bedrock_error(status, name, message)
    return None


# -- wiring ---------------------------------------------------------------------------------------

MOCK_NAME = "bedrock"
MOCK_CLASS = BedrockMock
ENV = {"TEST_BEDROCK_SECRET": SECRET_KEY}


def config_fragment(mock: BedrockMock) -> dict[str, Any]:
    signed = {"type": "bedrock", "api_base": mock.url, "region": REGION}
    keys = {"aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": "${TEST_BEDROCK_SECRET}"}
    return {
        "providers": {
            "bedrock-main": {**signed, **keys},
            "bedrock-temp": {
                **signed,
                "aws_access_key_id": TEMP_ACCESS_KEY,
                "aws_secret_access_key": TEMP_SECRET_KEY,
                "aws_session_token": SESSION_TOKEN,
            },
            "bedrock-apikey": {**signed, "api_key": API_KEY},
            "bedrock-wrongkey": {
                **signed,
                "aws_access_key_id": ACCESS_KEY,
                "aws_secret_access_key": "not-the-secret",
            },
        },
        "models": {
            "nova": {"deployments": [{"provider": "bedrock-main", "model": NOVA}]},
            "nova-temp": {"deployments": [{"provider": "bedrock-temp", "model": NOVA}]},
            "nova-apikey": {"deployments": [{"provider": "bedrock-apikey", "model": NOVA}]},
            "bedrock-claude": {
                "deployments": [{"provider": "bedrock-main", "model": f"us.{CLAUDE}"}],
                "extra_params": ["thinking"],
            },
            "titan-embed": {
                "deployments": [
                    {"provider": "bedrock-main", "model": "amazon.titan-embed-text-v2:0"}
                ]
            },
            "cohere-embed": {
                "deployments": [{"provider": "bedrock-main", "model": "cohere.embed-english-v3"}]
            },
            "nova-canvas": {
                "deployments": [{"provider": "bedrock-main", "model": bedrock_images.NOVA_CANVAS}]
            },
            "titan-image": {
                "deployments": [{"provider": "bedrock-main", "model": bedrock_images.TITAN_IMAGE}]
            },
            "nova-failover": {
                "deployments": [
                    {"provider": "bedrock-wrongkey", "model": NOVA},
                    {"provider": "bedrock-main", "model": NOVA},
                ]
            },
        },
    }
