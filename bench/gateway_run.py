"""Shared by the feature benchmarks: a mock upstream and a gateway process on loopback, and a
sequential client that times one request body at a time (latency, not throughput)."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.system import free_port, start_gateway_process, start_mock
from perpetuo.transport import URL, HTTPClient, Timeouts

ROOT = Path(__file__).resolve().parent.parent
MASTER = "pk-bench-master-key"


class Stack:
    """The bench mock upstream and one gateway using `models` (aliases over the mock)."""

    def __init__(self, models: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        import yaml

        self.mock_port, self.port = free_port(), free_port()
        self.work = Path(tempfile.mkdtemp(prefix="perpetuo-bench-"))
        self.mock = start_mock(self.mock_port)
        provider = {"type": "openai", "api_base": self.mock_url, "api_key": "sk-bench"}
        config = {"providers": {"mock": provider}, "models": models, **(extra or {})}
        path = self.work / "bench.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {
            "PERPETUO_MASTER_KEY": MASTER,
            "PERPETUO_DATA_DIR": str(self.work / "data"),
            "PERPETUO_LOG_LEVEL": "warning",
        }
        self.gateway = start_gateway_process(path, self.port, env, self.work / "gateway.log")

    @property
    def mock_url(self) -> str:
        return f"http://127.0.0.1:{self.mock_port}/v1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        for proc in (self.gateway, self.mock):
            proc.terminate()
            proc.wait(30)


async def timed(
    url: str, bodies: dict[str, bytes], rounds: int, headers: dict[str, str] | None = None
) -> dict[str, dict[str, float]]:
    """Each body sent `rounds` times, interleaved (A B A B ...) so drift hits all alike;
    the median and mean latency of each in milliseconds."""
    client = HTTPClient()
    target = URL.parse(f"{url}/chat/completions")
    sent = [
        ("content-type", "application/json"),
        ("authorization", f"Bearer {MASTER}"),
        *(headers or {}).items(),
    ]
    timeouts = Timeouts(connect=5, first_byte=30, read=30, total=60)
    samples: dict[str, list[float]] = {name: [] for name in bodies}
    for index in range(rounds + 20):
        for name, body in bodies.items():
            started = time.perf_counter()
            response = await client.request("POST", target, sent, body, timeouts)
            async for _ in response.iter_bytes():
                pass
            if response.status != 200:
                raise RuntimeError(f"{name}: HTTP {response.status}")
            if index >= 20:  # warm-up rounds are not measured
                samples[name].append((time.perf_counter() - started) * 1000)
    await client.aclose()
    return {
        name: {"p50_ms": statistics.median(values), "mean_ms": statistics.fmean(values)}
        for name, values in samples.items()
    }


def run(coro: Any) -> Any:
    return asyncio.run(coro)
