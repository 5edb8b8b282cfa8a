"""Telling every gateway instance what changed, so in-memory caches never serve stale state.

Two channels, so that neither is a single point of failure:
- Redis pub/sub (when Redis is configured): changes arrive in milliseconds.
- Database polling: every `poll_interval` seconds each instance asks which keys and
  workspaces changed since it last looked (with an overlap window for commit-order races).
  This also catches anything pub/sub lost while Redis was down.
The instance that made a change applies it to itself at once, before any of that.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import Select, Table, select

from perpetuo.store.database import Database
from perpetuo.store.schema import api_keys, audit_log, workspaces
from perpetuo.store.timeutil import utcnow

log = logging.getLogger("perpetuo.changes")

CHANNEL = "perpetuo:changes"
KEY = "key"  # an API key changed (revoked, rotated, edited)
WORKSPACE = "workspace"  # a workspace's models, credentials or settings changed
WORKSPACE_DELETED = "workspace_deleted"  # everything cached for the workspace must go
CONFIG = "config"  # the platform config was reloaded
CACHE_PURGED = "cache_purged"  # id: "<workspace>/<alias>", or "<workspace>/" for all aliases

Listener = Callable[[str], None]

_OVERLAP = dt.timedelta(seconds=10)
# The audit actions that announce what a row cannot: it is gone, or it is not a row.
ANNOUNCED = ("workspace.delete", "config.reload", "cache.purge")


def changed_since(table: Table, since: dt.datetime) -> Select:
    """The rows of `table` (keys, workspaces) changed after `since`: read by its
    `updated_at` index, as every instance asks every `poll_interval` seconds."""
    return select(table.c.id, table.c.updated_at).where(table.c.updated_at > since)


def announced_since(since: dt.datetime) -> Select:
    """What the audit trail announces after `since`. Deleted rows cannot be polled: the trail
    is the tombstone. A config reload is announced there too, for instances without Redis.
    Read by the (action, created_at) index: the trail only grows."""
    columns = audit_log.c
    return select(columns.id, columns.action, columns.target_id, columns.workspace_id).where(
        columns.action.in_(ANNOUNCED), columns.created_at > since
    )


class ChangeFeed:
    def __init__(
        self, db: Database | None, redis_url: str | None = None, *, poll_interval: float = 2.0
    ) -> None:
        self.db = db
        self.redis_url = redis_url
        self.poll_interval = poll_interval
        self.instance = secrets.token_hex(6)
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Any = None
        self._watermark = utcnow()
        self._seen: dict[Hashable, float] = {}
        self.redis_connected = False

    def subscribe(self, kind: str, listener: Listener) -> None:
        self._listeners[kind].append(listener)

    def _dispatch(self, kind: str, ident: str) -> None:
        for listener in self._listeners.get(kind, ()):
            try:
                listener(ident)
            except Exception:
                log.exception("change listener failed for %s %s", kind, ident)

    async def publish_remote(self, kind: str, ident: str) -> None:
        """Tell the other instances only (this one already applied the change)."""
        if self._redis is None:
            return
        message = json.dumps({"kind": kind, "id": ident, "origin": self.instance})
        try:
            await self._redis.publish(CHANNEL, message)
        except Exception as exc:
            log.warning("could not publish %s to Redis: %s", kind, exc)

    async def publish(self, kind: str, ident: str) -> None:
        """Apply here now, then tell the other instances (best effort: polling backs it up)."""
        self._dispatch(kind, ident)
        if self._redis is None:
            return
        message = json.dumps({"kind": kind, "id": ident, "origin": self.instance})
        try:
            await self._redis.publish(CHANNEL, message)
        except Exception as exc:
            log.warning("could not publish change to Redis (%s); polling will carry it", exc)

    async def ping_redis(self) -> float | None:
        """Seconds a Redis PING takes; None when no Redis is configured. Raises if down."""
        if self._redis is None:
            return None
        started = time.perf_counter()
        async with asyncio.timeout(1.0):
            await self._redis.ping()
        return time.perf_counter() - started

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.db is not None:
            self._tasks.append(asyncio.create_task(self._poll_forever(), name="changes-poll"))
        if self.redis_url:
            import redis.asyncio as redis

            self._redis = redis.from_url(self.redis_url, socket_connect_timeout=2)
            self._tasks.append(asyncio.create_task(self._listen_forever(), name="changes-redis"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
            self._redis = None

    # -- database polling --------------------------------------------------------------------

    async def poll_once(self) -> None:
        assert self.db is not None
        started = utcnow()
        since = self._watermark - _OVERLAP
        async with self.db.connect() as conn:
            keys = await conn.execute(changed_since(api_keys, since))
            changed_keys = [k for k, at in keys if self._first_sight((KEY, k, at))]
            rows = await conn.execute(changed_since(workspaces, since))
            changed_workspaces = [w for w, at in rows if self._first_sight((WORKSPACE, w, at))]
            events = await conn.execute(announced_since(since))
            seen = [(a, t, w) for i, a, t, w in events if self._first_sight(i)]
        happened = [(a, t) for a, t, _ in seen]
        purged = [f"{w}/{t if t != '*' else ''}" for a, t, w in seen if a == "cache.purge" and w]
        deleted_workspaces = [t for a, t in happened if a == "workspace.delete" and t]
        reloaded = any(a == "config.reload" for a, _ in happened)
        for key_id in changed_keys:
            self._dispatch(KEY, key_id)
        for workspace_id in changed_workspaces:
            self._dispatch(WORKSPACE, workspace_id)
        for workspace_id in deleted_workspaces:
            self._dispatch(WORKSPACE_DELETED, workspace_id)
        for ident in purged:
            self._dispatch(CACHE_PURGED, ident)
        if reloaded:
            self._dispatch(CONFIG, "reload")
        self._watermark = started

    def _first_sight(self, seen: Hashable) -> bool:
        """Audit events, and each version of a changed row, show up in several overlapping
        polls: act on each once (dropping a cached key again at every poll would send its
        requests to the database, and fail them if it has just gone down)."""
        if seen in self._seen:
            return False
        self._seen[seen] = time.monotonic()
        if len(self._seen) > 1000:
            horizon = time.monotonic() - 120
            self._seen = {i: t for i, t in self._seen.items() if t > horizon}
        return True

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.poll_once()
            except Exception as exc:
                log.warning("change poll failed: %s", exc)

    # -- Redis pub/sub -----------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        backoff = 0.5
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(CHANNEL)
                self.redis_connected = True
                backoff = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._on_message(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.redis_connected = False
                log.warning("Redis change channel lost (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _on_message(self, data: Any) -> None:
        try:
            message = json.loads(data)
        except (TypeError, ValueError):
            return
        if message.get("origin") == self.instance:
            return  # already applied locally
        kind, ident = message.get("kind"), message.get("id")
        if isinstance(kind, str) and isinstance(ident, str):
            self._dispatch(kind, ident)
