"""The in-memory key cache and the authenticator's refusals, without a database."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace

import pytest

from perpetuo.auth import key_cache
from perpetuo.auth.api_keys import generate, key_hash
from perpetuo.auth.authenticator import Authenticator
from perpetuo.auth.key_cache import KeyCache, KeyRecord
from perpetuo.schema.errors import GatewayError

HMAC_KEY = b"k" * 32


def row(**overrides):
    now = dt.datetime.now(dt.UTC)
    fields = dict(
        id="key_1",
        workspace_id="ws_1",
        owner_id="usr_1",
        scopes=["chat"],
        allowed_models=None,
        revoked_at=None,
        expires_at=None,
        previous_hash=None,
        previous_valid_until=None,
        key_hash="h",
        environment="live",
        ip_allowlist=None,
        referer_domains=None,
        limits={},
        created_at=now,
    )
    return SimpleNamespace(**(fields | overrides))


class Loader:
    def __init__(self, rows, delay=0.0):
        self.rows = rows
        self.delay = delay
        self.calls = 0

    async def __call__(self, h):
        self.calls += 1
        await asyncio.sleep(self.delay)
        found = self.rows.get(h)
        return KeyRecord.from_row(found, h) if found else None


async def test_hits_are_served_from_memory_and_misses_collapse():
    loader = Loader({"h": row()}, delay=0.01)
    cache = KeyCache(loader)
    results = await asyncio.gather(*(cache.get("h") for _ in range(50)))
    assert loader.calls == 1 and all(r.key_id == "key_1" for r in results)
    await cache.get("h")
    assert loader.calls == 1


async def test_unknown_keys_are_remembered_briefly():
    loader = Loader({})
    cache = KeyCache(loader, negative_ttl=0.05)
    assert await cache.get("nope") is None
    assert await cache.get("nope") is None
    assert loader.calls == 1
    await asyncio.sleep(0.06)
    await cache.get("nope")
    assert loader.calls == 2


async def test_invalidation_drops_every_hash_of_a_key():
    loader = Loader({"h": row(), "old": row(key_hash="h", previous_hash="old")})
    cache = KeyCache(loader)
    await cache.get("h")
    await cache.get("old")
    cache.invalidate_key("key_1")
    assert len(cache) == 0
    await cache.get("h")
    assert loader.calls == 3


async def test_eviction_bounds_memory():
    loader = Loader({})
    cache = KeyCache(loader, max_entries=100)
    for i in range(1000):
        await cache.get(f"h{i}")
    assert len(cache) <= 100


async def authenticate(record_row, headers=None, ip="10.0.0.1"):
    key = generate("live")
    h = key_hash(HMAC_KEY, key.plaintext)
    loader = Loader({h: record_row})
    auth = Authenticator(None, hmac_key=HMAC_KEY, keys=KeyCache(loader))
    return await auth.authenticate(
        {"authorization": f"Bearer {key.plaintext}", **(headers or {})}, ip
    )


async def test_a_valid_key_resolves_to_its_principal():
    principal = await authenticate(row(allowed_models=["a"], scopes=["chat", "embeddings"]))
    assert principal.workspace_id == "ws_1" and principal.key_id == "key_1"
    assert principal.may_use_model("a") and not principal.may_use_model("b")
    assert principal.has_scope("embeddings") and not principal.has_scope("models:read")


@pytest.mark.parametrize(
    ("overrides", "headers", "ip", "status", "code"),
    [
        ({"revoked_at": dt.datetime.now(dt.UTC)}, None, "10.0.0.1", 401, "api_key_revoked"),
        (
            {"expires_at": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)},
            None,
            "10.0.0.1",
            401,
            "api_key_expired",
        ),
        ({"ip_allowlist": ["192.168.0.0/16"]}, None, "10.0.0.1", 403, "ip_not_allowed"),
        ({"ip_allowlist": ["10.0.0.0/8"]}, None, "10.0.0.1", None, None),
        (
            {"referer_domains": ["example.com"]},
            {"origin": "https://evil.test"},
            "10.0.0.1",
            403,
            "referer_not_allowed",
        ),
        (
            {"referer_domains": ["example.com"]},
            {"referer": "https://app.example.com/x"},
            "10.0.0.1",
            None,
            None,
        ),
        ({"referer_domains": ["example.com"]}, None, "10.0.0.1", 403, "referer_not_allowed"),
    ],
)
async def test_refusals_are_distinct(overrides, headers, ip, status, code):
    if status is None:
        assert (await authenticate(row(**overrides), headers, ip)).key_id == "key_1"
        return
    with pytest.raises(GatewayError) as exc:
        await authenticate(row(**overrides), headers, ip)
    assert (exc.value.status, exc.value.code) == (status, code)


async def test_rotated_secret_works_until_grace_ends():
    key = generate("live")
    old_hash = key_hash(HMAC_KEY, key.plaintext)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.3)
    rotated = row(key_hash="new-hash", previous_hash=old_hash, previous_valid_until=until)
    auth = Authenticator(None, hmac_key=HMAC_KEY, keys=KeyCache(Loader({old_hash: rotated})))
    headers = {"authorization": f"Bearer {key.plaintext}"}
    assert (await auth.authenticate(headers, "1.2.3.4")).key_id == "key_1"
    await asyncio.sleep(0.35)
    with pytest.raises(GatewayError) as exc:
        await auth.authenticate(headers, "1.2.3.4")
    assert exc.value.code == "api_key_rotated"


async def test_malformed_and_unknown_keys():
    auth = Authenticator("master", hmac_key=HMAC_KEY, keys=KeyCache(Loader({})))
    for token in ("pk_live_short", "sk-something", generate().plaintext):
        with pytest.raises(GatewayError) as exc:
            await auth.authenticate({"authorization": f"Bearer {token}"})
        assert exc.value.code == "invalid_api_key"
    assert (await auth.authenticate({"authorization": "Bearer master"})).kind == "master"


class BatchLoader:
    """Many hashes in one call, as the database's `IN (...)` query answers them."""

    def __init__(self, rows, gate: asyncio.Event | None = None):
        self.rows = rows
        self.gate = gate
        self.batches: list[list[str]] = []

    async def __call__(self, hashes):
        self.batches.append(list(hashes))
        if self.gate is not None:
            await self.gate.wait()
        return {h: KeyRecord.from_row(self.rows[h], h) for h in hashes if h in self.rows}


