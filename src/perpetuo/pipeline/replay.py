"""Serving a cache hit: the stored completion as JSON, or replayed as a stream whose chunks
have the shape a provider's would (role, content deltas, finish, usage when asked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from perpetuo.cache.answer import fresh_body, replay_chunks
from perpetuo.pipeline import guardrails
from perpetuo.pipeline.cache import CacheRun
from perpetuo.pipeline.context import RequestContext
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.usage import Usage

Json = dict[str, Any]


def served_body(ctx: RequestContext, run: CacheRun) -> Json:
    """The cached completion under a new id, with the caller's masked values restored.
    Nothing was generated: the request uses (and is charged) no tokens."""
    assert run.answer is not None
    body = fresh_body(run.answer)
    guardrails.restore(ctx, body)
    ctx.usage = Usage()
    return body


class CachedStream:
    """A stream served from the cache; quacks like ChatStream for the HTTP layer."""

    deployment = None
    failed = False
    raw_events = None  # replayed from the chat form: every dialect encodes it

    def __init__(self, ctx: RequestContext, run: CacheRun, request: ChatCompletionRequest):
        self.ctx = ctx
        self.run = run
        self.request = request

    def more_ready(self) -> bool:
        return True  # everything is at hand: one write for the whole answer after the first

    def on_close(self, disconnected: bool) -> None:
        if disconnected and self.ctx.error_code is None:
            self.ctx.status, self.ctx.error_code = 499, "client_disconnected"

    async def chunks(self) -> AsyncIterator[Json]:
        assert self.run.answer is not None
        body = served_body(self.ctx, self.run)
        self.ctx.mark_first_token()
        vault = self.ctx.guardrails.vault if self.ctx.guardrails is not None else None
        for chunk in replay_chunks(self.run.answer, body, self.request.wants_stream_usage):
            if vault is not None and vault.restorable:
                for choice in chunk.get("choices") or ():
                    content = choice["delta"].get("content")
                    if content:
                        choice["delta"]["content"] = vault.restore(content)
            yield chunk
