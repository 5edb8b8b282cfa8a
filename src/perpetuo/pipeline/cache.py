"""The cache stage: look up before limits and routing, store after the answer is final.

A lookup tries the exact key, then (when the policy enables it and the request is eligible)
the semantic index, embedding the prompt through the configured embedding alias. A hit is
served without calling a provider: as JSON, or replayed as a stream of chunks. Storing runs
off the response path, and any cache failure is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from perpetuo.cache.answer import CachedAnswer, StreamCollector, encode_answer, worth_caching
from perpetuo.cache.keys import RequestKey, cacheable, request_key, semantic_eligible
from perpetuo.cache.policy import ResolvedCache, resolve
from perpetuo.metering.recorder import cost_micros
from perpetuo.pipeline.context import RequestContext
from perpetuo.pipeline.runtime import Gateway
from perpetuo.routing.table import Alias
from perpetuo.routing.trace import RoutingTrace
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.schema.usage import Usage

log = logging.getLogger("perpetuo.cache")
NO_CACHE = "-"  # the dialect of a request that must not be cached


@dataclass(slots=True)
class CacheRun:
    """One request's dealings with the cache, for headers, the request log and metrics."""

    key: RequestKey
    policy: ResolvedCache
    store: bool
    ttl: int
    result: str = "miss"  # hit | semantic-hit | miss
    similarity: float | None = None
    answer: CachedAnswer | None = None
    vector: Any = None  # the prompt's embedding, stored with the answer
    partition: str | None = None  # semantic partition (context and embedding model)
    embedder: str = ""
    saved: Usage | None = None
    saved_cost_micros: int = 0

    @property
    def hit(self) -> bool:
        return self.answer is not None


def policy_for(ctx: RequestContext, alias: Alias) -> ResolvedCache | None:
    workspace, key, own = ctx.workspace.cache, ctx.principal, alias.config.cache
    key_policy = key.cache if key is not None else None
    if workspace is None and key_policy is None and own is None:
        return None
    return resolve(workspace, key_policy, own)


async def lookup(
    gw: Gateway,
    ctx: RequestContext,
    alias: Alias,
    request: ChatCompletionRequest,
    extras: dict[str, Any],
    dialect: str = "",
) -> CacheRun | None:
    """The hit, if any (also kept on `ctx.cache`); None on a miss or with caching off.
    `dialect`: answers are kept apart per client dialect (Messages, Responses, chat)."""
    policy = policy_for(ctx, alias)
    directive = ctx.cache_directive
    if policy is None or (directive is not None and not directive.store and not directive.lookup):
        return None
    if not cacheable(request) or dialect == NO_CACHE:
        return None
    principal = ctx.principal
    assert principal is not None
    fingerprint = ctx.guardrails.policy.fingerprint if ctx.guardrails is not None else ""
    if dialect:
        fingerprint = f"{fingerprint}|{dialect}"
    key = request_key(principal.workspace_id or "-", alias.name, request, extras, fingerprint)
    ttl = directive.ttl_seconds if directive and directive.ttl_seconds else policy.ttl_seconds
    run = ctx.cache = CacheRun(key, policy, directive.store if directive else True, ttl)
    if directive is not None and not directive.lookup:
        return None  # no-cache: answer afresh, still store
    answer = await gw.cache.get(key)
    if answer is not None:
        run.result, run.answer = "hit", answer
        return _credited(run)
    if policy.semantic and key.prompt and _semantic_ready(gw, request, policy):
        found = await _semantic_lookup(gw, ctx, run)
        if found is not None:
            return _credited(run)
    return None


def _credited(run: CacheRun) -> CacheRun:
    answer = run.answer
    assert answer is not None
    run.saved = Usage.from_openai(answer.body.get("usage")) or Usage()
    run.saved_cost_micros = answer.cost_micros
    return run


def _semantic_ready(gw: Gateway, request: ChatCompletionRequest, policy: ResolvedCache) -> bool:
    return gw.config.cache.embedding_alias is not None and semantic_eligible(
        request, policy.allow_tools, policy.max_temperature
    )


