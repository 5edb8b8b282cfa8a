"""Two figures that need no load generator: /metrics scrape time with 100 aliases, and the
request-log writer's sustained rate into PostgreSQL."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from bench.system import free_port, start_gateway_process, start_mock

ROOT = Path(__file__).resolve().parent.parent


def scrape_with_100_aliases() -> float:
    """p50 milliseconds of GET /metrics after traffic on 100 aliases (every label set live)."""
    mock_port, port = free_port(), free_port()
    mock = start_mock(mock_port)
    work = Path(tempfile.mkdtemp(prefix="perpetuo-scrape-"))
    config = {
        "providers": {
            f"p{i}": {
                "type": "openai",
                "api_base": f"http://127.0.0.1:{mock_port}/v1",
                "api_key": "sk",
            }
            for i in range(10)
        },
        "models": {
            f"alias-{i}": {"deployments": [{"provider": f"p{i % 10}", "model": f"m{i}"}]}
            for i in range(100)
        },
    }
    (work / "c.yaml").write_text(yaml.safe_dump(config))
    env = {"PERPETUO_MASTER_KEY": "mk", "PERPETUO_DATA_DIR": str(work / "d")}
    proc = start_gateway_process(work / "c.yaml", port, env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for i in range(100):
                http.post(
                    "/v1/chat/completions",
                    headers={"authorization": "Bearer mk"},
                    json={"model": f"alias-{i}", "messages": [{"role": "user", "content": "x"}]},
                )
            times = []
            for _ in range(20):
                started = time.perf_counter()
                http.get("/metrics").raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)
    finally:
        proc.terminate()
        proc.wait(30)
        mock.terminate()


def writer_rate(records: int = 100_000) -> float:
    """Records per second the batched writer sustains into a local PostgreSQL."""
    sys.path.insert(0, str(ROOT))
    from tests.support.services import PostgresServer

    from perpetuo.metering.record import RequestRecord
    from perpetuo.metering.writer import UsageWriter
    from perpetuo.store.database import Database
    from perpetuo.store.migrate import upgrade

    pg = PostgresServer().start()
    try:
        url = pg.create_database("writer")

        async def go() -> float:
            db = Database(url)
            await upgrade(db)
            writer = UsageWriter(
                db,
                Path(tempfile.mkdtemp()) / "spill",
                batch_size=1000,
                flush_interval=0.05,
                max_queue=records * 2,
            )
            await writer.start()
            now = time.time()
            started = time.perf_counter()
            for i in range(records):
                writer.emit(
                    RequestRecord(
                        id=f"r{i}",
                        workspace_id="ws_default",
                        created_at=now,
                        endpoint="chat",
                        status=200,
                        alias=f"a{i % 5}",
                        provider="p",
                        model="m",
                        key_id=f"k{i % 50}",
                        prompt_tokens=20,
                        completion_tokens=40,
                        cost_micros=30,
                        latency_ms=120.0,
                    )
                )
                if i % 5000 == 0:
                    await asyncio.sleep(0)  # let the writer run, as live traffic would
            while writer.written < records:  # noqa: ASYNC110 - polling a counter, by design
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            await writer.stop()
            await db.dispose()
            return records / elapsed

        return asyncio.run(go())
    finally:
        pg.stop()
