"""A hostile OpenAI-format upstream: it speaks the wire format but lies about sizes, numbers
and framing, to check that the gateway bounds what it holds and believes.

The upstream model name picks the behaviour (one deployment per attack in the config):

| model | answer |
|---|---|
| `ok` | a normal completion (or stream) |
| `huge-body` | a valid completion of `body_bytes` bytes (chunked: no length up front) |
| `gzip-bomb` | a valid completion of `bomb_bytes` bytes, gzip-compressed (~1000:1) |
| `gzip-bomb-stream` | SSE events totalling `bomb_bytes`, gzip-compressed |
| `endless-line` | a stream whose first line never ends (`line_rate` bytes/s, 0: flat out) |
| `endless-line-late` | two valid chunks, then a line that never ends |
| `flood` | valid chunks back to back, forever |
| `slow-stream` | valid chunks every `slow_interval` seconds, forever |
| `negative-usage`, `huge-usage` | normal answers whose usage is -1000000 or 10**15 |
| `retry-after` | 429 with `Retry-After: 99999` |
| `length-overstated` | `content-length` of 10**11, a few bytes, then silence |
| `length-understated` | `content-length` shorter than the body that follows |
| `length-truncated` | `content-length` longer than the body, then the connection closes |

Run alone for benchmarks: `python -m tests.mocks.hostile_mock PORT` prints `ready`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import zlib
from typing import Any

from aiohttp import web

from tests.mocks.server import MockUpstream, sse

MiB = 1024 * 1024
PIECE = 64 * 1024
NEGATIVE = -1_000_000
HUGE = 10**15


def completion(content: str, usage: dict[str, Any] | None = None, model: str = "ok") -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-hostile",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": usage or usage_of(5, 3),
        },
        separators=(",", ":"),
    ).encode()


def usage_of(prompt: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "hostile",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def usage_chunk(usage: dict[str, Any]) -> dict[str, Any]:
    return {**chunk({}), "choices": [], "usage": usage}


def gzip_of(pieces: Any) -> bytes:
    """Gzip of the concatenated pieces, compressed piece by piece (never all in memory)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [compressor.compress(piece) for piece in pieces]
    out.append(compressor.flush())
    return b"".join(out)


def padded_completion(size: int) -> tuple[bytes, bytes, int]:
    """(prefix, suffix, filler length): a valid completion of `size` bytes whose content is
    `filler length` letters, so it can be sent without building it."""
    head, tail = completion("@@").split(b"@@")
    return head, tail, max(0, size - len(head) - len(tail))


