"""Closed-loop load generator: C workers send requests back to back for a fixed time.

Runs in its own process (python -m bench.loadgen URL ...) and prints one JSON line with
throughput, latency percentiles and, for streams, time to first event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import uvloop

from perpetuo.transport import URL, HTTPClient, Timeouts

PROMPT = "Hello, how are you doing today? Tell me a short story."
DIALECTS = ("chat", "responses", "messages")


def body(stream: bool, model: str = "gpt-4o-mini", dialect: str = "chat") -> bytes:
    """The same one-turn question in the client dialect's own shape."""
    data: dict = {"model": model}
    if dialect == "responses":
        data["input"] = PROMPT
    else:
        data["messages"] = [{"role": "user", "content": PROMPT}]
    if dialect == "messages":
        data["max_tokens"] = 1024
    if stream:
        data["stream"] = True
    return json.dumps(data, separators=(",", ":")).encode()


def auth_headers(key: str, dialect: str) -> list[tuple[str, str]]:
    """As the dialect's SDK sends its key (Anthropic's: `x-api-key` and a version)."""
    if dialect == "messages":
        return [("x-api-key", key), ("anthropic-version", "2023-06-01")]
    return [("authorization", f"Bearer {key}")]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(
    url: str,
    concurrency: int,
    duration: float,
    warmup: float,
    stream: bool,
    key: str,
    model: str = "gpt-4o-mini",
    keys: list[str] | None = None,
    dialect: str = "chat",
) -> dict:
    client = HTTPClient()
    target = URL.parse(url)
    base = [("content-type", "application/json")]
    # Many keys: each request uses the next one, as many callers sharing a gateway would.
    key_headers = [[*base, *auth_headers(k, dialect)] for k in keys or ([key] if key else [])]
    turn = 0
    payload = body(stream, model, dialect)
    timeouts = Timeouts(connect=5, first_byte=30, read=30, total=60)
    latencies: list[float] = []
    ttfts: list[float] = []
    errors = 0
    clock = time.perf_counter  # uvloop's loop.time() only has millisecond resolution
    measure_from = clock() + warmup
    stop_at = measure_from + duration

    async def worker() -> None:
        nonlocal errors, turn
        while True:
            started = clock()
            if started >= stop_at:
                return
            headers = key_headers[turn % len(key_headers)] if key_headers else base
            turn += 1
            try:
                response = await client.request("POST", target, headers, payload, timeouts)
                first = None
                async for _ in response.iter_bytes():
                    if first is None:
                        first = clock()
                ok = response.status == 200
            except Exception:
                ok, first = False, None
            ended = clock()
            if started < measure_from:
                continue
            if not ok:
                errors += 1
                continue
            latencies.append(ended - started)
            if stream and first is not None:
                ttfts.append(first - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.aclose()
    ms = 1000.0
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / duration,
        "p50_ms": percentile(latencies, 0.50) * ms,
        "p99_ms": percentile(latencies, 0.99) * ms,
        "ttft_p50_ms": percentile(ttfts, 0.50) * ms if stream else None,
        "ttft_p99_ms": percentile(ttfts, 0.99) * ms if stream else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--key", default="")
    parser.add_argument("--model", default="gpt-4o-mini", help="the alias to ask for")
    parser.add_argument("--keys-file", default="", help="one API key per line, used in turn")
    parser.add_argument("--dialect", choices=DIALECTS, default="chat", help="the body's shape")
    args = parser.parse_args()
    keys = None
    if args.keys_file:
        with open(args.keys_file) as handle:
            keys = [line.strip() for line in handle if line.strip()]
    started = time.monotonic()
    result = uvloop.run(
        run(
            args.url,
            args.concurrency,
            args.duration,
            args.warmup,
            args.stream,
            args.key,
            args.model,
            keys,
            args.dialect,
        )
    )
    result["wall_s"] = time.monotonic() - started
    print(json.dumps(result))


if __name__ == "__main__":
    main()
