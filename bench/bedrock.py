"""Bedrock's costs per request (`./dev bench --bedrock`, or `python -m bench.bedrock`).

1. In process: SigV4 signing and building a whole Converse call, and decoding plus
   translating one streamed answer (AWS event-stream frames through the Bedrock adapter)
   against the same answer as SSE through the OpenAI adapter.
2. Through the gateway: streamed chat on a Bedrock deployment (ConverseStream from the
   mock below) and on an OpenAI one (the main bench mock), the same twenty-word answer,
   gateway CPU per request compared in the same run.

`python -m bench.bedrock serve PORT` is the mock: it answers every `/model/{id}/converse-stream`
with canned frames and `/converse` with a canned answer, without checking signatures (the
signing cost is the gateway's, measured either way).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httptools
import msgspec

from bench.system import (
    ROOT,
    free_port,
    process_cpu_seconds,
    start_gateway_process,
    start_mock,
)
from perpetuo.providers.base import Target
from perpetuo.providers.bedrock import BedrockAdapter
from perpetuo.providers.bedrock.eventstream import encode_message
from perpetuo.providers.bedrock.sigv4 import AwsCredentials, sign
from perpetuo.providers.registry import ADAPTERS
from perpetuo.schema.chat import ChatCompletionRequest
from perpetuo.transport.sse import SSEDecoder
from perpetuo.transport.url import URL

MASTER = "pk-bench-master-key"
ANSWER = "Hello there! This is a streamed answer of twenty words or so from the mock upstream"
MODEL = "amazon.nova-lite-v1:0"


# --- the canned answer in both formats ---------------------------------------------------------


def converse_frames() -> list[bytes]:
    def event(kind: str, payload: dict[str, Any]) -> bytes:
        headers = {":event-type": kind, ":content-type": "application/json"}
        body = json.dumps(payload, separators=(",", ":")).encode()
        return encode_message({**headers, ":message-type": "event"}, body)

    words = ANSWER.split(" ")
    frames = [event("messageStart", {"role": "assistant"})]
    for i, word in enumerate(words):
        delta = {"contentBlockIndex": 0, "delta": {"text": word if i == 0 else " " + word}}
        frames.append(event("contentBlockDelta", delta))
    frames.append(event("contentBlockStop", {"contentBlockIndex": 0}))
    frames.append(event("messageStop", {"stopReason": "end_turn"}))
    usage = {"inputTokens": 12, "outputTokens": len(words), "totalTokens": 12 + len(words)}
    frames.append(event("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}))
    return frames


def openai_events() -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"

    words = ANSWER.split(" ")
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    events.append(chunk({}, "stop"))
    return [*events, b"data: [DONE]\n\n"]


def _chunked(parts: list[bytes]) -> bytes:
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


STREAM = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\n"
    b"transfer-encoding: chunked\r\n\r\n" + _chunked(converse_frames())
)
_JSON = json.dumps(
    {
        "output": {"message": {"role": "assistant", "content": [{"text": ANSWER}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 12, "outputTokens": 16, "totalTokens": 28},
        "metrics": {"latencyMs": 1},
    }
).encode()
JSON = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(_JSON),
    _JSON,
)


# --- in-process costs ---------------------------------------------------------------------------


def _per_call_us(fn: Callable[[], object], seconds: float = 0.1) -> float:
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(50):
            fn()
        calls += 50
    return (time.perf_counter() - started) / calls * 1e6


def _best(cases: dict[str, Callable[[], object]], rounds: int = 7) -> dict[str, float]:
    """Microseconds per call of each case: the best of `rounds` samples, the cases taking
    turns, so a busy machine slows none of them more than the others."""
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):
        for name, fn in cases.items():
            best[name] = min(best[name], _per_call_us(fn))
    return best


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def microbench() -> dict[str, float]:
    from perpetuo.providers.bedrock.aws_credentials import StaticAwsCredentials

    creds = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    url = URL.parse(f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{MODEL}/converse")
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "x" * 2000}]}]}).encode()
    headers = [("content-type", "application/json"), ("accept", "application/json")]
    request = msgspec.convert(
        {"model": "m", "messages": [{"role": "user", "content": "Hello, tell me a story."}]},
        ChatCompletionRequest,
    )
    bedrock = BedrockAdapter()
    bedrock_target = Target(
        "b",
        "bedrock",
        MODEL,
        URL.parse("https://bedrock-runtime.us-east-1.amazonaws.com"),
        region="us-east-1",
        credentials=StaticAwsCredentials(creds),
    )
    openai = ADAPTERS["openai"]
    openai_target = Target(
        "o", "openai", "gpt-4o-mini", URL.parse("https://api.openai.com/v1"), "sk"
    )
    frames, events = converse_frames(), openai_events()

    async def bedrock_stream() -> None:
        decoder = bedrock.stream_events(_chunks(frames), bedrock_target)
        async for _ in bedrock.chat_stream(aiter(decoder), bedrock_target):
            pass

    async def openai_stream() -> None:
        decoder = SSEDecoder(_chunks(events))
        async for _ in openai.chat_stream(aiter(decoder), openai_target):
            pass

    loop = asyncio.new_event_loop()
    try:
        results = _best(
            {
                "sigv4_sign_us": lambda: sign(
                    "POST", url, headers, body, creds, "us-east-1", "bedrock"
                ),
                "bedrock_chat_request_us": lambda: bedrock.chat_request(
                    request, bedrock_target, {}
                ),
                "openai_chat_request_us": lambda: openai.chat_request(request, openai_target, {}),
                "bedrock_stream_us": lambda: loop.run_until_complete(bedrock_stream()),
                "openai_stream_us": lambda: loop.run_until_complete(openai_stream()),
            }
        )
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    results["stream_ratio"] = results["bedrock_stream_us"] / results["openai_stream_us"]
    return results


# --- through the gateway -----------------------------------------------------------------------


def _loadgen(url: str, concurrency: int, duration: float, model: str) -> dict[str, Any]:
    cmd = [
        *(sys.executable, "-m", "bench.loadgen", url, "--stream"),
        *("--concurrency", str(concurrency), "--duration", str(duration), "--warmup", "1"),
        *("--model", model, "--key", MASTER),
    ]
    out = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, check=True, timeout=duration + 120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def gateway_bench(duration: float, levels: list[int], rounds: int = 3) -> list[dict[str, Any]]:
    import yaml

    openai_port, bedrock_port, port = free_port(), free_port(), free_port()
    openai_mock = start_mock(openai_port)
    bedrock_mock = subprocess.Popen(
        [sys.executable, "-m", "bench.bedrock", "serve", str(bedrock_port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert bedrock_mock.stdout is not None and bedrock_mock.stdout.readline().strip() == "ready"
    work = Path(tempfile.mkdtemp(prefix="perpetuo-bench-bedrock-"))
    config = {
        "providers": {
            "mock": {
                "type": "openai",
                "api_base": f"http://127.0.0.1:{openai_port}/v1",
                "api_key": "sk",
            },
            "bedrock": {
                "type": "bedrock",
                "api_base": f"http://127.0.0.1:{bedrock_port}",
                "region": "us-east-1",
                "aws_access_key_id": "AKIDEXAMPLE",
                "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            },
        },
        "models": {
            "gpt-4o-mini": {"deployments": [{"provider": "mock", "model": "gpt-4o-mini"}]},
            "nova": {"deployments": [{"provider": "bedrock", "model": MODEL}]},
        },
    }
    (work / "bench.yaml").write_text(yaml.safe_dump(config))
    env = {
        "PERPETUO_MASTER_KEY": MASTER,
        "PERPETUO_DATA_DIR": str(work / "data"),
        "PERPETUO_LOG_LEVEL": "warning",
    }
    gateway = start_gateway_process(work / "bench.yaml", port, env, work / "gateway.log")
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    rows = []
    try:
        for concurrency in levels:
            samples: dict[str, list[dict[str, Any]]] = {"openai": [], "bedrock": []}
            # A B, B A, A B: turns alternate so a machine getting busier favours neither.
            for turn in range(rounds):
                order = ("openai", "bedrock") if turn % 2 == 0 else ("bedrock", "openai")
                for name in order:
                    model = "gpt-4o-mini" if name == "openai" else "nova"
                    before = process_cpu_seconds(gateway.pid)
                    result = _loadgen(url, concurrency, duration, model)
                    served = result["requests"] * (1 + 1 / duration)  # the warm-up second too
                    cpu = (process_cpu_seconds(gateway.pid) - before) * 1000 / served
                    samples[name].append({**result, "cpu_ms": cpu})
            row: dict[str, Any] = {"concurrency": concurrency, "samples": samples}
            for name in samples:
                row[f"{name}_cpu_ms"] = statistics.median(s["cpu_ms"] for s in samples[name])
            row["cpu_ratio"] = row["bedrock_cpu_ms"] / row["openai_cpu_ms"]
            errors = sum(s["errors"] for s in samples["bedrock"])
            rows.append(row)
            print(
                f"stream c={concurrency:<3} openai {row['openai_cpu_ms']:.3f} ms cpu/req | "
                f"bedrock {row['bedrock_cpu_ms']:.3f} ms cpu/req (errors {errors}) "
                f"ratio {row['cpu_ratio']:.2f} (medians of {rounds})",
                flush=True,
            )
    finally:
        for proc in (gateway, openai_mock, bedrock_mock):
            proc.terminate()
            proc.wait(30)
    return rows


def run(duration: float, levels: list[int]) -> dict[str, Any]:
    micro = microbench()
    print(
        f"sigv4 sign {micro['sigv4_sign_us']:.1f} us; chat_request bedrock "
        f"{micro['bedrock_chat_request_us']:.1f} us vs openai "
        f"{micro['openai_chat_request_us']:.1f} us; "
        f"stream decode+translate bedrock {micro['bedrock_stream_us']:.1f} us vs openai "
        f"{micro['openai_stream_us']:.1f} us (ratio {micro['stream_ratio']:.2f})",
        flush=True,
    )
    result = {"micro": micro, "gateway": gateway_bench(duration, levels)}
    out = Path(ROOT) / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "bedrock.json").write_text(json.dumps(result, indent=2))
    return result


# --- the mock -----------------------------------------------------------------------------------


class _Protocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self) -> None:
        streaming = self.url.endswith(b"converse-stream")
        self.url = b""
        self.transport.write(STREAM if streaming else JSON)  # type: ignore[attr-defined]


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(
        _Protocol, "127.0.0.1", port, backlog=2048
    )
    print("ready", flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "serve"])
    parser.add_argument("port", nargs="?", type=int)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,16")
    args = parser.parse_args()
    if args.command == "serve":
        import uvloop

        uvloop.run(serve(args.port))
        return
    run(args.duration, [int(c) for c in args.concurrency.split(",")])


if __name__ == "__main__":
    main()
