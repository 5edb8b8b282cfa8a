"""OpenAI's Responses API as an ingress dialect: `POST /v1/responses` and the stored
responses (`GET`/`DELETE /v1/responses/{id}`, `/input_items`, `/cancel`).

The request goes through the same pipeline as chat. OpenAI and Azure deployments get the
client's body as it is (the native lane: built-in tools and fields the gateway does not
model reach them); the others get the translated chat form and answer as Responses.

Conversation state works for every provider: the gateway keeps each answer with its input
items (per workspace), and a `previous_response_id` is expanded into the whole conversation
for deployments that hold no state. When the previous answer came from an OpenAI deployment
and the same deployment serves the follow-up, the provider's own state is used instead.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs

import msgspec

from perpetuo.api.dataplane import cache_directive, request_tags, response_headers, route_override
from perpetuo.api.dialects.base import DialectRequest
from perpetuo.api.dialects.counting import ESTIMATE, EXACT, count_input_tokens
from perpetuo.api.dialects.openai_responses import errors as response_errors
from perpetuo.api.dialects.openai_responses import request as responses_request
from perpetuo.api.dialects.openai_responses import response as responses_response
from perpetuo.api.dialects.openai_responses.items import listed_item
from perpetuo.api.dialects.openai_responses.stream import StreamEncoder
from perpetuo.api.dialects.sse import dialect_events
from perpetuo.api.http import (
    JSON_TYPE,
    SSE_HEADERS,
    Request,
    Response,
    StreamingResponse,
    json_response,
)
from perpetuo.control.stored_responses import StoredResponse
from perpetuo.metering.tokens import estimate_prompt_tokens
from perpetuo.pipeline.chat import ChatReply, chat_completion
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway
from perpetuo.providers.base import NativeRequest
from perpetuo.providers.openai import RESPONSES
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError, bad_request
from perpetuo.store.timeutil import utcnow

Json = dict[str, Any]
DIALECT = RESPONSES
RETENTION_SETTING = "response_retention_days"
DEFAULT_RETENTION_DAYS = 30
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode
MAX_ID = 80  # stored_responses.id
TERMINAL = ("response.completed", "response.incomplete")


async def create(
    gw: Gateway, request: Request, ctx: RequestContext
) -> Response | StreamingResponse:
    ctx.endpoint, ctx.tags = "responses", request_tags(request.headers)
    ctx.principal = await gw.authenticator.authenticate(request.headers, request.client_ip)
    ctx.trace.requested_strategy = route_override(request.headers)
    ctx.cache_directive = cache_directive(request.headers)
    body = await request.body(gw.config.server.max_request_body_bytes)
    decoded = responses_request.decode(body)
    raw = decoded.raw
    if raw.get("background") is True:
        raise bad_request(
            "Background responses are not supported by this gateway: send the request "
            "without `background` (streaming is supported).",
            param="background",
        )
    workspace_id = ctx.principal.workspace_id
    current_items = input_items(raw)
    decoded, native = await _with_history(gw, workspace_id, decoded, current_items)
    result = await chat_completion(gw, ctx, decoded.chat, {}, native=native)
    headers = response_headers(ctx, result.deployment)
    keep = _keeper(gw, ctx, raw, current_items) if raw.get("store", True) is not False else None
    model = raw["model"]
    if isinstance(result, ChatReply):
        if result.raw is not None:  # an OpenAI deployment's answer, as it sent it
            if keep is not None:
                keep(_decode(result.raw), True)
            return Response(200, result.raw, [JSON_TYPE, *headers])
        answer = responses_response.encode(result.body, ctx.usage, model=model, request=decoded)
        if keep is not None:
            keep(answer, False)
        return json_response(answer, headers=headers)
    encoder = StreamEncoder(model, decoded)
    forwarded = _Forwarded({"id": encoder.id, "model": model})

    def failed(error: GatewayError) -> list[Json]:  # a native stream's failure
        return response_errors.stream_events(
            error, forwarded.response, sequence_number=forwarded.count
        )

    def observe(kind: str, data: str) -> None:  # native events: keep the final response
        forwarded.see(kind, data)
        if keep is not None and kind in TERMINAL:
            final = _decode(data)
            if isinstance(final.get("response"), dict):
                keep(final["response"], True)

    events = dialect_events(result, ctx, _Keeping(encoder, keep), failed, observe)
    return StreamingResponse(events, [*SSE_HEADERS, *headers], on_close=result.on_close)


class _Forwarded:
    """What a native stream has sent so far, so that the failure events replacing the
    provider's continue its numbering and name its response. The provider's response is
    read only if the stream fails (most do not)."""

    def __init__(self, response: Json) -> None:
        self.count = 0
        self._ours = response
        self._created: str | None = None  # response.created's data, as it came

    def see(self, kind: str, data: str) -> None:
        self.count += 1
        if kind == "response.created":
            self._created = data

    @property
    def response(self) -> Json:
        try:
            created = _decode(self._created) if self._created is not None else None
        except msgspec.DecodeError:
            created = None
        if isinstance(created, dict) and isinstance(created.get("response"), dict):
            return created["response"]
        return self._ours


class _Keeping:
    """A StreamEncoder whose final response is stored when the stream completes."""

    def __init__(self, encoder: StreamEncoder, keep: Any) -> None:
        self.encoder, self.keep = encoder, keep

    def feed(self, chunk: Json) -> list[Json]:
        return self.encoder.feed(chunk)

    def finish(self, usage: Any, error: GatewayError | None) -> list[Json]:
        events = self.encoder.finish(usage, error)
        if self.keep is not None:
            for event in events:
                if event.get("type") in TERMINAL and isinstance(event.get("response"), dict):
                    self.keep(event["response"], False)
        return events


def input_items(raw: Json) -> list[Any]:
    """This turn's input as items (a string input is one user message)."""
    given = raw.get("input")
    if isinstance(given, str):
        return [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": given}]}
        ]
    return list(given) if isinstance(given, list) else []


