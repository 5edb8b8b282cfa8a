"""Chat sessions on the data plane: conversations the gateway keeps for the client.

    POST   /v1/chat/sessions                  create (model, system_prompt, metadata, budget)
    GET    /v1/chat/sessions                  list the caller's sessions (newest first)
    GET    /v1/chat/sessions/{id}             one session, with every message it holds
    DELETE /v1/chat/sessions/{id}             delete it and its messages
    POST   /v1/chat/sessions/{id}/messages    post message(s): answered like chat completions

Authenticated by the virtual key (the `chat` scope). A session is the workspace's and its
maker's (the key, or any key of the same person); to anyone else it does not exist (404).
The shapes are described in docs/api.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import parse_qs

import msgspec
from msgspec import Meta

from perpetuo.api.dataplane import (
    cache_directive,
    request_tags,
    response_headers,
    route_override,
    sse_events,
)
from perpetuo.api.http import SSE_HEADERS, Request, Response, StreamingResponse, json_response
from perpetuo.api.ingress import decode_chat_request, decode_json_error, validation_error
from perpetuo.auth.principal import Principal
from perpetuo.control.chat_sessions import (
    DEFAULT_RETENTION_DAYS,
    RETENTION_SETTING,
    Caller,
    ChatSession,
)
from perpetuo.control.session_history import StoredMessage
from perpetuo.pipeline.chat import ChatReply
from perpetuo.pipeline.chat_sessions import post_messages
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway
from perpetuo.schema import headers as H
from perpetuo.schema.endpoints import Endpoint
from perpetuo.schema.errors import ErrorCode, ErrorType, GatewayError, bad_request
from perpetuo.store.ids import new_id
from perpetuo.store.timeutil import utcnow

Json = dict[str, Any]
DEFAULT_HISTORY_TOKENS = 16_000
STORE_ENDPOINT = "chat_sessions.store"  # reads, lists, deletes: not in the request log
MESSAGES_ENDPOINT = "chat_sessions"  # posted messages: inference, logged and charged

Name = Annotated[str, Meta(min_length=1, max_length=200)]
MetadataKey = Annotated[str, Meta(min_length=1, max_length=64)]
MetadataValue = Annotated[str, Meta(max_length=512)]


class SessionCreate(msgspec.Struct, forbid_unknown_fields=True):
    model: Name
    system_prompt: Annotated[str, Meta(max_length=1_000_000)] | None = None
    metadata: Annotated[dict[MetadataKey, MetadataValue], Meta(max_length=16)] = msgspec.field(
        default_factory=dict
    )
    max_history_tokens: Annotated[int, Meta(ge=1, le=10_000_000)] = DEFAULT_HISTORY_TOKENS
    summary_model: Name | None = None


_SESSION_MODEL = "session"  # stands for the session's model while the request is validated
_create_decoder = msgspec.json.Decoder(SessionCreate)
_object_decoder = msgspec.json.Decoder(dict[str, Any])
_encode = msgspec.json.Encoder().encode


async def _caller(gw: Gateway, request: Request, ctx: RequestContext, endpoint: str) -> Principal:
    ctx.endpoint = endpoint
    ctx.principal = principal = await gw.authenticator.authenticate(
        request.headers, request.client_ip
    )
    gw.require_scope(principal, "chat")
    return principal


def caller_of(principal: Principal) -> Caller:
    return Caller(principal.key_id, principal.user_id)


async def collection(gw: Gateway, request: Request, ctx: RequestContext) -> Response:
    """POST (create) and GET (list) /v1/chat/sessions."""
    principal = await _caller(gw, request, ctx, STORE_ENDPOINT)
    if request.method == "GET":
        return json_response(await _list(gw, principal, request.scope.get("query_string", b"")))
    body = await request.body(gw.config.server.max_request_body_bytes)
    try:
        spec = _create_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise decode_json_error(exc) from None
    state = await gw.workspace(principal)
    for name in ("model", "summary_model"):
        value = getattr(spec, name)
        if value is not None:
            try:
                gw.require_endpoint(gw.resolve_alias(state, principal, value), Endpoint.CHAT)
            except GatewayError as exc:
                exc.param = name
                raise
    assert principal.workspace_id is not None  # the master key acts in the default workspace
    now = utcnow()
    days = int(state.settings.get(RETENTION_SETTING) or DEFAULT_RETENTION_DAYS)
    session = ChatSession(
        id=new_id("cs"),
        workspace_id=principal.workspace_id,
        key_id=principal.key_id,
        user_id=principal.user_id,
        model=spec.model,
        system_prompt=spec.system_prompt,
        metadata=spec.metadata,
        max_history_tokens=spec.max_history_tokens,
        summary_model=spec.summary_model,
        created_at=now,
        updated_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    await gw.chat_sessions.create(session)
    return json_response(session_view(session, 0))


async def item(gw: Gateway, request: Request, ctx: RequestContext) -> Response | StreamingResponse:
    """GET/DELETE /v1/chat/sessions/{id}, POST /v1/chat/sessions/{id}/messages."""
    rest = request.path.split("/chat/sessions/", 1)[1]
    session_id, _, action = rest.partition("/")
    if action == "messages" and request.method == "POST":
        return await _post(gw, request, ctx, session_id)
    if action or request.method not in ("GET", "DELETE"):
        allowed = "POST" if action == "messages" else "GET, DELETE"
        raise GatewayError(
            405,
            f"Method {request.method} is not allowed on {request.path} (allowed: {allowed}).",
            type=ErrorType.INVALID_REQUEST,
            code=ErrorCode.METHOD_NOT_ALLOWED,
            headers={"allow": allowed},
        )
    principal = await _caller(gw, request, ctx, STORE_ENDPOINT)
    workspace_id = principal.workspace_id or ""
    store, caller = gw.chat_sessions, caller_of(principal)
    if request.method == "DELETE":
        if not session_id or not await store.delete(workspace_id, session_id, caller):
            raise not_found(session_id)
        return json_response({"id": session_id, "object": "chat.session.deleted", "deleted": True})
    session = await store.session(workspace_id, session_id, caller) if session_id else None
    if session is None:
        raise not_found(session_id)
    messages = await store.messages(session.id)
    return json_response(
        {**session_view(session, len(messages)), "messages": [message_view(m) for m in messages]}
    )


async def _post(
    gw: Gateway, request: Request, ctx: RequestContext, session_id: str
) -> Response | StreamingResponse:
    principal = await _caller(gw, request, ctx, MESSAGES_ENDPOINT)
    ctx.tags = request_tags(request.headers)
    ctx.trace.requested_strategy = route_override(request.headers)
    ctx.cache_directive = cache_directive(request.headers)
    body = await request.body(gw.config.server.max_request_body_bytes)
    try:
        params = _object_decoder.decode(body)
    except msgspec.ValidationError:
        raise bad_request(
            "The request body must be a JSON object.", code=ErrorCode.INVALID_JSON
        ) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise decode_json_error(exc) from None
    if not isinstance(params.get("messages"), list) or not params["messages"]:
        raise bad_request(
            "Missing required parameter: 'messages' (the new message or messages, at least one).",
            param="messages",
            code=ErrorCode.MISSING_PARAMETER,
        )
    n = params.get("n")
    if n is not None and n != 1:
        raise bad_request("A chat session keeps one answer per message: `n` must be 1.", param="n")
    # Validated before the history is read: a bad request costs no database read.
    named = "model" in params  # else the session's model, once the session is read
    if not named:
        params["model"] = _SESSION_MODEL
    chat_request, extras = decode_chat_request(_encode(params))
    conversation = await gw.chat_sessions.conversation(
        principal.workspace_id or "", session_id, caller_of(principal)
    )
    if conversation is None:
        raise not_found(session_id)
    if not named:
        chat_request = msgspec.structs.replace(chat_request, model=conversation.session.model)
    result = await post_messages(gw, ctx, conversation, chat_request, extras)
    headers = [
        *response_headers(ctx, result.deployment),
        (H.SESSION_ID.encode(), conversation.session.id.encode()),
    ]
    if isinstance(result, ChatReply):
        return json_response(result.body, headers=headers)
    return StreamingResponse(sse_events(result), [*SSE_HEADERS, *headers], on_close=result.on_close)


async def _list(gw: Gateway, principal: Principal, query: bytes) -> Json:
    params = {k: v[-1] for k, v in parse_qs(query.decode("latin-1")).items()}
    try:
        limit = min(100, max(1, int(params.get("limit", "20"))))
    except ValueError:
        raise bad_request("Invalid 'limit': expected an integer.", param="limit") from None
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request("Invalid 'order': expected 'asc' or 'desc'.", param="order")
    store, caller = gw.chat_sessions, caller_of(principal)
    workspace_id = principal.workspace_id or ""
    anchor = None
    if after := params.get("after"):
        anchor = await store.session(workspace_id, after, caller)
        if anchor is None:
            raise bad_request(f"Invalid 'after': no session '{after}'.", param="after")
    found, more = await store.page(
        workspace_id, caller, limit=limit, newest_first=order == "desc", after=anchor
    )
    data = [session_view(session, count) for session, count in found]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }


def not_found(session_id: str) -> GatewayError:
    return GatewayError(
        404,
        f"Chat session with id '{session_id}' not found.",
        type=ErrorType.INVALID_REQUEST,
        code="not_found",
        param="session_id",
    )


def _epoch(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def session_view(session: ChatSession, message_count: int) -> Json:
    return {
        "id": session.id,
        "object": "chat.session",
        "created_at": _epoch(session.created_at),
        "updated_at": _epoch(session.updated_at),
        "expires_at": _epoch(session.expires_at),
        "model": session.model,
        "system_prompt": session.system_prompt,
        "metadata": session.metadata,
        "max_history_tokens": session.max_history_tokens,
        "summary_model": session.summary_model,
        "summary": session.summary,
        "message_count": message_count,
    }


def message_view(message: StoredMessage) -> Json:
    return {
        "id": message.id,
        **message.message,
        "created_at": _epoch(message.created_at),
        "request_id": message.request_id,
        "tokens": message.tokens,
    }
