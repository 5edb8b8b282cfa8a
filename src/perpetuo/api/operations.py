"""Data-plane routes beside chat: images, audio, rerank, text completions, moderations.
Decode (api/operation_ingress.py), hand to the pipeline (pipeline/operations.py), render:
JSON, the provider's text (transcripts as text, srt, vtt), or a body passed on as it comes
(speech audio, streamed completions)."""

from __future__ import annotations

from perpetuo.api.dataplane import request_tags, response_headers, route_override
from perpetuo.api.http import (
    Request,
    Response,
    StreamingResponse,
    json_response,
)
from perpetuo.api.multipart import boundary_of
from perpetuo.api.operation_ingress import decode_form_request, decode_json_request
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.operations import run_operation
from perpetuo.pipeline.passthrough import OperationStream
from perpetuo.pipeline.runtime import Gateway
from perpetuo.schema import headers as H
from perpetuo.schema import operations as op

Answer = Response | StreamingResponse


async def serve(
    gw: Gateway, request: Request, ctx: RequestContext, operation: str, upload: bool = False
) -> Answer:
    ctx.endpoint, ctx.tags = operation, request_tags(request.headers)
    ctx.principal = await gw.authenticator.authenticate(request.headers, request.client_ip)
    ctx.trace.requested_strategy = route_override(request.headers)
    server = gw.config.server
    if upload:
        content_type = request.headers.get(H.CONTENT_TYPE)
        boundary_of(content_type)  # refuse another format before reading the body
        body = await request.body(server.max_upload_bytes)
        decoded = decode_form_request(operation, body, content_type)
    else:
        body = await request.body(server.max_request_body_bytes)
        decoded = decode_json_request(operation, body)
    result = await run_operation(gw, ctx, decoded)
    headers = response_headers(ctx, result.deployment)
    if isinstance(result, OperationStream):
        head = [(b"content-type", result.content_type.encode()), (b"cache-control", b"no-cache")]
        return StreamingResponse(result.body(), [*head, *headers], on_close=result.on_close)
    answer = result.answer
    if answer.data is not None:
        return json_response(answer.data, headers=headers)
    content_type = answer.content_type.encode("latin-1", "replace")
    return Response(200, answer.text or b"", [(b"content-type", content_type), *headers])


async def images_generations(gw: Gateway, request: Request, ctx: RequestContext) -> Answer:
    return await serve(gw, request, ctx, op.IMAGES_GENERATIONS)


async def images_edits(gw: Gateway, request: Request, ctx: RequestContext) -> Answer:
    return await serve(gw, request, ctx, op.IMAGES_EDITS, upload=True)


async def audio_transcriptions(gw: Gateway, request: Request, ctx: RequestContext) -> Answer:
    return await serve(gw, request, ctx, op.AUDIO_TRANSCRIPTIONS, upload=True)


async def audio_translations(gw: Gateway, request: Request, ctx: RequestContext) -> Answer:
    return await serve(gw, request, ctx, op.AUDIO_TRANSLATIONS, upload=True)


async def audio_speech(gw: Gateway, request: Request, ctx: RequestContext) -> Answer:
    return await serve(gw, request, ctx, op.AUDIO_SPEECH)


async def rerank(gw: Gateway, request: Request, ctx: RequestContext) -> Answer:
    return await serve(gw, request, ctx, op.RERANK)


async def completions(gw: Gateway, request: Request, ctx: RequestContext) -> Answer:
    return await serve(gw, request, ctx, op.COMPLETIONS)


async def moderations(gw: Gateway, request: Request, ctx: RequestContext) -> Answer:
    return await serve(gw, request, ctx, op.MODERATIONS)


# path below the version prefix -> handler (api/asgi.py serves each with and without /v1)
ROUTES = {
    "images/generations": images_generations,
    "images/edits": images_edits,
    "audio/transcriptions": audio_transcriptions,
    "audio/translations": audio_translations,
    "audio/speech": audio_speech,
    "rerank": rerank,
    "completions": completions,
    "moderations": moderations,
}
