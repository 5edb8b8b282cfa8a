"""The pooled upstream client against hand-written HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable

import pytest

from perpetuo.transport import (
    URL,
    ConnectError,
    ConnectionClosed,
    HTTPClient,
    Timeouts,
    UpstreamTimeout,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(handler: Handler) -> tuple[asyncio.Server, URL]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, URL.parse(f"http://127.0.0.1:{port}/v1")


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length) if length else b""
    return head, body


def response(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n{extra}\r\n".encode() + body


async def test_keep_alive_reuses_one_connection():
    connections = 0

    async def handler(reader, writer):
        nonlocal connections
        connections += 1
        while True:
            try:
                _, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(response(b"echo:" + body))
            await writer.drain()

    server, url = await serve(handler)
    client = HTTPClient()
    for i in range(5):
        resp = await client.request(
            "POST", url.join("chat"), [("content-type", "text/plain")], f"{i}".encode()
        )
        assert resp.status == 200
        assert await resp.read() == f"echo:{i}".encode()
    assert connections == 1
    assert client.idle_connections(url.origin) == 1
    await client.aclose()
    server.close()


async def test_stale_pooled_connection_is_replaced_transparently():
    served = 0

    async def handler(reader, writer):
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(response(b"ok"))
        await writer.drain()
        writer.close()  # server closes after each answer despite HTTP/1.1 keep-alive

    server, url = await serve(handler)
    client = HTTPClient()
    for _ in range(3):
        resp = await client.request("GET", url, [])
        assert await resp.read() == b"ok"
        await asyncio.sleep(0.05)
    assert served == 3
    await client.aclose()
    server.close()


async def test_chunked_and_gzip_bodies():
    async def handler(reader, writer):
        await read_request(reader)
        payload = gzip.compress(b'{"hello": "w\xc3\xb6rld"}')
        writer.write(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-encoding: gzip\r\n\r\n"
        )
        for i in range(0, len(payload), 7):
            piece = payload[i : i + 7]
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    server, url = await serve(handler)
    client = HTTPClient()
    resp = await client.request("GET", url, [])
    assert await resp.read() == '{"hello": "wörld"}'.encode()
    await client.aclose()
    server.close()


async def test_body_delimited_by_close():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    server, url = await serve(handler)
    client = HTTPClient()
    resp = await client.request("GET", url, [])
    assert await resp.read() == b"until the end"
    assert client.idle_connections(url.origin) == 0
    await client.aclose()
    server.close()


async def test_streaming_pieces_arrive_as_sent():
    release = asyncio.Event()

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()

    server, url = await serve(handler)
    client = HTTPClient()
    resp = await client.request("GET", url, [])
    pieces = resp.iter_bytes()
    assert await anext(pieces) == b"first"  # delivered before the rest exists
    release.set()
    assert [p async for p in pieces] == [b"second"]
    await client.aclose()
    server.close()


async def test_first_byte_timeout():
    async def handler(reader, writer):
        await read_request(reader)
        await asyncio.sleep(5)

    server, url = await serve(handler)
    client = HTTPClient()
    started = asyncio.get_running_loop().time()
    with pytest.raises(UpstreamTimeout) as exc:
        await client.request("GET", url, [], timeouts=Timeouts(first_byte=0.2))
    assert exc.value.phase == "first byte"
    assert asyncio.get_running_loop().time() - started < 1
    await client.aclose()
    server.close()


async def test_read_timeout_between_chunks_and_total_deadline():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    server, url = await serve(handler)
    client = HTTPClient()
    resp = await client.request("GET", url, [], timeouts=Timeouts(read=0.2))
    with pytest.raises(UpstreamTimeout) as exc:
        await resp.read()
    assert exc.value.phase == "read"
    loop = asyncio.get_running_loop()
    resp = await client.request(
        "GET", url, [], timeouts=Timeouts(read=10), deadline=loop.time() + 0.3
    )
    with pytest.raises(UpstreamTimeout) as exc:
        await resp.read()
    assert exc.value.phase == "total"
    await client.aclose()
    server.close()


async def test_connection_refused_and_reset():
    client = HTTPClient()
    with pytest.raises(ConnectError):
        await client.request("GET", URL.parse("http://127.0.0.1:9/"), [])

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()
        writer.transport.abort()

    server, url = await serve(handler)
    resp = await client.request("GET", url, [])
    with pytest.raises(ConnectionClosed) as exc:
        await resp.read()
    assert exc.value.before_response is False
    await client.aclose()
    server.close()


async def test_header_injection_is_neutralised():
    seen: list[bytes] = []

    async def handler(reader, writer):
        head, _ = await read_request(reader)
        seen.append(head)
        writer.write(response(b"ok"))
        await writer.drain()

    server, url = await serve(handler)
    client = HTTPClient()
    resp = await client.request("GET", url, [("x-note", "a\r\nx-evil: 1")])
    await resp.read()
    assert b"x-evil: 1\r\n" not in seen[0].replace(b"x-note: ax-evil: 1", b"")
    assert b"\r\nx-evil" not in seen[0]
    await client.aclose()
    server.close()
