"""Limits on Redis in process: `python -m bench.limits`.

A limits engine on a Redis started here admits and settles requests (RPM, TPM and a budget
per key over 1,000 keys, a workspace budget), one at a time and 16 at once; prints the
client's CPU (engine and Redis client) and Redis's CPU per request, each the median of
three runs. Nothing else shares the process, so the figures are steadier than end to end.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import uvloop

from bench.system import tree_cpu_seconds
from perpetuo.limits import LimitEngine, LimitRequest, WorkspaceLimits
from perpetuo.limits.redis_backend import RedisBackend

ROOT = Path(__file__).resolve().parent.parent
KEY_LIMITS = {"rpm": 10_000_000, "tpm": 10_000_000_000, "budget_usd": 1e6}
WORKSPACE = WorkspaceLimits(budget_usd=1e6, budget_period="monthly")
KEYS = 1_000


async def measure(url: str, redis_pid: int, concurrency: int, count: int) -> dict[str, float]:
    backend = RedisBackend(url, deadline=3.0)  # CPU is measured here, not the deadline
    engine = LimitEngine(backend)
    numbers = iter(range(10**9))
    settling: list[asyncio.Future[None]] = []

    async def one(key: int) -> None:
        request = LimitRequest(
            f"req_{next(numbers)}",
            "ws_bench",
            key_id=f"key_{key % KEYS}",
            key_limits=KEY_LIMITS,
            workspace=WORKSPACE,
            prompt_tokens=10,
            max_output_tokens=100,
            max_cost_micros=100,
        )
        admission = await engine.admit(request)
        await asyncio.sleep(0)  # the request's I/O: an admission on leases never suspends
        settling.append(asyncio.ensure_future(admission.settle(100, 50)))  # as after a response

    for start in range(0, KEYS, 16):  # every counter seeded before measuring
        await asyncio.gather(*(one(k) for k in range(start, start + 16)))
    await asyncio.gather(*settling)
    settling.clear()

    async def worker(offset: int) -> None:
        for i in range(count // concurrency):
            await one(offset + i)

    cpu, redis_cpu = time.process_time(), tree_cpu_seconds(redis_pid)
    await asyncio.gather(*(worker(w * 97) for w in range(concurrency)))
    await asyncio.gather(*settling)
    cpu, redis_cpu = time.process_time() - cpu, tree_cpu_seconds(redis_pid) - redis_cpu
    await backend.aclose()
    return {"client_us": cpu / count * 1e6, "redis_us": redis_cpu / count * 1e6}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.services import RedisServer

    redis = RedisServer().start()
    assert redis.proc is not None
    try:
        for concurrency in (1, 16):
            runs = [
                uvloop.run(measure(redis.url, redis.proc.pid, concurrency, 4000)) for _ in range(3)
            ]
            result = {
                "concurrency": concurrency,
                "client_cpu_us_per_request": statistics.median(r["client_us"] for r in runs),
                "redis_cpu_us_per_request": statistics.median(r["redis_us"] for r in runs),
            }
            print(json.dumps(result), flush=True)
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
