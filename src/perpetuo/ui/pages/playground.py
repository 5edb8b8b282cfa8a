"""The playground: chat with an alias through the real data-plane pipeline, as one of the
workspace's keys, in the client API of one's choice (Chat Completions, Responses, Messages:
ui/playground_apis.py), and see how each reply was routed, its tokens and its cost.

The browser never holds a key's plaintext (keys are shown once): it names a key of the
workspace, and the request runs here on behalf of that key's principal, built from its
stored row exactly as the data plane's key cache builds it, refused exactly as the data
plane refuses a revoked, expired or restricted key. It is metered, limited and logged like
any other request (tagged `playground`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import select

from perpetuo.api.asgi import request_id_for
from perpetuo.api.http import encode_json
from perpetuo.auth.authenticator import check_usable
from perpetuo.auth.key_cache import KeyRecord
from perpetuo.control.actor import Role
from perpetuo.control.errors import forbidden, invalid, not_found
from perpetuo.pipeline.chat import chat_completion
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.replay import CachedStream
from perpetuo.pipeline.stream import ChatStream
from perpetuo.schema.errors import GatewayError
from perpetuo.store.repos import api_keys as key_rows
from perpetuo.store.schema import api_keys
from perpetuo.ui import playground_apis
from perpetuo.ui.context import PageDep, WorkspacePage, show
from perpetuo.ui.forms import SessionJson
from perpetuo.ui.lookups import chat_aliases, provider_names

router = APIRouter(prefix="/ui/w/{workspace_id}/playground")
TAG = "playground"


async def _usable_keys(page: WorkspacePage) -> list[Any]:
    """Active keys the visitor may act as: their own, or every key for admins."""
    query = select(api_keys.c.id, api_keys.c.name, api_keys.c.prefix, api_keys.c.last4).where(
        api_keys.c.workspace_id == page.id, api_keys.c.revoked_at.is_(None)
    )
    if page.role < Role.ADMIN:
        query = query.where(api_keys.c.owner_id == page.visitor.user_id)
    async with page.plane.db.connect() as conn:
        return list((await conn.execute(query.order_by(api_keys.c.name))).all())


@router.get("")
async def playground_page(page: PageDep) -> Response:
    page.require(Role.MEMBER)
    aliases = await chat_aliases(page)  # embedding-only and other non-chat aliases left out
    keys = await _usable_keys(page)
    choices = [(k.id, f"{k.name} ({k.prefix}…{k.last4})") for k in keys]
    return show(
        page,
        "playground.html",
        active="playground",
        keys=keys,
        key_choices=choices,
        aliases=aliases,
        apis=list(playground_apis.APIS.items()),
    )


async def _principal_record(page: WorkspacePage, key_id: Any) -> KeyRecord:
    if not isinstance(key_id, str) or not key_id:
        raise invalid("Choose an API key to send the request with.", "key_id")
    async with page.plane.db.connect() as conn:
        row = await key_rows.get(conn, page.id, key_id)
    if row is None:
        raise not_found("API key")
    if page.role < Role.ADMIN and row.owner_id != page.visitor.user_id:
        raise forbidden("Members can only use the API keys they created.")
    return KeyRecord.from_row(row, row.key_hash)


def _error(exc: GatewayError) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "message": exc.message,
                "type": str(exc.type),
                "param": exc.param,
                "code": None if exc.code is None else str(exc.code),
            }
        },
        status_code=exc.status,
        headers=exc.headers or None,
    )


@router.post("/chat")
async def chat(page: PageDep, body: SessionJson) -> Response:
    gateway, request = page.gateway, page.request
    api = body.get("api")
    ctx = RequestContext(
        request_id_for({}),
        endpoint=api if api in playground_apis.APIS else "chat",  # the log's dialect
        client_ip=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", ""),
        tags=[TAG],
    )
    try:
        page.require(Role.MEMBER)
        record = await _principal_record(page, body.get("key_id"))
        # The browser is this key's client: its address and origin must be allowed too.
        headers = {k.lower(): v for k, v in request.headers.items()}
        check_usable(record, headers, ctx.client_ip)
        ctx.principal = record.principal
        asked = playground_apis.build(body)
        result = await chat_completion(gateway, ctx, asked.chat, asked.extras, native=asked.native)
    except GatewayError as exc:
        if ctx.principal is not None:  # an authenticated request that was refused: log it
            ctx.finish(exc.status, str(exc.code) if exc.code else None)
            gateway.record(ctx)
        return _error(exc)
    assert isinstance(result, ChatStream | CachedStream)  # the playground always streams
    names = await provider_names(page)
    return StreamingResponse(
        _events(page, ctx, result, asked, names),
        media_type="text/event-stream",
        headers={"x-request-id": ctx.request_id, "x-accel-buffering": "no"},
    )


def summary(
    page: WorkspacePage,
    ctx: RequestContext,
    names: dict[str, str],
    api: str = "Chat Completions",
    lane: str | None = None,
) -> dict[str, Any]:
    """How the reply was routed and what it cost, for the line under it."""
    trace = ctx.trace.as_dict()
    deployment = ctx.deployment
    usage = ctx.usage
    return {
        "request_id": ctx.request_id,
        "api": api,
        "lane": lane,
        "log_url": page.url(f"logs/{ctx.request_id}"),
        "alias": ctx.alias,
        "provider": names.get(deployment.provider, deployment.provider) if deployment else None,
        "model": deployment.model if deployment else None,
        "strategy": trace["strategy"],
        "attempts": len(ctx.trace.attempts),
        "fallback": trace["fallback"],
        "trace": trace,
        "prompt_tokens": usage.prompt_tokens if usage else 0,
        "completion_tokens": usage.completion_tokens if usage else 0,
        "usage_estimated": bool(usage and usage.estimated),
        "cost_usd": ctx.cost_micros / 1_000_000,
        "latency_ms": round(ctx.latency_ms or ctx.elapsed_ms(), 1),
        "ttft_ms": None if ctx.ttft_ms is None else round(ctx.ttft_ms, 1),
        "error_code": ctx.error_code,
    }


async def _events(
    page: WorkspacePage,
    ctx: RequestContext,
    stream: ChatStream | CachedStream,
    asked: playground_apis.PlaygroundRequest,
    names: dict[str, str],
) -> AsyncIterator[bytes]:
    completed = False
    try:
        async for piece in playground_apis.events(asked, stream, ctx):
            yield piece
        ctx.finish(200, ctx.error_code)
        completed = True
        lane = playground_apis.lane(asked, stream)
        about = summary(page, ctx, names, asked.name, lane)
        yield b"event: perpetuo\ndata: " + encode_json(about) + b"\n\n"
        if asked.api == "chat" and not stream.failed:
            yield b"data: [DONE]\n\n"
    finally:
        stream.on_close(not completed)
        if ctx.latency_ms is None:  # the browser went away mid-stream
            ctx.finish(499, ctx.error_code or "client_disconnected")
        page.gateway.record(ctx)
