"""One upstream connection: an asyncio protocol feeding httptools, one exchange at a time.

The client (transport/client.py) pools these; a response (transport/response.py) reads
its body from one. Reading pauses the socket past a high-water mark of unread body, and a
response head larger than _MAX_HEAD is refused rather than buffered.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import ClassVar

import httptools

from perpetuo.transport.errors import (
    ConnectionClosed,
    ProtocolError,
    ResponseTooLarge,
    TransportError,
    UpstreamTimeout,
)
from perpetuo.transport.url import Origin

_HIGH_WATER = 256 * 1024  # pause reading the socket when this much body is unread
_MAX_HEAD = 64 * 1024  # status line and headers: an endless head is refused, not buffered
# A request body: bytes, or pieces written one after another (a multipart upload whose file
# parts are views of the client's body, so that the file is not copied to build it).
Body = bytes | tuple[bytes | memoryview, ...]


class Connection(asyncio.Protocol):
    """One upstream connection; carries one exchange at a time."""

    # Sockets open in this process, pooled or busy: the metrics gauge that shows a leak.
    open_count: ClassVar[int] = 0

    def __init__(self, origin: Origin, pool_key: Hashable | None = None) -> None:
        self.origin = origin
        self.pool_key: Hashable = origin if pool_key is None else pool_key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._counted = False
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self._reset_exchange()

    def _reset_exchange(self) -> None:
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.headers_done = False
        self.message_done = False
        self.keep_alive = False
        self.got_bytes = False
        self.head_bytes = 0
        self.error: TransportError | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if not self._counted:  # a TLS upgrade hands the protocol a new transport
            self._counted = True
            Connection.open_count += 1

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("upstream attempted a protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"invalid HTTP response from upstream: {exc}"))
        if not self.headers_done:  # everything so far was head (httptools buffers it)
            self.head_bytes += len(data)
            if self.head_bytes > _MAX_HEAD:
                self._fail(ResponseTooLarge("response head", _MAX_HEAD))

    def eof_received(self) -> bool | None:
        # A response delimited by connection close ends here.
        if self.headers_done and not self.message_done and not self._has_framing():
            self.on_message_complete()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counted:
            self._counted = False
            Connection.open_count -= 1
        self.closed = True
        if not self.message_done:
            self._fail(
                ConnectionClosed(
                    "upstream closed the connection",
                    before_response=not self.got_bytes,
                )
            )

    def pause_writing(self) -> None:  # request bodies are small; nothing to throttle
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks ---------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if 100 <= self.status < 200:  # interim response: wait for the real one
            self.headers = []
            return
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.headers_done:  # end of an interim response
            return
        self.message_done = True
        self.keep_alive = self._parser.should_keep_alive()  # only valid inside the callback
        self._wake()

    # -- exchange --------------------------------------------------------------------------

    def _has_framing(self) -> bool:
        for name, value in self.headers:
            if name == "content-length" or (name == "transfer-encoding" and "chunked" in value):
                return True
        return False

    def _fail(self, error: TransportError) -> None:
        if self.error is None:
            self.error = error
        self._wake()
        if self.transport and not self.transport.is_closing():
            self.transport.abort()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, deadline: float, phase: str) -> None:
        # A timer handle per wait is far cheaper than asyncio.timeout() and its task juggling.
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_at(deadline, _expire, waiter, phase)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def send(self, head: bytes, body: Body) -> None:
        self._reset_exchange()
        if self.closed or self.transport is None or self.transport.is_closing():
            self.error = ConnectionClosed("upstream closed the connection", before_response=True)
            return
        if not isinstance(body, bytes):  # an upload's pieces, written without joining them
            self.transport.write(head)
            for piece in body:
                self.transport.write(piece)
            return
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)

    async def wait_headers(self, deadline: float, phase: str) -> None:
        while not self.headers_done and self.error is None:
            await self._wait(deadline, phase)
        if self.error is not None and not self.headers_done:
            raise self.error

    async def next_chunk(self, deadline: float, phase: str) -> bytes | None:
        """The next piece of body, or None at the end of the message."""
        while not self._chunks:
            if self.message_done:
                return None
            if self.error is not None:
                raise self.error
            await self._wait(deadline, phase)
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < _HIGH_WATER // 2 and self.transport:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    @property
    def reusable(self) -> bool:
        return self.message_done and self.error is None and not self.closed and self.keep_alive

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _expire(waiter: asyncio.Future[None], phase: str) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout(phase))
