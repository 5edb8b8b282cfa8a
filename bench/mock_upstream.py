"""A fast upstream for benchmarks: canned answers, keep-alive, no framework. It serves OpenAI
chat completions, embeddings (`/v1/embeddings`, one 128-dimension vector), and by path
OpenAI's Responses API (`/v1/responses`) and Anthropic's Messages API (`/v1/messages`),
with the same answer in each format (bench/mock_dialects.py).

Streaming answers are sent as chunked SSE, one event per HTTP chunk, all at once, so the
measured time to first token is the gateway's, not the mock's.

`python -m bench.mock_upstream PORT [--fail-rate 0.3]`: with a fail rate, that share of
requests (chosen at random) gets a 500 with an OpenAI-style error body instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random

import httptools
import uvloop

from bench import mock_dialects

_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    },
    separators=(",", ":"),
).encode()

_ANSWER = "Hello there! This is a streamed answer of twenty words or so from the mock upstream"
_WORDS = _ANSWER.split(" ")


def _stream_body() -> bytes:
    def chunk(
        delta: dict, finish: str | None = None, usage: dict | None = None, choices: bool = True
    ) -> bytes:
        data = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
        }
        if usage is not None:
            data["usage"] = usage
        event = b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"
        return f"{len(event):x}\r\n".encode() + event + b"\r\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(_WORDS)]
    parts.append(chunk({}, "stop"))
    parts.append(
        chunk(
            {},
            usage={
                "prompt_tokens": 12,
                "completion_tokens": len(_WORDS),
                "total_tokens": 12 + len(_WORDS),
            },
            choices=False,
        )
    )
    done = b"data: [DONE]\n\n"
    parts.append(f"{len(done):x}\r\n".encode() + done + b"\r\n")
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


JSON_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
    % (len(_COMPLETION), _COMPLETION)
)
_ERROR = b'{"error":{"message":"injected failure","type":"server_error","code":null}}'
ERROR_RESPONSE = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_ERROR), _ERROR)
)
STREAM_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    + _stream_body()
)

_EMBEDDING = json.dumps(
    {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.125, -0.5, 0.25, 0.75] * 32}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    },
    separators=(",", ":"),
).encode()
EMBEDDING_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
    % (len(_EMBEDDING), _EMBEDDING)
)

# By the path's last segment; anything else is chat completions.
_ANSWERS = {
    b"embeddings": (EMBEDDING_RESPONSE, EMBEDDING_RESPONSE),
    b"responses": (mock_dialects.RESPONSES_JSON, mock_dialects.RESPONSES_STREAM),
    b"messages": (mock_dialects.MESSAGES_JSON, mock_dialects.MESSAGES_STREAM),
}


class _Protocol(asyncio.Protocol):
    fail_rate = 0.0
    answered = 0
    _random = random.Random(42).random

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)
        self.body = b""
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url  # may come in pieces

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        streaming = b'"stream":true' in self.body
        path = self.url.rsplit(b"?", 1)[0]
        self.body = self.url = b""
        if self.fail_rate and self._random() < self.fail_rate:
            self.transport.write(ERROR_RESPONSE)  # type: ignore[attr-defined]
            return
        name = path.rsplit(b"/", 1)[-1]
        json_answer, stream_answer = _ANSWERS.get(name, (JSON_RESPONSE, STREAM_RESPONSE))
        answer = stream_answer if streaming else json_answer
        if name == b"responses":
            _Protocol.answered += 1
            answer = mock_dialects.numbered(answer, _Protocol.answered)
        self.transport.write(answer)  # type: ignore[attr-defined]


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Protocol, "127.0.0.1", port, backlog=2048)
    print("ready", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of 500 answers")
    args = parser.parse_args()
    _Protocol.fail_rate = args.fail_rate
    uvloop.run(serve(args.port))