async def _semantic_lookup(gw: Gateway, ctx: RequestContext, run: CacheRun) -> CacheRun | None:
    try:
        vector, embedder = await embed(gw, ctx, run.key.prompt or "")
    except Exception as exc:
        log.warning("semantic cache: embedding failed, treated as a miss: %s", exc)
        return None
    run.vector, run.embedder = vector, embedder
    run.partition = hashlib.sha256(f"{run.key.partition}:{embedder}".encode()).hexdigest()
    from perpetuo.cache.answer import decode_answer

    try:
        found = await gw.cache.semantic.search(
            run.key.workspace_id, run.partition, vector, run.policy.threshold
        )
    except Exception as exc:
        log.warning("semantic cache lookup failed, treated as a miss: %s", exc)
        return None
    if found is None:
        return None
    raw, similarity = found
    run.result, run.similarity, run.answer = (
        "semantic-hit",
        round(similarity, 4),
        decode_answer(raw),
    )
    return run


async def embed(gw: Gateway, ctx: RequestContext, text: str) -> tuple[Any, str]:
    """The prompt's unit embedding from the configured alias, through the gateway's own
    routing (its cost is added to the request's); and the embedder's identity."""
    from perpetuo.cache.vectors import unit
    from perpetuo.schema.embeddings import EmbeddingRequest

    settings = gw.config.cache
    name = settings.embedding_alias
    assert name is not None
    alias = gw.alias_lookup(ctx.workspace)(name)
    if alias is None:
        raise LookupError(f"embedding alias {name!r} does not exist")
    request = EmbeddingRequest(model=name, input=text)
    if settings.embedding_dimensions:
        request.dimensions = settings.embedding_dimensions
    served = await gw.router.embeddings(
        RoutingTrace(), alias, request, lookup=gw.alias_lookup(ctx.workspace)
    )
    tokens = (served.body.get("usage") or {}).get("prompt_tokens") or 0
    ctx.cost_micros += cost_micros(served.deployment, Usage(prompt_tokens=int(tokens)))
    vector = unit(served.body["data"][0]["embedding"])
    return vector, f"alias:{name}:{len(vector)}"


def store(gw: Gateway, ctx: RequestContext, body: dict[str, Any]) -> None:
    """Keep a complete answer (as the client gets it, before reversible masking)."""
    run: CacheRun | None = ctx.cache
    if run is None or run.hit or not run.store:
        return
    with _miss_on_failure(ctx):
        if worth_caching(body):
            _persist(gw, ctx, run, CachedAnswer(body=body, pieces=None))


def store_stream(
    gw: Gateway, ctx: RequestContext, collector: StreamCollector, usage: Usage
) -> None:
    run: CacheRun | None = ctx.cache
    if run is None or run.hit or not run.store:
        return
    with _miss_on_failure(ctx):
        answer = collector.answer(usage.to_openai())
        if answer is not None:
            _persist(gw, ctx, run, answer)


@contextmanager
def _miss_on_failure(ctx: RequestContext) -> Iterator[None]:
    """A store that fails leaves the answer uncached; the request itself goes on."""
    try:
        yield
    except Exception as exc:
        log.warning("caching the answer of %s failed: %s", ctx.request_id, type(exc).__name__)


def _persist(gw: Gateway, ctx: RequestContext, run: CacheRun, answer: CachedAnswer) -> None:
    deployment = ctx.deployment
    answer.provider = deployment.provider if deployment else ""
    answer.model = deployment.model if deployment else ""
    answer.cost_micros = cost_micros(deployment, ctx.usage)
    answer.created = time.time()
    raw = encode_answer(answer)  # now: the body is about to be restored for the client
    if len(raw) > gw.cache.max_entry_bytes:
        return
    ttl = min(run.ttl, gw.cache.max_ttl_seconds)
    key, policy = run.key, run.policy

    async def write() -> None:
        await gw.cache.backend.set(
            key.workspace_id, key.alias, key.digest, raw, ttl, policy.max_entries
        )
        if run.vector is not None and run.partition is not None:
            await gw.cache.semantic.add(
                key.workspace_id,
                key.alias,
                run.partition,
                run.embedder,
                run.vector,
                raw,
                ttl,
                policy.max_entries,
            )

    gw.cache.background(write())
