"""Building the limits engine a deployment's settings ask for."""

from __future__ import annotations

from typing import Any

from perpetuo.limits.backend import LimitBackend
from perpetuo.limits.engine import LimitEngine
from perpetuo.limits.history import DatabaseHistory
from perpetuo.limits.ledger import CreditLedgerWriter
from perpetuo.limits.memory import MemoryBackend
from perpetuo.store.database import Database


def backend_kind(settings: Any) -> str:
    """`auto` means Redis when a Redis URL is configured, else memory."""
    kind = settings.limits_backend
    if kind == "auto":
        return "redis" if settings.redis_url else "memory"
    if kind == "redis" and not settings.redis_url:
        raise ValueError("limits_backend is redis but no redis_url is set (PERPETUO_REDIS_URL)")
    return kind


def build_limit_engine(settings: Any, db: Database | None) -> LimitEngine:
    """The engine for `settings` (perpetuo.config.Settings): counters in Redis with a local
    fallback, or in memory; usage history and the credit ledger in `db`."""
    fallback: MemoryBackend | None = None
    primary: LimitBackend
    if backend_kind(settings) == "redis":
        from perpetuo.limits.redis_backend import RedisBackend  # redis-py only when used

        leases = settings.limits_leases
        primary, fallback = RedisBackend(settings.redis_url, leases=leases), MemoryBackend()
    else:
        primary = MemoryBackend()
    return LimitEngine(
        primary,
        fallback=fallback,
        failure_policy=settings.limits_redis_failure,
        history=DatabaseHistory(db) if db is not None else None,
        ledger=CreditLedgerWriter(db) if db is not None else None,
    )
