"""Upstreams that misbehave below HTTP: raw TCP servers on loopback, one behaviour each.

| mode | what the gateway meets |
|---|---|
| `slow-headers` | a status line, then one byte of headers every `interval` seconds, forever |
| `slow-body` | a JSON answer's head (`content-length` 4096), then one body byte every `interval` |
| `reset-mid-stream` | an SSE stream's head and two chunks, then a TCP reset (RST) |
| `not-tls` | plain HTTP bytes in answer to the TLS client hello |
| `silent` | a connection accepted and never answered (a TLS handshake that never ends) |
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from typing import Any

INTERVAL = 0.2  # seconds between trickled bytes: under any read timeout the tests use
TIMEOUTS = {"connect": 0.8, "first_byte": 0.8, "read": 0.5, "total": 1.5}
RAW_MODES = ("slow-headers", "slow-body", "reset-mid-stream", "not-tls", "silent")


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {"role": "assistant", "content": content} if content is not None else {}
    event = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fault",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _chunked(piece: bytes) -> bytes:
    return f"{len(piece):x}\r\n".encode() + piece + b"\r\n"


class FaultyUpstream:
    """One raw server per behaviour, served from a background thread."""

    def __init__(self, mode: str, interval: float = INTERVAL) -> None:
        self.mode = mode
        self.interval = interval
        self.port = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._held: list[asyncio.StreamWriter] = []

    def start(self) -> FaultyUpstream:
        self._thread.start()
        start = asyncio.start_server(self._serve, "127.0.0.1", 0)
        server = asyncio.run_coroutine_threadsafe(start, self._loop).result(10)
        self.port = server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        def close() -> None:
            for writer in self._held:
                writer.transport.abort()
            self._loop.stop()

        self._loop.call_soon_threadsafe(close)
        self._thread.join(10)

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._held.append(writer)
        try:
            if self.mode == "silent":
                await reader.read()  # until the client gives up
                return
            if self.mode == "not-tls":
                await reader.read(1)
                writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
                return
            await _read_request(reader)
            await getattr(self, "_" + self.mode.replace("-", "_"))(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the gateway gave up: that is the point
        finally:
            if not writer.transport.is_closing():
                writer.close()

    async def _slow_headers(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while True:
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(self.interval)

    async def _slow_body(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        writer.write(b"content-length: 4096\r\n\r\n")
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(self.interval)

    async def _reset_mid_stream(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        writer.write(b"transfer-encoding: chunked\r\n\r\n")
        writer.write(_chunked(_chunk("Hel")) + _chunked(_chunk("lo")))
        await writer.drain()
        await asyncio.sleep(0.1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # closing with a zero linger sends RST


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            await reader.readexactly(int(value))
            return


def fault_bases(raw: dict[str, FaultyUpstream], untrusted_base: str) -> dict[str, str]:
    """Each fault's provider address: the raw servers, a name that never resolves, and an
    https server whose certificate no one trusts."""
    return {
        "slow-headers": raw["slow-headers"].url(),
        "slow-body": raw["slow-body"].url(),
        "reset-mid-stream": raw["reset-mid-stream"].url(),
        "dns": "http://upstream.invalid/v1",  # reserved: never resolves
        "not-tls": raw["not-tls"].url("https"),
        "bad-certificate": untrusted_base,
        "tls-never-answers": raw["silent"].url("https"),
    }


def fault_config(bases: dict[str, str], good: dict[str, Any]) -> dict[str, Any]:
    """Per fault, `over-<fault>` (the faulty deployment, then `good`) and `only-<fault>`
    (the faulty one alone); own upstream model names, so own deployments and breakers."""
    providers: dict[str, Any] = {"good": {"type": "openai", **good}}
    models: dict[str, Any] = {}
    for fault, base in bases.items():
        providers[fault] = {
            "type": "openai",
            "api_base": base,
            "api_key": "sk-fault",
            "timeouts": TIMEOUTS,
        }
        models[f"over-{fault}"] = {
            "deployments": [
                {"provider": fault, "model": f"over-{fault}"},
                {"provider": "good", "model": "gpt-4o-mini"},
            ]
        }
        models[f"only-{fault}"] = {"deployments": [{"provider": fault, "model": f"only-{fault}"}]}
    return {"providers": providers, "models": models}
