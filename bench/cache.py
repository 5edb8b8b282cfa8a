"""Cache figures: `python -m bench.cache`.

- hit latency against a cache miss through the same gateway and against the mock upstream
  called directly (sequential requests, JSON and streamed), in-process LRU backend
- semantic lookup at 100,000 cached entries: the in-process exact cosine search over one
  partition (384 dimensions, like MiniLM; 1,536, like text-embedding-3-small), and the full
  store lookup including the answer's read from SQLite
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.gateway_run import Stack, run, timed
from perpetuo.cache.semantic import SemanticStore
from perpetuo.cache.vectors import VectorIndex


def hit_latency(rounds: int) -> list[dict[str, float]]:
    models = {
        "plain": {"deployments": [{"provider": "mock", "model": "gpt-4o-mini"}]},
        "cached": {
            "deployments": [{"provider": "mock", "model": "gpt-4o-mini"}],
            "cache": {"enabled": True},
        },
    }
    stack = Stack(models)
    rows = []
    try:
        for stream in (False, True):

            def body(model: str, stream: bool = stream) -> bytes:
                message = {"role": "user", "content": "Hello, tell me a short story."}
                data = {"model": model, "messages": [message], "stream": stream}
                return json.dumps(data).encode()

            gateway = run(timed(stack.url, {"miss": body("plain"), "hit": body("cached")}, rounds))
            direct = run(timed(stack.mock_url, {"direct": body("gpt-4o-mini")}, rounds))
            rows.append(
                {
                    "mode": "stream" if stream else "json",
                    "direct": direct["direct"]["p50_ms"],
                    "miss": gateway["miss"]["p50_ms"],
                    "hit": gateway["hit"]["p50_ms"],
                }
            )
    finally:
        stack.stop()
    return rows


def index_search(entries: int, dims: int, queries: int = 200) -> dict[str, float]:
    rng = np.random.default_rng(7)
    index = VectorIndex()
    vectors = rng.normal(size=(entries, dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    for i in range(entries):
        index.add("ws", "m", "p", f"e{i}", vectors[i], expires_at=4e9)
    load_s = time.perf_counter() - started
    timings = []
    for q in range(queries):
        query = vectors[q * 37 % entries]
        started = time.perf_counter()
        match = index.search("p", query, now=time.time())
        timings.append((time.perf_counter() - started) * 1000)
        assert match is not None and match.similarity > 0.999
    return {
        "entries": entries,
        "dims": dims,
        "p50_ms": statistics.median(timings),
        "p99_ms": sorted(timings)[int(0.99 * len(timings)) - 1],
        "load_s": load_s,
        "matrix_mib": entries * dims * 4 / 2**20,
    }


async def store_search(entries: int, dims: int, queries: int = 100) -> dict[str, float]:
    """The full semantic lookup (index search and the answer's row) on SQLite."""
    from sqlalchemy import insert

    from perpetuo.store.conversation_tables import semantic_cache_entries as table
    from perpetuo.store.database import Database
    from perpetuo.store.migrate import upgrade

    work = Path(tempfile.mkdtemp(prefix="perpetuo-semantic-"))
    db = Database(f"sqlite+aiosqlite:///{work / 'bench.db'}")
    await upgrade(db)
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(entries, dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(days=1)
    answer = json.dumps({"body": {"choices": [{"message": {"content": "x" * 400}}]}}).encode()
    rows = [
        {
            "id": f"sce_{i}",
            "workspace_id": "ws_default",
            "alias": "m",
            "partition": "p" * 64,
            "embedder": "bench",
            "vector": vectors[i].tobytes(),
            "answer": answer,
            "created_at": now,
            "expires_at": later,
        }
        for i in range(entries)
    ]
    async with db.begin() as conn:
        for start in range(0, entries, 5000):
            await conn.execute(insert(table), rows[start : start + 5000])
    store = SemanticStore(db)
    started = time.perf_counter()
    await store.search("ws_default", "p" * 64, vectors[0], 0.9)  # loads the workspace
    load_s = time.perf_counter() - started
    timings = []
    for q in range(queries):
        started = time.perf_counter()
        found = await store.search("ws_default", "p" * 64, vectors[q * 53 % entries], 0.9)
        timings.append((time.perf_counter() - started) * 1000)
        assert found is not None
    await store.aclose()
    await db.dispose()
    return {
        "entries": entries,
        "dims": dims,
        "p50_ms": statistics.median(timings),
        "p99_ms": sorted(timings)[int(0.99 * len(timings)) - 1],
        "load_s": load_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    print(f"Cache hit latency, sequential requests, median of {args.rounds} each:\n")
    print("| mode | direct upstream p50 ms | gateway miss p50 ms | gateway hit p50 ms |")
    print("|---|---:|---:|---:|")
    for row in hit_latency(args.rounds):
        print(f"| {row['mode']} | {row['direct']:.3f} | {row['miss']:.3f} | {row['hit']:.3f} |")
    print(f"\nSemantic lookup at {args.entries:,} entries (one partition):\n")
    print("| what | dims | p50 ms | p99 ms | load s | vectors MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for dims in (384, 1536):
        row = index_search(args.entries, dims)
        print(
            f"| index search | {dims} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['load_s']:.1f} | {row['matrix_mib']:.0f} |"
        )
    row = asyncio.run(store_search(args.entries, 384))
    print(
        f"| store lookup (index + SQLite row) | 384 | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
        f"| {row['load_s']:.1f} | |"
    )


if __name__ == "__main__":
    main()