class Clock:
    """The cache's monotonic clock, moved by the test (no sleeping, no timing flakes)."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def time(self):
        return self.now


async def test_keys_in_use_are_read_again_in_batches_before_they_expire(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("perpetuo.auth.key_cache.time", clock)
    rows = {f"h{i}": row(id=f"key_{i}", key_hash=f"h{i}") for i in range(5)}
    loader, batch = Loader(rows), BatchLoader(rows)
    cache = KeyCache(loader, batch_loader=batch, ttl=60, batch_size=2)
    for h in rows:
        await cache.get(h)  # read on first sight, one query each
    for h in ("h0", "h1", "h2"):
        await cache.get(h)  # in use since
    rows["h1"] = row(id="key_1", key_hash="h1", revoked_at=dt.datetime.now(dt.UTC))
    clock.now += 45
    assert await cache.refresh_due(within=20) == 3
    assert sorted(h for b in batch.batches for h in b) == ["h0", "h1", "h2"]
    assert max(len(b) for b in batch.batches) == 2
    clock.now += 30  # past the first reads' ttl, within the refreshed ones'
    assert (await cache.get("h0")).key_id == "key_0"
    assert (await cache.get("h1")).revoked  # the refresh brought the revocation
    assert loader.calls == 5  # none of the keys in use waited on a query
    await cache.get("h3")  # unused since its read: expired, read on use
    assert loader.calls == 6


async def test_entries_not_due_are_left_alone(monkeypatch):
    clock = Clock()
    monkeypatch.setattr("perpetuo.auth.key_cache.time", clock)
    rows = {"h": row()}
    batch = BatchLoader(rows)
    cache = KeyCache(Loader(rows), batch_loader=batch, ttl=60)
    await cache.get("h")
    await cache.get("h")
    clock.now += 30
    assert await cache.refresh_due(within=20) == 0 and batch.batches == []


async def test_a_key_gone_from_the_database_is_refreshed_as_unknown():
    rows = {"h": row()}
    cache = KeyCache(Loader(rows), batch_loader=BatchLoader(rows))
    await cache.get("h")
    await cache.get("h")
    del rows["h"]
    await cache.refresh_due(within=120.0)
    assert await cache.get("h") is None


async def test_an_invalidation_during_a_refresh_is_not_undone_by_it():
    rows = {"h": row()}
    gate = asyncio.Event()
    loader, batch = Loader(rows), BatchLoader(rows, gate)
    cache = KeyCache(loader, batch_loader=batch)
    await cache.get("h")
    await cache.get("h")
    refresh = asyncio.create_task(cache.refresh_due(within=120.0))
    await asyncio.sleep(0)  # the batch has read the key as it was
    rows["h"] = row(revoked_at=dt.datetime.now(dt.UTC))
    cache.invalidate_key("key_1")  # the revocation arrives meanwhile
    gate.set()
    await refresh
    assert (await cache.get("h")).revoked  # read again, not the batch's older copy
    assert loader.calls == 2


async def test_a_key_not_in_memory_while_the_database_is_down_gets_503_not_500():
    token = generate("live").plaintext
    up = True

    async def loader(h: str):
        if not up:
            raise ConnectionRefusedError(111, "Connect call failed")
        return KeyRecord.from_row(row(key_hash=h), h)

    cache = KeyCache(loader)
    auth = Authenticator(None, hmac_key=HMAC_KEY, keys=cache)
    headers = {"authorization": f"Bearer {token}"}
    assert (await auth.authenticate(headers)).workspace_id == "ws_1"
    up = False
    assert (await auth.authenticate(headers)).workspace_id == "ws_1"  # from memory
    cache.invalidate_key("key_1")  # e.g. the key was edited just before the outage
    with pytest.raises(GatewayError) as exc:
        await auth.authenticate(headers)
    assert exc.value.status == 503 and exc.value.code == "store_unavailable"
    assert exc.value.headers == {"retry-after": "1"}
    assert "database" in exc.value.message and "111" not in exc.value.message


async def test_keys_in_use_outlive_their_ttl_while_the_database_is_down(monkeypatch):
    up = True

    async def loader(h: str):
        if not up:
            raise ConnectionRefusedError(111, "Connect call failed")
        return KeyRecord.from_row(row(key_hash=h), h)

    clock = [1000.0]
    monkeypatch.setattr(key_cache, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    cache = KeyCache(loader, ttl=60)
    assert (await cache.get("h")).key_id == "key_1"
    up = False
    clock[0] += 600  # an outage ten times the TTL
    assert (await cache.get("h")).key_id == "key_1"
    with pytest.raises(ConnectionRefusedError):
        await cache.get("never-seen")  # (the authenticator answers 503 for it)
    cache.invalidate_key("key_1")  # e.g. revoked through another instance's pub/sub
    with pytest.raises(ConnectionRefusedError):
        await cache.get("h")
    up = True
    clock[0] += 1
    assert (await cache.get("h")).key_id == "key_1"
