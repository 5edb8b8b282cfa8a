"""API keys for the data plane, from memory.

A key is read from the database the first time it is seen, then served from memory until
its entry expires or is invalidated (locally at once; from other instances through the
invalidation feed). Unknown hashes are remembered briefly too, so random keys cannot turn
into a database load. Concurrent misses for one key share a single query.

Entries in use are read again before they expire, off the request path: `refresh_due`
(called every few seconds by the gateway) reloads those that expire soon and were used since
they were read, in one query per batch, so a busy key never waits on the database and
thousands of keys cost a few statements a minute rather than one each. An entry is never
older than `ttl`, as before; an entry invalidated while its batch is read is not put back.
While the database cannot be read, an expired entry is served as it was (stale if error), so
a database outage longer than the TTL does not lock out the keys in use; invalidations still
drop entries at once.

The record carries the owner's standing, read with the key: disabling the owner or removing
them from the workspace marks their keys changed, which drops them here (see changes.py),
so the refusal needs no query per request. So do the key's team, the team's limits and the
owner's own limits as a member (control/teams.py marks the keys a change to them affects).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from perpetuo.auth.principal import Principal
from perpetuo.singleflight import SingleFlight

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class KeyRecord:
    principal: Principal
    key_id: str
    revoked: bool
    expires_at: float | None  # epoch seconds
    valid_until: float | None  # a rotated-away secret stops working at this time
    networks: tuple[IPNetwork, ...] | None
    referer_domains: tuple[str, ...] | None
    limits: dict[str, Any]
    owner: str | None = None  # the owner's standing (owner_standing); None: a service key

    @classmethod
    def from_row(cls, row: Any, matched_hash: str) -> KeyRecord:
        previous = row.previous_hash == matched_hash and row.key_hash != matched_hash
        limits, cache, guardrails = _split_policies(row.limits)
        return cls(
            principal=Principal(
                kind="api_key",
                workspace_id=row.workspace_id,
                key_id=row.id,
                user_id=row.owner_id,
                scopes=frozenset(row.scopes or ()),
                allowed_models=frozenset(row.allowed_models) if row.allowed_models else None,
                limits=limits or None,
                cache=cache,
                team_id=getattr(row, "effective_team_id", None),
                team_limits=getattr(row, "team_limits", None) or None,
                user_limits=getattr(row, "member_limits", None) or None,
                guardrails=guardrails,
                environment=row.environment,
            ),
            key_id=row.id,
            revoked=row.revoked_at is not None,
            expires_at=_epoch(row.expires_at),
            valid_until=_epoch(row.previous_valid_until) if previous else None,
            networks=tuple(ipaddress.ip_network(n, strict=False) for n in row.ip_allowlist)
            if row.ip_allowlist
            else None,
            referer_domains=tuple(d.lower() for d in row.referer_domains)
            if row.referer_domains
            else None,
            limits=limits,
            owner=owner_standing(row),
        )


def owner_standing(row: Any) -> str | None:
    """ "active", "disabled" or "removed" (no longer in the key's workspace) for a key with an
    owner; None for a service key, which belongs to its workspace. A row read without the
    owner's columns (store.repos.api_keys.with_owner) counts as active."""
    if row.owner_id is None:
        return None
    if getattr(row, "owner_disabled_at", None) is not None:
        return "disabled"
    if not getattr(row, "owner_in_workspace", True):
        return "removed"
    return "active"


def _split_policies(stored: dict[str, Any] | None) -> tuple[dict[str, Any], Any, Any]:
    """The key's limits, and its cache and guardrail overrides kept beside them."""
    limits = dict(stored or {})
    cache, guardrails = limits.pop("cache", None), limits.pop("guardrails", None)
    if cache is None and guardrails is None:
        return limits, None, None
    from perpetuo.cache.policy import CachePolicy
    from perpetuo.guardrails.policy import GuardrailPolicy

    return (
        limits,
        CachePolicy.model_validate(cache) if cache is not None else None,
        GuardrailPolicy.model_validate(guardrails) if guardrails is not None else None,
    )


def _epoch(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


@dataclass(slots=True)
class _Entry:
    record: KeyRecord | None
    fresh_until: float
    used: bool = False  # served since it was read: worth reading again before it expires


Loader = Callable[[str], Awaitable[KeyRecord | None]]
# Many hashes at once: the record of each hash found (hashes left out are unknown).
BatchLoader = Callable[[list[str]], Awaitable[dict[str, KeyRecord]]]


class KeyCache:
    def __init__(
        self,
        loader: Loader,
        *,
        batch_loader: BatchLoader | None = None,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        max_entries: int = 200_000,
        batch_size: int = 500,
    ) -> None:
        self._loader = loader
        self._batch_loader = batch_loader
        self._batch_size = batch_size
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._by_key_id: dict[str, set[str]] = {}
        self._flight: SingleFlight[KeyRecord | None] = SingleFlight()
        self._last_used: dict[str, float] = {}

    async def get(self, key_hash: str) -> KeyRecord | None:
        entry = self._entries.get(key_hash)
        if entry is not None and entry.fresh_until > time.monotonic():
            entry.used = True
            return entry.record
        try:
            return await self._flight.run(key_hash, lambda: self._load(key_hash))
        except Exception:
            # The database is unreachable: a key read before keeps working past its TTL (an
            # invalidated one is gone, so this is never a revoked key).
            if entry is not None and entry.record is not None:
                entry.used = True
                return entry.record
            raise

    async def refresh_due(self, within: float) -> int:
        """Read again, in batches, the entries in use that expire in the next `within`
        seconds; returns how many were read. Unused entries are left to expire."""
        if self._batch_loader is None:
            return 0
        horizon = time.monotonic() + within
        due = [
            (h, e)
            for h, e in self._entries.items()
            if e.used and e.record is not None and e.fresh_until <= horizon
        ]
        for start in range(0, len(due), self._batch_size):
            batch = due[start : start + self._batch_size]
            records = await self._batch_loader([h for h, _ in batch])
            for key_hash, entry in batch:
                # Invalidated (or reloaded) while the batch was read: what was read may be
                # older than the change, so the entry stays as the invalidation left it.
                if self._entries.get(key_hash) is entry:
                    self._forget(key_hash)
                    self._store(key_hash, records.get(key_hash))
        return len(due)

    async def _load(self, key_hash: str) -> KeyRecord | None:
        record = await self._loader(key_hash)
        self._store(key_hash, record)
        return record

    def _store(self, key_hash: str, record: KeyRecord | None) -> None:
        if len(self._entries) >= self._max_entries:
            self._evict()
        ttl = self._ttl if record is not None else self._negative_ttl
        self._entries[key_hash] = _Entry(record, time.monotonic() + ttl)
        if record is not None:
            self._by_key_id.setdefault(record.key_id, set()).add(key_hash)

    def _evict(self) -> None:
        """Drop expired entries; if none are, drop the oldest tenth (dicts keep order)."""
        now = time.monotonic()
        stale = [h for h, e in self._entries.items() if e.fresh_until <= now]
        if len(stale) < self._max_entries // 10:
            stale += list(self._entries)[: self._max_entries // 10]
        for key_hash in stale:
            self._forget(key_hash)

    def _forget(self, key_hash: str) -> None:
        entry = self._entries.pop(key_hash, None)
        if entry is not None and entry.record is not None:
            hashes = self._by_key_id.get(entry.record.key_id)
            if hashes is not None:
                hashes.discard(key_hash)
                if not hashes:
                    del self._by_key_id[entry.record.key_id]

    def invalidate_key(self, key_id: str) -> None:
        for key_hash in list(self._by_key_id.get(key_id, ())):
            self._forget(key_hash)

    def invalidate_workspace(self, workspace_id: str) -> None:
        for key_hash, entry in list(self._entries.items()):
            if entry.record is not None and entry.record.principal.workspace_id == workspace_id:
                self._forget(key_hash)

    def invalidate_hash(self, key_hash: str) -> None:
        self._forget(key_hash)

    def clear(self) -> None:
        self._entries.clear()
        self._by_key_id.clear()

    def __len__(self) -> int:
        return len(self._entries)

    # -- last used, written in batches ------------------------------------------------------

    def touch(self, key_id: str) -> None:
        self._last_used[key_id] = time.time()

    def take_last_used(self) -> dict[str, float]:
        used, self._last_used = self._last_used, {}
        return used

    def restore_last_used(self, key_id: str, when: float) -> None:
        """Put back a time that could not be written (a newer one wins)."""
        if self._last_used.get(key_id, 0.0) < when:
            self._last_used[key_id] = when