class HostileMock(MockUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.body_bytes = 64 * MiB
        self.bomb_bytes = 256 * MiB
        self.line_rate = 0  # bytes a second for endless lines; 0: as fast as possible
        self.slow_interval = 1.0
        self.retry_after = "99999"
        self._bombs: dict[tuple[str, int], bytes] = {}
        self._bomb_lock = threading.Lock()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "ok", "object": "model"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        body = recorded.body if isinstance(recorded.body, dict) else {}
        model = str(body.get("model", "ok"))
        stream = bool(body.get("stream"))
        handler = getattr(self, "_" + model.replace("-", "_"), None)
        if handler is None:
            return web.json_response({"error": {"message": f"no model {model}"}}, status=404)
        try:
            return await handler(request, stream)
        except ConnectionError:
            self.disconnects += 1  # the gateway hung up on us: what the caps should do
            return web.Response()  # goes nowhere; returning keeps aiohttp from logging

    # -- honest answers ----------------------------------------------------------------------

    async def _ok(self, request: web.Request, stream: bool) -> web.StreamResponse:
        return await self._answer(request, stream, usage_of(5, 3))

    async def _negative_usage(self, request: web.Request, stream: bool) -> web.StreamResponse:
        usage = usage_of(NEGATIVE, 3)
        usage["prompt_tokens_details"]["cached_tokens"] = NEGATIVE
        return await self._answer(request, stream, usage)

    async def _huge_usage(self, request: web.Request, stream: bool) -> web.StreamResponse:
        return await self._answer(request, stream, usage_of(HUGE, HUGE))

    async def _answer(
        self, request: web.Request, stream: bool, usage: dict[str, Any]
    ) -> web.StreamResponse:
        if not stream:
            return web.Response(
                body=completion("Hello there.", usage), content_type="application/json"
            )
        events = [
            sse(chunk({"role": "assistant", "content": ""})),
            sse(chunk({"content": "Hello"})),
            sse(chunk({"content": " there."})),
            sse(chunk({}, "stop")),
            sse(usage_chunk(usage)),
            b"data: [DONE]\n\n",
        ]
        return await self.stream_events(request, events, None)

    async def _retry_after(self, request: web.Request, stream: bool) -> web.Response:
        return web.json_response(
            {"error": {"message": "slow down", "type": "rate_limit_error", "code": None}},
            status=429,
            headers={"retry-after": self.retry_after},
        )

    # -- sizes -------------------------------------------------------------------------------

    async def _huge_body(self, request: web.Request, stream: bool) -> web.StreamResponse:
        head, tail, filler = padded_completion(self.body_bytes)
        response = web.StreamResponse(headers={"content-type": "application/json"})
        await response.prepare(request)  # chunked: no length to refuse it by up front
        await response.write(head)
        piece = b"a" * PIECE
        while filler > 0:
            await response.write(piece[: min(PIECE, filler)])
            filler -= PIECE
        await response.write(tail)
        return response

    async def _gzip_bomb(self, request: web.Request, stream: bool) -> web.Response:
        return web.Response(
            body=self._bomb("json", self.bomb_bytes),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )

    async def _gzip_bomb_stream(self, request: web.Request, stream: bool) -> web.StreamResponse:
        payload = self._bomb("sse", self.bomb_bytes)
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "content-encoding": "gzip"}
        )
        await response.prepare(request)
        for start in range(0, len(payload), PIECE):
            await response.write(payload[start : start + PIECE])
        await response.write_eof()
        return response

    def _bomb(self, kind: str, size: int) -> bytes:
        with self._bomb_lock:  # built once per size, in whichever thread asks first
            if (kind, size) not in self._bombs:
                self._bombs[(kind, size)] = _build_bomb(kind, size)
            return self._bombs[(kind, size)]

    # -- streams that never end well ---------------------------------------------------------

    async def _endless_line(self, request: web.Request, stream: bool) -> web.StreamResponse:
        response = await self._start_stream(request)
        await response.write(b"data: ")
        await self._endless(response)
        return response

    async def _endless_line_late(self, request: web.Request, stream: bool) -> web.StreamResponse:
        response = await self._start_stream(request)
        await response.write(sse(chunk({"role": "assistant", "content": ""})))
        await response.write(sse(chunk({"content": "Hello"})))
        await response.write(b"data: ")
        await self._endless(response)
        return response

    async def _endless(self, response: web.StreamResponse) -> None:
        piece = b"x" * PIECE
        pause = PIECE / self.line_rate if self.line_rate else 0.0
        while True:
            await response.write(piece)
            if pause:
                await asyncio.sleep(pause)

    async def _flood(self, request: web.Request, stream: bool) -> web.StreamResponse:
        response = await self._start_stream(request)
        await response.write(sse(chunk({"role": "assistant", "content": ""})))
        burst = sse(chunk({"content": "flood "})) * 200
        while True:
            await response.write(burst)

    async def _slow_stream(self, request: web.Request, stream: bool) -> web.StreamResponse:
        response = await self._start_stream(request)
        await response.write(sse(chunk({"role": "assistant", "content": ""})))
        while True:
            await asyncio.sleep(self.slow_interval)
            await response.write(sse(chunk({"content": "slow "})))

    async def _start_stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        return response

    # -- framing lies (raw bytes on the socket) ------------------------------------------------

    async def _length_overstated(self, request: web.Request, stream: bool) -> web.StreamResponse:
        transport = self._raw(request, 10**11, b'{"id":"x"')
        while not transport.is_closing():  # never send the rest; wait for the hang-up
            await asyncio.sleep(0.05)
        return web.Response()  # goes nowhere: the connection is closed

    async def _length_understated(self, request: web.Request, stream: bool) -> web.StreamResponse:
        body = completion("Hello there.")
        transport = self._raw(request, 20, body + b"HTTP/1.1 200 OK\r\n\r\n")
        await asyncio.sleep(0.2)
        transport.abort()
        return web.Response()

    async def _length_truncated(self, request: web.Request, stream: bool) -> web.StreamResponse:
        transport = self._raw(request, 5000, completion("Hello there.")[:40])
        transport.close()
        return web.Response()

    @staticmethod
    def _raw(request: web.Request, declared: int, body: bytes) -> asyncio.Transport:
        """Write a response head and body by hand: aiohttp would not send a false length."""
        transport = request.transport
        assert transport is not None
        head = (
            f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            f"content-length: {declared}\r\n\r\n"
        ).encode()
        transport.write(head + body)
        return transport  # type: ignore[return-value]


def _build_bomb(kind: str, size: int) -> bytes:
    if kind == "json":
        head, tail, filler = padded_completion(size)
        block = b"a" * MiB
        pieces = [head, *(block for _ in range(filler // MiB)), b"a" * (filler % MiB), tail]
        return gzip_of(pieces)
    event = sse(chunk({"content": "boom"}))
    block = event * (MiB // len(event))
    return gzip_of(block for _ in range(max(1, size // len(block))))


def config_for(mock: HostileMock, *models: str, **provider: Any) -> dict[str, Any]:
    """A gateway config with one alias per hostile model (alias name = model name)."""
    return {
        "providers": {
            "hostile": {
                "type": "openai",
                "api_base": f"{mock.url}/v1",
                "api_key": "sk-hostile",
                **provider,
            }
        },
        "models": {m: {"deployments": [{"provider": "hostile", "model": m}]} for m in models},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="hostile OpenAI-format upstream")
    parser.add_argument("port", type=int)
    parser.add_argument("--body-bytes", type=int, default=200 * MiB)
    parser.add_argument("--bomb-bytes", type=int, default=500 * MiB)
    args = parser.parse_args()
    mock = HostileMock()
    mock.body_bytes, mock.bomb_bytes = args.body_bytes, args.bomb_bytes
    mock._bomb("json", mock.bomb_bytes)  # before "ready": the bench must not time the build
    asyncio.run(_serve(mock, args.port))


async def _serve(mock: HostileMock, port: int) -> None:
    app = web.Application(client_max_size=64 * MiB)
    mock.routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    main()
