"""Cache policies: what is set per workspace, key or alias, and what one request gets.

Caching is off unless a layer enables it (a cache changes semantics: the same prompt gets
the same answer). Layers merge workspace, then key, then alias; a field a later layer sets
wins. The request itself can only narrow: `Cache-Control: no-cache` skips the lookup,
`no-store` skips lookup and store, `x-perpetuo-cache-ttl` shortens (or, up to the
platform's maximum, lengthens) the time an answer is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

DAY = 86_400
DEFAULT_TTL = 3_600
DEFAULT_THRESHOLD = 0.92
DEFAULT_MAX_TEMPERATURE = 0.5


class CachePolicy(BaseModel):
    """One layer of cache settings (workspace settings, a key, or an alias)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = Field(default=None, description="Serve and store exact matches")
    ttl_seconds: Annotated[int, Field(ge=1, le=30 * DAY)] | None = Field(
        default=None, description="How long an answer is kept (default 3600)"
    )
    max_entries: Annotated[int, Field(ge=1, le=10_000_000)] | None = Field(
        default=None, description="Entries kept per workspace (exact and semantic, each)"
    )
    semantic: bool | None = Field(default=None, description="Also match similar prompts")
    semantic_threshold: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None, description="Cosine similarity a semantic hit needs (default 0.92)"
    )
    semantic_allow_tools: bool | None = Field(
        default=None, description="Semantic matching also for requests with tools"
    )
    semantic_max_temperature: Annotated[float, Field(ge=0, le=2)] | None = Field(
        default=None, description="Semantic matching only at or below this (default 0.5)"
    )


@dataclass(frozen=True, slots=True)
class ResolvedCache:
    ttl_seconds: int
    max_entries: int | None
    semantic: bool
    threshold: float
    allow_tools: bool
    max_temperature: float
    lookup: bool = True  # false: Cache-Control no-cache (store only)


def resolve(*layers: CachePolicy | None) -> ResolvedCache | None:
    """The merged policy; None when caching is not enabled for the request."""
    merged: dict[str, object] = {}
    for layer in layers:
        if layer is not None:
            merged.update(layer.model_dump(exclude_none=True))
    if not merged.get("enabled"):
        return None
    return ResolvedCache(
        ttl_seconds=int(merged.get("ttl_seconds", DEFAULT_TTL)),  # type: ignore[call-overload]
        max_entries=merged.get("max_entries"),  # type: ignore[arg-type]
        semantic=bool(merged.get("semantic", False)),
        threshold=float(merged.get("semantic_threshold", DEFAULT_THRESHOLD)),  # type: ignore[arg-type]
        allow_tools=bool(merged.get("semantic_allow_tools", False)),
        max_temperature=float(merged.get("semantic_max_temperature", DEFAULT_MAX_TEMPERATURE)),  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class Directive:
    """What the request's headers ask of the cache."""

    lookup: bool = True
    store: bool = True
    ttl_seconds: int | None = None


class BadDirective(ValueError):
    pass


def parse_directive(cache_control: str | None, ttl: str | None) -> Directive | None:
    """None when the request says nothing about caching."""
    if cache_control is None and ttl is None:
        return None
    tokens = {t.strip().lower() for t in (cache_control or "").split(",")}
    lookup = "no-cache" not in tokens and "no-store" not in tokens
    store = "no-store" not in tokens
    seconds: int | None = None
    if ttl is not None:
        try:
            seconds = int(ttl.strip())
        except ValueError:
            raise BadDirective("x-perpetuo-cache-ttl must be a whole number of seconds") from None
        if seconds < 0:
            raise BadDirective("x-perpetuo-cache-ttl cannot be negative")
        if seconds == 0:
            store = False
    return Directive(lookup, store, seconds)
