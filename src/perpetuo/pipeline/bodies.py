"""Request and response bodies in the request log, for workspaces that turn on
`log_request_bodies`.

Chat requests only: the request as the gateway forwards it, and the answer as the client
received it (for a stream, the assembled text and tool calls, also when it broke off). Every
string is masked with the guardrails' secret and PII detectors before it is kept, whatever
the workspace's guardrail policy, and each body is cut to `LIMIT` bytes, marked
`truncated`. The bodies land in the record's `detail` (`request_body`, `response_body`),
which the request log shows to workspace admins and owners only.

With the setting off, the cost per request is one dictionary lookup.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec

from perpetuo.cache.answer import StreamCollector
from perpetuo.guardrails.engine import DETECTORS, Vault, scan, transform
from perpetuo.pipeline.context import RequestContext

LIMIT = 32 * 1024  # bytes kept of each body
# Scanned beyond what is kept, so a value cut in half at the limit is still masked whole.
MARGIN = 8 * 1024
_EVERY_DETECTOR: dict[str, Any] = dict.fromkeys(DETECTORS, "redact")
_encode = msgspec.json.Encoder().encode

Handler = Callable[..., Awaitable[Any]]


def logged(handler: Handler) -> Handler:
    """Wraps the chat pipeline: keeps the bodies when the workspace asks for it."""

    @functools.wraps(handler)
    async def run(
        gw: Any, ctx: RequestContext, request: Any, extras: dict[str, Any], **options: Any
    ) -> Any:
        try:
            result = await handler(gw, ctx, request, extras, **options)
        except Exception:
            if wanted(ctx):  # a refused or failed request: its body is what one looks for
                keep(ctx, "request_body", _request(request, extras))
            raise
        if not wanted(ctx):
            return result
        keep(ctx, "request_body", _request(request, extras))
        body = getattr(result, "body", None)
        if isinstance(body, dict):
            keep(ctx, "response_body", body)
            return result
        return LoggedStream(ctx, result)

    return run


def wanted(ctx: RequestContext) -> bool:
    return bool(ctx.workspace.settings.get("log_request_bodies"))


def keep(ctx: RequestContext, name: str, body: Any) -> None:
    """`body`, masked and cut, as `ctx.detail[name]`."""
    budget = [LIMIT + MARGIN]
    text = _encode(_masked(body, Vault(), budget))
    entry: dict[str, Any] = {"text": text[:LIMIT].decode(errors="ignore"), "truncated": False}
    if len(text) > LIMIT or budget[0] <= 0:
        entry["truncated"] = True
    ctx.detail = {**(ctx.detail or {}), name: entry}


def _request(request: Any, extras: dict[str, Any]) -> Any:
    body = msgspec.to_builtins(request)
    return {**body, **extras} if extras and isinstance(body, dict) else body


def _masked(value: Any, vault: Vault, budget: list[int]) -> Any:
    """A copy with every string masked. Strings past the budget (which lie past the cut
    anyway) are dropped, so a huge body costs no more to scan than a large one."""
    if isinstance(value, str):
        if budget[0] <= 0:
            return ""
        text = value[: budget[0] + MARGIN]
        budget[0] -= len(text)
        return transform(text, scan(text, _EVERY_DETECTOR), vault, restorable=False)
    if isinstance(value, dict):
        return {k: _masked(v, vault, budget) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v, vault, budget) for v in value]
    return value


class LoggedStream:
    """A chat stream (live or replayed from the cache) that keeps what the client received."""

    def __init__(self, ctx: RequestContext, stream: Any) -> None:
        self._ctx = ctx
        self._stream = stream

    def __getattr__(self, name: str) -> Any:  # deployment, failed, more_ready, on_close
        return getattr(self._stream, name)

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        collector = StreamCollector()
        inner = self._stream.chunks()
        try:
            async for chunk in inner:
                collector.add(chunk)
                yield chunk
        finally:
            await inner.aclose()  # the stream's own ending (metering) runs first
            keep(self._ctx, "response_body", assembled(collector))


def assembled(collector: StreamCollector) -> dict[str, Any]:
    """The streamed answer as one object, finished or not."""
    choices = []
    for index in sorted(collector.choices):
        state = collector.choices[index]
        message: dict[str, Any] = {"role": "assistant", "content": "".join(state["pieces"])}
        if state["calls"]:
            message["tool_calls"] = [state["calls"][i] for i in sorted(state["calls"])]
        choices.append({"index": index, "message": message, "finish_reason": state["finish"]})
    return {**collector.top, "object": "chat.completion", "stream": True, "choices": choices}