async def _with_history(
    gw: Gateway, workspace_id: str | None, decoded: DialectRequest, current: list[Any]
) -> tuple[DialectRequest, NativeRequest]:
    """The request with its conversation: the chat form and the body for OpenAI
    deployments hold every earlier turn; the deployment that holds the conversation
    itself gets the client's body as it is (pinned)."""
    raw = decoded.raw
    previous = raw.get("previous_response_id")
    if previous is None:
        return decoded, NativeRequest(DIALECT, raw, native_only=tuple(decoded.native_only))
    if not isinstance(previous, str) or not previous:
        raise bad_request(
            "Invalid 'previous_response_id': expected a string.", param="previous_response_id"
        )
    chain = await gw.responses.chain(workspace_id, previous)
    if not chain:
        raise GatewayError(
            400,
            f"Previous response with id '{previous}' not found.",
            type=ErrorType.INVALID_REQUEST,
            code="previous_response_not_found",
            param="previous_response_id",
        )
    history: list[Any] = []
    for stored in chain:
        history.extend(stored.input_items)
        history.extend(_replayable(stored.output_items))
    expanded = {k: v for k, v in raw.items() if k != "previous_response_id"}
    expanded["input"] = [*history, *current]
    # The chat form holds the whole conversation; the answer echoes what the client sent.
    full = responses_request.decode(_encode(expanded))
    full.raw = raw
    last = chain[-1]
    pinned = (last.deployment, raw) if last.upstream_id and last.deployment else None
    native = NativeRequest(DIALECT, expanded, native_only=tuple(full.native_only), pinned=pinned)
    return full, native


def _replayable(items: list[Any]) -> list[Any]:
    """Output items as the next turn's input: message and call ids are dropped (a provider
    may not know ids another provider or the gateway made); reasoning keeps its id, which
    its encrypted content is bound to."""
    out = []
    for item in items:
        if isinstance(item, dict) and item.get("type") != "reasoning":
            item = {k: v for k, v in item.items() if k not in ("id", "status")}
        out.append(item)
    return out


