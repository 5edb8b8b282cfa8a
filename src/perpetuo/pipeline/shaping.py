"""What happens to a stream's chunks between the provider and the client when output
guardrails, reversible masking or the cache are on: content is filtered (held back only as
long as a pattern could still span the next delta), copied for the cache as the client will
see it, then the caller's masked values are restored. SSE framing is untouched: every
chunk stays a whole chunk, and held-back text is sent in a content chunk of its own before
the choice's finish chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perpetuo.cache.answer import StreamCollector
from perpetuo.guardrails.engine import Vault
from perpetuo.guardrails.stream import StreamFilter
from perpetuo.pipeline.context import RequestContext
from perpetuo.schema.usage import Usage

Json = dict[str, Any]
Store = Callable[[StreamCollector, Usage], None]


class OutputShaper:
    def __init__(
        self, filter: StreamFilter | None, vault: Vault | None, store: Store | None
    ) -> None:
        self.filter = filter
        self.vault = vault if vault is not None and vault.restorable else None
        self.store = store
        self.collector = StreamCollector() if store is not None else None

    @classmethod
    def for_request(cls, ctx: RequestContext, store: Store) -> OutputShaper | None:
        """None when nothing shapes the stream (the common case: one attribute check each)."""
        run, cache = ctx.guardrails, ctx.cache
        collect = cache is not None and cache.store and not cache.hit
        if run is None and not collect:
            return None
        stream_filter = run.stream_filter() if run is not None else None
        vault = run.vault if run is not None else None
        if stream_filter is None and not collect and (vault is None or not vault.restorable):
            return None
        return cls(stream_filter, vault, store if collect else None)

    def feed(self, chunk: Json) -> list[Json]:
        """The chunks to send for one upstream chunk (raises GuardrailBlocked)."""
        out: list[Json] = []
        for choice in chunk.get("choices") or ():
            if self.filter is None:
                break
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                delta["content"] = self.filter.push(index, content)
            if choice.get("finish_reason") is not None:
                rest = self.filter.flush(index)
                if rest:
                    out.append(self._finish_text(_content_chunk(chunk, index, rest)))
        out.append(self._finish_text(chunk))
        return out

    def flush(self, last: Json) -> list[Json]:
        """A stream that ended without finish chunks: whatever is still held back."""
        if self.filter is None:
            return []
        out = []
        for index in self.filter.slots():
            rest = self.filter.flush(index)
            if rest:
                out.append(self._finish_text(_content_chunk(last, index, rest)))
        return out

    def completed(self, usage: Usage) -> None:
        """The stream ended normally: the cache may keep it."""
        if self.store is not None and self.collector is not None:
            self.store(self.collector, usage)

    def _finish_text(self, chunk: Json) -> Json:
        if self.collector is not None:
            self.collector.add(chunk)
        if self.vault is not None:
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if isinstance(delta.get("content"), str):
                    delta["content"] = self.vault.restore(delta["content"])
        return chunk


def _content_chunk(like: Json, index: int, text: str) -> Json:
    chunk = {k: v for k, v in like.items() if k != "choices"}
    chunk["choices"] = [
        {"index": index, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
    ]
    return chunk
