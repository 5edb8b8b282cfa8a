"""The answer stores: in-process LRU bounds and TTLs, Redis namespaces and purges, and the
vector index."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from perpetuo.cache.memory import MemoryBackend
from perpetuo.cache.redis_backend import RedisBackend
from perpetuo.cache.vectors import VectorIndex, unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_ttl_expiry():
    clock = Clock()
    store = MemoryBackend(clock=clock)
    await store.set("ws", "a", "k", b"v", ttl_seconds=10, max_entries=None)
    assert await store.get("ws", "a", "k") == b"v"
    clock.now += 10.01
    assert await store.get("ws", "a", "k") is None
    assert store.entries == 0 and store.bytes == 0


async def test_memory_lru_per_workspace_and_global_bounds():
    store = MemoryBackend(max_entries=5, max_bytes=10_000)
    for i in range(3):
        await store.set("ws", "a", f"k{i}", b"x" * 5, 60, max_entries=3)
    await store.get("ws", "a", "k0")  # k0 is now the most recent
    await store.set("ws", "a", "k3", b"x" * 5, 60, max_entries=3)
    assert await store.get("ws", "a", "k1") is None  # the least recently used went
    assert await store.get("ws", "a", "k0") == b"x" * 5
    for i in range(4):
        await store.set("big", "a", f"b{i}", b"y" * 10, 60, max_entries=None)
    assert store.entries <= 5
    assert (await store.stats("ws"))["entries"] == 3  # the biggest tenant gave way
    small = MemoryBackend(max_entries=100, max_bytes=100)
    for i in range(5):
        await small.set("ws", "a", f"k{i}", b"z" * 30, 60, None)
    assert small.bytes <= 100 and small.evictions == 2


async def test_memory_workspaces_never_share_entries_and_purge_by_alias():
    store = MemoryBackend()
    await store.set("ws_a", "m", "same", b"A", 60, None)
    await store.set("ws_b", "m", "same", b"B", 60, None)
    await store.set("ws_a", "other", "k", b"C", 60, None)
    assert await store.get("ws_a", "m", "same") == b"A"
    assert await store.get("ws_b", "m", "same") == b"B"
    assert await store.purge("ws_a", "m") == 1
    assert await store.get("ws_a", "other", "k") == b"C"
    assert await store.get("ws_b", "m", "same") == b"B"
    assert await store.purge("ws_a", None) == 1


async def test_redis_backend(redis_server):
    # A generous deadline: on a loaded machine a late reply is a miss, which is not under test.
    store = RedisBackend(redis_server.url, deadline=5.0)
    try:
        await store.purge("ws_a", None)
        await store.purge("ws_b", None)
        await store.set("ws_a", "m", "same", b"A", 60, None)
        await store.set("ws_b", "m", "same", b"B", 60, None)
        assert await store.get("ws_a", "m", "same") == b"A"
        assert await store.get("ws_b", "m", "same") == b"B"
        for i in range(5):
            await store.set("ws_a", "other", f"k{i}", b"x", 60 + i, max_entries=4)
        assert (await store.stats("ws_a"))["entries"] == 4  # bounded per workspace
        assert await store.get("ws_a", "m", "same") is None  # the soonest to expire went
        assert await store.purge("ws_a", "other") == 4
        assert await store.get("ws_b", "m", "same") == b"B"
        await store.set("ws_a", "m", "short", b"S", 1, None)
        await asyncio.sleep(1.1)
        assert await store.get("ws_a", "m", "short") is None
    finally:
        await store.aclose()


async def test_redis_failure_is_a_miss_never_an_error():
    store = RedisBackend("redis://127.0.0.1:9/0")
    await store.set("ws", "m", "k", b"v", 60, None)
    assert await store.get("ws", "m", "k") is None
    assert store.failures >= 1
    await store.aclose()


def test_vector_index_search_threshold_expiry_and_drop():
    index = VectorIndex()
    rng = np.random.default_rng(1)
    base = unit(rng.normal(size=64))
    index.add("ws", "m", "p", "e1", base, expires_at=2000)
    index.add("ws", "m", "p", "e2", unit(rng.normal(size=64)), expires_at=2000)
    near = unit(base + 0.02 * rng.normal(size=64))
    match = index.search("p", near, now=1000)
    assert match.entry_id == "e1" and match.similarity > 0.95
    assert index.search("other", near, now=1000) is None
    assert index.search("p", near, now=3000) is None  # expired
    for i in range(100):  # growth past the initial capacity
        index.add("ws", "m", "p", f"x{i}", unit(rng.normal(size=64)), expires_at=2000)
    assert index.search("p", base, now=1000).entry_id == "e1"
    index.compact(now=3000)
    assert len(index) == 0
    index.add("ws", "m", "p", "e3", base, expires_at=5000)
    index.add("ws", "n", "q", "e4", base, expires_at=5000)
    assert index.drop("ws", "m") == 1 and index.search("q", base, 1000).entry_id == "e4"


@pytest.mark.parametrize("dims", [8, 384])
def test_unit_vectors(dims):
    vector = unit(np.arange(1, dims + 1, dtype=np.float64))
    assert vector.dtype == np.float32 and abs(float(np.linalg.norm(vector)) - 1) < 1e-5