def _keeper(gw: Gateway, ctx: RequestContext, raw: Json, current: list[Any]) -> Any:
    principal = ctx.principal
    assert principal is not None
    days = ctx.workspace.settings.get(RETENTION_SETTING) or DEFAULT_RETENTION_DAYS

    def keep(response: Json, native: bool) -> None:
        response_id = response.get("id")
        if not isinstance(response_id, str) or not 0 < len(response_id) <= MAX_ID:
            return  # a provider's id the store cannot hold: the answer is not kept
        now = utcnow()
        gw.responses.put(
            StoredResponse(
                id=response_id,
                workspace_id=principal.workspace_id,
                key_id=principal.key_id,
                previous_id=raw.get("previous_response_id"),
                alias=ctx.alias or str(raw.get("model")),
                deployment=ctx.deployment.id if ctx.deployment is not None else None,
                upstream_id=response_id if native else None,
                instructions=raw.get("instructions"),
                input_items=current,
                response=response,
                created_at=now,
                expires_at=now + dt.timedelta(days=int(days)),
            )
        )

    return keep


async def input_tokens(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    """POST /v1/responses/input_tokens: exact from an OpenAI deployment of the alias, else
    an estimate of the request's input (marked in x-perpetuo-token-count)."""
    ctx.endpoint = "count_tokens"
    ctx.principal = await gw.authenticator.authenticate(request.headers, request.client_ip)
    body = await request.body(gw.config.server.max_request_body_bytes)
    decoded = responses_request.decode(body)
    native = NativeRequest(DIALECT, decoded.raw, native_only=tuple(decoded.native_only))
    counted = await count_input_tokens(gw, ctx, native, "input_tokens")
    kind = EXACT if counted is not None else ESTIMATE
    if counted is None:
        counted = estimate_prompt_tokens(decoded.chat)
    answer = {"object": "response.input_tokens", "input_tokens": counted}
    return json_response(answer, headers=[kind])


# -- stored responses ----------------------------------------------------------------------


async def stored(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    """GET/DELETE /v1/responses/{id}, GET .../input_items, POST .../cancel."""
    ctx.endpoint = "stored_responses"  # not an inference call: not in the request log
    ctx.principal = await gw.authenticator.authenticate(request.headers, request.client_ip)
    gw.require_scope(ctx.principal, "chat")
    rest = request.path.split("/responses/", 1)[1]
    response_id, _, action = rest.partition("/")
    workspace_id = ctx.principal.workspace_id
    if action == "cancel" and request.method == "POST":
        await _found(gw, workspace_id, response_id)
        raise bad_request(
            "Only background responses can be cancelled, and this gateway does not run any.",
            param="response_id",
        )
    if action == "input_items" and request.method == "GET":
        item = await _found(gw, workspace_id, response_id)
        return json_response(_items_page(item, request.scope.get("query_string", b"")))
    if action or request.method not in ("GET", "DELETE"):
        allowed = (
            "POST" if action == "cancel" else "GET" if action == "input_items" else "GET, DELETE"
        )
        raise GatewayError(
            405,
            f"Method {request.method} is not allowed on {request.path} (allowed: {allowed}).",
            type=ErrorType.INVALID_REQUEST,
            code=ErrorCode.METHOD_NOT_ALLOWED,
            headers={"allow": allowed},
        )
    if request.method == "DELETE":
        if not await gw.responses.delete(workspace_id, response_id):
            raise _not_found(response_id)
        return json_response({"id": response_id, "object": "response.deleted", "deleted": True})
    return json_response((await _found(gw, workspace_id, response_id)).response)


async def _found(gw: Gateway, workspace_id: str | None, response_id: str) -> StoredResponse:
    item = await gw.responses.get(workspace_id, response_id) if response_id else None
    if item is None:
        raise _not_found(response_id)
    return item


def _not_found(response_id: str) -> GatewayError:
    return GatewayError(
        404,
        f"Response with id '{response_id}' not found.",
        type=ErrorType.INVALID_REQUEST,
        code="not_found",
        param="response_id",
    )


def _items_page(item: StoredResponse, query: bytes) -> Json:
    params = {k: v[-1] for k, v in parse_qs(query.decode("latin-1")).items()}
    try:
        limit = min(100, max(1, int(params.get("limit", "20"))))
    except ValueError:
        raise bad_request("Invalid 'limit': expected an integer.", param="limit") from None
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request("Invalid 'order': expected 'asc' or 'desc'.", param="order")
    items = [
        listed_item(entry, f"{item.id}_in{index}") for index, entry in enumerate(item.input_items)
    ]
    if order == "desc":
        items.reverse()
    after = params.get("after")
    if after:
        ids = [entry.get("id") for entry in items if isinstance(entry, dict)]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(items) > limit,
    }
